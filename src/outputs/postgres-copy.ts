import { createHash } from "node:crypto";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import type { Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import { isInheritedName, ownField } from "../shared/json-text.js";
import { connectClient, stagingPrefix } from "./postgres-connection.js";
import { type Encoder, encoder, strictText } from "./postgres-encode.js";
import { checkName, literal, qi, typeOfSql } from "./postgres-sql.js";
import {
  type ColumnType,
  checkIdent,
  INVALID_COLUMNS,
  invalidTableName,
  METADATA_COLUMNS,
  POSTGRES_TYPES,
} from "./table-shape.js";
import type { InvalidEntry } from "./writer.js";

/** COPY data is sent in chunks of about this many characters. */
const CHUNK = 64 * 1024;

/** A column to add: name, logical type (null: the table's own), SQL type. */
/**
 * A column: name, type, SQL type; `fromValues` when this run chose its type from the values it saw
 * (no schema, no such column in the target): a text column of that kind refuses later values of
 * another JSON type instead of writing them as text.
 */
export type ColumnDef = [string, ColumnType | null, string, fromValues?: boolean];

export interface Column {
  name: string;
  /** The logical type, or null for a table column of another type (written as text). */
  type: ColumnType | null;
  sql: string;
  enc: Encoder;
  /** A name every object inherits (`toString`): read as an own field only. */
  inherited: boolean;
}

/** How a row is named in errors: from the row and the number the load was given with it. */
export type RowName = (row: Row, n: number) => string;

/** Names of PostgreSQL's system columns: no table can have a column of its own with one. */
const SYSTEM_COLUMNS = new Set(["tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"]);

/** What a load needs of its writer: the connection, and one COPY at a time over it. */
export interface CopyHost {
  readonly client: pg.Client;
  /** The quoted schema. */
  readonly qs: string;
  readonly runId: string;
  readonly unloggedStaging: boolean;
  /** COPY text (characters) kept without waiting for the server (0: wait whenever it is behind). */
  readonly copyAhead: number;
  redact(s: string): string;
  /** Ends whichever COPY is in progress. */
  endActive(): Promise<void>;
  /** Ends the COPY of the table loaded before `load`. */
  activate(load: TableLoad): Promise<void>;
  /** Settles when the connection is free (a streamed load's statement runs); null: it is. */
  busy(): Promise<void> | null;
}

/** One table being loaded: a staging table that becomes, or is copied into, its target. */
export class TableLoad {
  readonly staging: string;
  readonly columns = new Map<string, Column>();
  /** The target's columns and SQL types when it exists (read at open). */
  targetColumns: Map<string, string> | null = null;
  created = false;
  rows = 0;
  private copy: ReturnType<typeof copyFrom> | null = null;
  private copyError: Error | null = null;
  private buf = "";
  /** Columns of the COPY in progress, in order. */
  private copyColumns: string[] = [];
  /** The data columns in order (null: changed since last used). */
  private order: Column[] | null = null;

  constructor(
    readonly target: string,
    readonly runId: string,
    /** Staging-only columns before the data (`_seq`, `_parent_seq`), never in the target. */
    readonly fixed: [string, string][],
    readonly meta: boolean,
    private readonly w: CopyHost,
  ) {
    const hash = createHash("sha1").update(target).digest("hex").slice(0, 8);
    this.staging = `${stagingPrefix(runId)}${hash}`;
  }

  q(name: string): string {
    return `${this.w.qs}.${qi(name)}`;
  }

  /** Adds columns (creating the staging table on first use); ends the COPY in progress first. */
  async addColumns(fresh: ColumnDef[]): Promise<void> {
    if (this.created && !fresh.length) return;
    for (const [name] of fresh)
      if (SYSTEM_COLUMNS.has(name) || this.fixed.some(([n]) => n === name))
        throw new RunError(
          "output",
          `field ${JSON.stringify(name)} has a name PostgreSQL ${SYSTEM_COLUMNS.has(name) ? "gives every table's system column" : "output uses itself in its staging table"} (table ${this.target}): rename it with \`fields\``,
        );
    // DDL waits for no COPY: whichever table is being loaded ends its COPY first.
    await this.w.endActive();
    await this.w.busy();
    const defs = fresh.map(([name, type, sql, fromValues]) => {
      const enc = fromValues && type === "text" ? strictText : encoder(type);
      this.columns.set(name, { name, type, sql, enc, inherited: isInheritedName(name) });
      return `${qi(name)} ${sql}`;
    });
    this.order = null;
    const client = this.w.client;
    if (!this.created) {
      const meta = this.meta
        ? [`"_run_id" text DEFAULT ${literal(this.w.runId)}`, `"_loaded_at" timestamptz DEFAULT now()`]
        : [];
      const all = [...this.fixed.map(([n, t]) => `${qi(n)} ${t}`), ...defs, ...meta];
      await client.query(`DROP TABLE IF EXISTS ${this.q(this.staging)}`);
      await client.query(
        `CREATE ${this.w.unloggedStaging ? "UNLOGGED " : ""}TABLE ${this.q(this.staging)} (${all.join(", ")})`,
      );
      this.created = true;
    } else {
      for (const d of defs) await client.query(`ALTER TABLE ${this.q(this.staging)} ADD COLUMN ${d}`);
    }
  }

  /**
   * Sends one row: `fixed` is the fixed columns' texts (tab-separated; null when the table has
   * none), then the row's fields; `name(row, n)` names it in an error. A promise only when the row
   * waits (its table's COPY starts, or a full chunk is sent): no promise per row.
   */
  put(fixed: string | null, row: Row, name: RowName, n = 0): Promise<void> | undefined {
    if (!this.copy) return this.startThenPut(fixed, row, name, n);
    this.buf += this.line(fixed, row, name, n);
    this.rows++;
    if (this.buf.length >= CHUNK) return this.send();
    return undefined;
  }

  private async startThenPut(fixed: string | null, row: Row, name: RowName, n: number): Promise<void> {
    // One connection runs one COPY at a time: the table loaded before ends its COPY.
    await this.w.activate(this);
    this.startCopy();
    await this.put(fixed, row, name, n);
  }

  /** One row as a line of COPY text (its newline included). */
  private line(fixed: string | null, row: Row, name: RowName, n: number): string {
    const cols = (this.order ??= [...this.columns.values()]);
    let line = fixed ?? "";
    for (let i = 0; i < cols.length; i++) {
      const col = cols[i];
      const v = col.inherited ? ownField(row, col.name) : row[col.name];
      let text: string;
      try {
        text = v === null || v === undefined ? "\\N" : col.enc(v);
      } catch (err) {
        throw new RunError(
          "output",
          this.w.redact(
            `record ${name(row, n)}, field ${JSON.stringify(col.name)}: ${(err as Error).message} (table ${this.target})`,
          ),
        );
      }
      line = i === 0 && fixed === null ? text : `${line}\t${text}`;
    }
    return `${line}\n`;
  }

  private startCopy(): void {
    this.copyColumns = [...this.fixed.map(([n]) => n), ...this.columns.keys()];
    const cols = this.copyColumns.map(qi).join(", ");
    const stream = copyFrom(`COPY ${this.q(this.staging)} (${cols}) FROM STDIN`);
    stream.on("error", (err) => {
      this.copyError ??= err;
    });
    this.copy = stream;
    // Behind a running statement (a streamed load), the COPY is sent when it is done; meanwhile
    // its rows wait in the stream (up to `copyAhead`).
    const { client } = this.w;
    const busy = this.w.busy();
    if (!busy) client.query(stream);
    else busy.then(() => stream.destroyed || client.query(stream));
  }

  private async send(): Promise<void> {
    const copy = this.copy!;
    const chunk = this.buf;
    this.buf = "";
    if (this.copyError) throw this.copyError;
    // A COPY waiting for a statement (a streamed load's upsert) keeps up to `copyAhead`.
    if (!copy.write(chunk) && copy.writableLength > this.w.copyAhead) {
      await new Promise<void>((resolve) => {
        const done = () => {
          copy.off("drain", done);
          copy.off("error", done);
          resolve();
        };
        copy.on("drain", done);
        copy.on("error", done);
      });
    }
    if (this.copyError) throw this.copyError;
  }

  async endCopy(): Promise<void> {
    const copy = this.copy;
    if (!copy) return;
    if (this.buf) await this.send();
    this.copy = null;
    await this.finish(copy);
  }

  /**
   * Ends the COPY without waiting for the server: the promise settles when the server has the
   * rows. Queries sent after it run after it (one connection runs its queries in order).
   */
  endCopyQueued(): Promise<void> {
    const copy = this.copy;
    if (!copy) return Promise.resolve();
    this.copy = null;
    if (this.buf) copy.write(this.buf);
    this.buf = "";
    return this.finish(copy);
  }

  /** Ends `copy`: settles when the server has its rows (or with the COPY's error). */
  private finish(copy: ReturnType<typeof copyFrom>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.copyError) return reject(this.copyError);
      copy.once("finish", resolve);
      copy.once("error", reject);
      copy.end();
    });
  }

  /** Kills a COPY in progress (abort): the connection is closed right after. */
  dropCopy(): void {
    if (this.copy) this.copy.destroy(new Error("aborted"));
    this.copy = null;
  }

  /**
   * The column a field gets: the target's type when the target has it, else the wanted one; a
   * schema type the target's column differs from is noted in `typeChanges`.
   */
  columnFor(name: string, wanted: ColumnType | null, typeChanges: string[], fromSchema = true): ColumnDef {
    checkName(name, this.target);
    const existing = this.targetColumns?.get(name);
    if (existing !== undefined) {
      const type = typeOfSql(existing);
      if (wanted && fromSchema && type !== wanted)
        typeChanges.push(
          `column ${JSON.stringify(name)} of table ${this.target} is ${existing}, but the schema now says ${POSTGRES_TYPES[wanted]}: the column is not altered (change it yourself, or write to a new table)`,
        );
      return [name, type, existing];
    }
    const type = wanted ?? "json";
    return [name, type, POSTGRES_TYPES[type], !fromSchema];
  }

  /** Data columns as they go into the target (no fixed columns), metadata included. */
  targetNames(): string[] {
    return [...this.columns.keys(), ...(this.meta ? METADATA_COLUMNS : [])];
  }
}

/** The load of `<table>__invalid`; its rows carry `_run_id` and `_loaded_at` always (its own columns). */
export async function openInvalidLoad(table: string, host: CopyHost): Promise<TableLoad> {
  const name = invalidTableName(table);
  try {
    checkIdent(name, undefined, "table");
  } catch (err) {
    throw new RunError("output", (err as Error).message);
  }
  const load = new TableLoad(name, host.runId, [], false, host);
  await load.addColumns(INVALID_COLUMNS.map(([n, t]) => [n, t, POSTGRES_TYPES[t]]));
  return load;
}

/** A stream's invalid records: gathered, and sent after each batch (one COPY at a time). */
export class InvalidRows {
  /** Created with the first invalid record. */
  load: TableLoad | null = null;
  private pending: InvalidEntry[] = [];

  constructor(
    private readonly table: string,
    private readonly host: CopyHost,
  ) {}

  async add(entry: InvalidEntry): Promise<void> {
    this.pending.push(entry);
    if (this.pending.length >= 1000) await this.flush();
  }

  async flush(): Promise<void> {
    const entries = this.pending;
    this.pending = [];
    for (const entry of entries) {
      this.load ??= await openInvalidLoad(this.table, this.host);
      const { record_id, record, errors } = entry;
      const row: Row = {
        record_id,
        record,
        errors,
        _run_id: this.host.runId,
        _loaded_at: new Date().toISOString(),
      };
      await this.load.put(null, row, () => entry.record_id);
    }
  }
}

/**
 * Drops the staging tables of `loads` (an aborted stream: a COPY cut short leaves the stream's
 * connection unusable, so a new one does it); on any failure the next run drops them.
 */
export async function dropLoads(url: string, loads: TableLoad[]): Promise<void> {
  try {
    const again = await connectClient(url);
    try {
      for (const load of loads)
        if (load.created) await again.query(`DROP TABLE IF EXISTS ${load.q(load.staging)}`);
    } finally {
      await again.end().catch(() => {});
    }
  } catch {
    // The next run drops them (run-lock.ts).
  }
}
