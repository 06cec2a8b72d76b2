import { createHash } from "node:crypto";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { describeDatabaseUrl } from "../compile/compile-output.js";
import type { OutputPlan } from "../compile/plan.js";
import type { Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import { stringifyJson } from "../shared/json-text.js";
import { type Key, keyFunction, requireKeyForMerge } from "./merge.js";
import {
  type ColumnType,
  checkIdent,
  childTableName,
  IdentifierError,
  INDEX_COLUMN,
  INVALID_COLUMNS,
  invalidTableName,
  isArrayOfObjects,
  METADATA_COLUMNS,
  nestedFields,
  POSTGRES_TYPES,
  STATE_TABLE,
  schemaColumnTypes,
  typeOfValues,
} from "./table-shape.js";
import type { CommitState, InvalidEntry, RecordWriter, StreamState, WriterContext } from "./writer.js";

/** Records buffered before they are encoded: new fields are typed from all the batch's values. */
const BATCH = 1000;
/** COPY data is sent in chunks of about this many characters. */
const CHUNK = 64 * 1024;

/**
 * PostgreSQL: one table per stream (`output.table`, default the stream's name) in `output.schema`.
 *
 * A run loads its records with `COPY … FROM STDIN` (text format) into a staging table
 * `_staging_<run id>_<hash of the table name>` in the same schema; `commit()` then changes the
 * target in ONE transaction, so readers never see a half-loaded table and a failed or killed run
 * leaves it exactly as it was:
 * - replace (or no target yet): the old table is dropped and the staging table renamed to it;
 * - append: `INSERT INTO target SELECT … FROM staging`;
 * - merge: `INSERT … ON CONFLICT (primary key) DO UPDATE`, on a PRIMARY KEY constraint created on
 *   the target when it has none. A new record replaces the old row whole.
 * Within a run the last record of a primary key wins (the staging rows carry a `_seq`).
 *
 * The same transaction replaces `<table>__invalid` (the run's invalid records) and child tables
 * (`nested: tables`), and writes the stream's incremental state into `_pipelines_state`.
 * A staging table a killed run left is dropped by the next run (run-lock.ts, {@link dropStaging}).
 *
 * Values are written from their JSON form: integers beyond 2^53 arrive as BigInt and are written
 * with all their digits; a string holding NUL (U+0000), which PostgreSQL text and jsonb cannot
 * store, fails the stream with an error naming the record and field (nothing is committed); a
 * value whose JSON type does not fit a typed column (a string in a bigint column) likewise.
 */
export async function openPostgresWriter(output: OutputPlan, ctx: WriterContext): Promise<RecordWriter> {
  const settings = output.postgres;
  const tablePlan = output.table;
  if (!settings || !tablePlan) throw new Error("postgres output without its settings");
  const primaryKey = ctx.primaryKey?.length ? [...new Set(ctx.primaryKey)] : null;
  requireKeyForMerge(output, primaryKey);
  const where = describeDatabaseUrl(settings.url);
  const redact = (s: string) => (ctx.redactor ? ctx.redactor.text(s) : s);
  try {
    checkIdent(settings.schema, undefined, "schema");
    checkIdent(tablePlan.name, undefined, "table");
  } catch (err) {
    throw new RunError(
      "output",
      redact(`postgres output of stream ${ctx.stream}: ${(err as Error).message}`),
    );
  }
  const client = new pg.Client({ connectionString: settings.url, application_name: "pipelines" });
  // A connection lost between queries is reported by the next query; this only keeps it from
  // crashing the process as an unhandled 'error' event.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw connectionError(err, where, redact);
  }
  const writer = new PostgresWriter(client, output, ctx, primaryKey, where, redact);
  try {
    await writer.open();
    return writer;
  } catch (err) {
    await writer.abort().catch(() => {});
    throw writer.fail(err);
  }
}

/** A clear message for a connection that failed, the URL shown without its password. */
export function connectionError(err: unknown, where: string, redact: (s: string) => string): RunError {
  const e = err as { code?: string; message?: string };
  const code = e?.code;
  const why =
    code === "ECONNREFUSED"
      ? "connection refused (is the server running and listening there?)"
      : code === "ENOTFOUND" || code === "EAI_AGAIN"
        ? "the host name does not resolve"
        : code === "ETIMEDOUT"
          ? "the connection timed out"
          : code === "28P01"
            ? "password authentication failed (check the user and password in `url`)"
            : code === "28000"
              ? `the server refused this user or host (${e.message})`
              : code === "3D000"
                ? `the database does not exist (${e.message})`
                : (e?.message ?? String(err));
  return new RunError("output", redact(`cannot connect to PostgreSQL at ${where}: ${why}`));
}

type Encoder = (v: unknown) => string;

interface Column {
  /** The logical type, or null for a table column of another type (written as text). */
  type: ColumnType | null;
  sql: string;
  enc: Encoder;
}

/** One table being loaded: a staging table that becomes, or is copied into, its target. */
class TableLoad {
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

  constructor(
    readonly target: string,
    runId: string,
    /** Staging-only columns before the data (`_seq`, `_parent_seq`), never in the target. */
    readonly fixed: [string, string][],
    readonly meta: boolean,
    private readonly w: PostgresWriter,
  ) {
    const hash = createHash("sha1").update(target).digest("hex").slice(0, 8);
    this.staging = `${stagingPrefix(runId)}${hash}`;
  }

  q(name: string): string {
    return `${this.w.qs}.${qi(name)}`;
  }

  /** Adds columns (creating the staging table on first use); ends the COPY in progress first. */
  async addColumns(fresh: [string, ColumnType | null, string][]): Promise<void> {
    if (this.created && !fresh.length) return;
    // DDL waits for no COPY: whichever table is being loaded ends its COPY first.
    await this.w.endActive();
    const defs = fresh.map(([name, type, sql]) => {
      this.columns.set(name, { type, sql, enc: encoder(type) });
      return `${qi(name)} ${sql}`;
    });
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

  /** Sends one row: `values` are the fixed columns' texts, then the row's fields. */
  async put(fixedValues: string[], row: Row, id: () => string): Promise<void> {
    if (!this.copy) {
      // One connection runs one COPY at a time: the table loaded before ends its COPY.
      await this.w.activate(this);
      this.startCopy();
    }
    let line = fixedValues.join("\t");
    let first = fixedValues.length === 0;
    for (const [name, col] of this.columns) {
      const v = Object.hasOwn(row, name) ? row[name] : undefined;
      let text: string;
      try {
        text = v === null || v === undefined ? "\\N" : col.enc(v);
      } catch (err) {
        throw new RunError(
          "output",
          this.w.redact(
            `record ${id()}, field ${JSON.stringify(name)}: ${(err as Error).message} (table ${this.target})`,
          ),
        );
      }
      line += first ? text : `\t${text}`;
      first = false;
    }
    this.buf += `${line}\n`;
    this.rows++;
    if (this.buf.length >= CHUNK) await this.send();
  }

  private startCopy(): void {
    this.copyColumns = [...this.fixed.map(([n]) => n), ...this.columns.keys()];
    const cols = this.copyColumns.map(qi).join(", ");
    const stream = this.w.client.query(copyFrom(`COPY ${this.q(this.staging)} (${cols}) FROM STDIN`));
    stream.on("error", (err) => {
      this.copyError ??= err;
    });
    this.copy = stream;
  }

  private async send(): Promise<void> {
    const copy = this.copy!;
    const chunk = this.buf;
    this.buf = "";
    if (this.copyError) throw this.copyError;
    if (!copy.write(chunk)) {
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
    await new Promise<void>((resolve, reject) => {
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

  /** Data columns as they go into the target (no fixed columns), metadata included. */
  targetNames(): string[] {
    return [...this.columns.keys(), ...(this.meta ? METADATA_COLUMNS : [])];
  }
}

export class PostgresWriter implements RecordWriter {
  readonly qs: string;
  readonly runId: string;
  private readonly table: string;
  private readonly main: TableLoad;
  private readonly children = new Map<string, TableLoad>();
  private readonly childSchemas: Map<string, Record<string, unknown> | null>;
  private invalid: TableLoad | null = null;
  private invalidPending: InvalidEntry[] = [];
  private active: TableLoad | null = null;
  private readonly schemaTypes: Map<string, ColumnType>;
  private readonly planned: string[];
  private batch: Row[] = [];
  private seq = 0;
  private readonly keyOf: ((r: Row) => Key | null) | null;
  private readonly keys = new Set<Key>();
  private dups = 0;
  private saved: StreamState | null = null;
  private readonly notes: string[] = [];
  private readonly typeChanges: string[] = [];
  private closed = false;
  /**
   * Staging tables are UNLOGGED when the run appends or merges (they are only read by the commit:
   * no WAL for them, half the writes); with replace the staging table becomes the target, so it
   * is logged from the start.
   */
  readonly unloggedStaging: boolean;
  private readonly nestedMode: boolean;
  /** Fields seen that are not child tables (so a later array of objects stays a JSON column). */
  private readonly plainFields = new Set<string>();

  constructor(
    readonly client: pg.Client,
    private readonly output: OutputPlan,
    private readonly ctx: WriterContext,
    private readonly primaryKey: string[] | null,
    private readonly where: string,
    readonly redact: (s: string) => string,
  ) {
    this.qs = qi(output.postgres!.schema);
    this.runId = ctx.runId;
    this.unloggedStaging = output.mode !== "replace";
    this.table = output.table!.name;
    const meta = output.table!.metadataColumns;
    this.main = new TableLoad(this.table, ctx.runId, [["_seq", "bigint"]], meta, this);
    this.schemaTypes = schemaColumnTypes(ctx.schema);
    this.nestedMode = output.table!.nested === "tables";
    this.childSchemas = this.nestedMode ? nestedFields(ctx.schema) : new Map();
    this.planned = [...new Set([...(ctx.columns ?? []), ...(primaryKey ?? [])])].filter(
      (c) => !this.childSchemas.has(c),
    );
    this.keyOf = primaryKey
      ? keyFunction(primaryKey, (v) =>
          v === null || v === undefined ? undefined : typeof v === "bigint" ? { big: String(v) } : v,
        )
      : null;
  }

  /** Reads the target's columns and the saved state, creates the staging table. */
  async open(): Promise<void> {
    const { client } = this;
    const schema = this.output.postgres!.schema;
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.qs}`).catch(ignoreRace);
    await client
      .query(
        `CREATE TABLE IF NOT EXISTS ${this.qs}.${qi(STATE_TABLE)} (pipeline text NOT NULL, stream text NOT NULL, state jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, stream))`,
      )
      .catch(ignoreRace);
    if (this.output.stateKey) {
      const r = await client.query(
        `SELECT state FROM ${this.qs}.${qi(STATE_TABLE)} WHERE pipeline = $1 AND stream = $2`,
        [this.output.stateKey, this.ctx.stream],
      );
      this.saved = r.rows[0]?.state ?? null;
    }
    const keepTarget = this.output.mode !== "replace";
    if (keepTarget) this.main.targetColumns = await tableColumns(client, schema, this.table);
    for (const m of METADATA_COLUMNS) {
      if (this.main.meta && (this.planned.includes(m) || this.schemaTypes.has(m)))
        throw new RunError(
          "output",
          `field \`${m}\` has the name of a metadata column of table ${this.table}: rename it with \`fields\`, or set \`metadata_columns: false\``,
        );
    }
    const fresh: [string, ColumnType | null, string][] = [];
    // Fields the schema types (or the table has) get their column now; others when values come.
    for (const name of this.planned)
      if (this.schemaTypes.has(name) || this.main.targetColumns?.has(name))
        fresh.push(this.columnFor(this.main, name, this.schemaTypes.get(name) ?? null));
    for (const [field, items] of this.childSchemas) await this.openChild(field, items);
    if (this.typeChanges.length && this.ctx.drift === "fail")
      throw new RunError(
        "drift",
        `drift: fail — ${this.typeChanges.join("; ")}. Nothing was loaded; the table is unchanged.`,
      );
    await this.main.addColumns(fresh);
  }

  /** The column a field gets: the target's type when the target has it, else the wanted one. */
  private columnFor(
    load: TableLoad,
    name: string,
    wanted: ColumnType | null,
    fromSchema = true,
  ): [string, ColumnType | null, string] {
    checkName(name, load.target);
    const existing = load.targetColumns?.get(name);
    if (existing !== undefined) {
      const type = typeOfSql(existing);
      if (wanted && fromSchema && type !== wanted)
        this.typeChanges.push(
          `column ${JSON.stringify(name)} of table ${load.target} is ${existing}, but the schema now says ${POSTGRES_TYPES[wanted]}: the column is not altered (change it yourself, or write to a new table)`,
        );
      return [name, type, existing];
    }
    const type = wanted ?? "json";
    return [name, type, POSTGRES_TYPES[type]];
  }

  private async openChild(field: string, items: Record<string, unknown> | null): Promise<TableLoad> {
    const name = childTableName(this.table, field);
    try {
      checkIdent(name, undefined, "child table");
    } catch (err) {
      throw new RunError("output", (err as Error).message);
    }
    const load = new TableLoad(name, this.runId, [["_parent_seq", "bigint"]], this.main.meta, this);
    if (this.output.mode !== "replace")
      load.targetColumns = await tableColumns(this.client, this.output.postgres!.schema, name);
    const types = schemaColumnTypes(items);
    const cols: [string, ColumnType | null, string][] = [];
    for (const k of this.primaryKey!)
      cols.push(this.columnFor(load, k, this.schemaTypes.get(k) ?? this.main.columns.get(k)?.type ?? null));
    cols.push(this.columnFor(load, INDEX_COLUMN, "bigint"));
    for (const [k, t] of types) {
      if (!items) break;
      if (
        this.primaryKey!.includes(k) ||
        k === INDEX_COLUMN ||
        (METADATA_COLUMNS as readonly string[]).includes(k)
      )
        throw new RunError(
          "output",
          `field \`${k}\` of the items of \`${field}\` has the name of a column child table ${name} sets itself (the parent's primary key, \`${INDEX_COLUMN}\`, metadata)`,
        );
      cols.push(this.columnFor(load, k, t));
    }
    await load.addColumns(cols);
    this.children.set(field, load);
    return load;
  }

  write(record: Row): Promise<void> | undefined {
    this.batch.push(record);
    if (this.batch.length >= BATCH) return this.flush();
    return undefined;
  }

  duplicates(): number {
    return this.dups;
  }

  savedState(): StreamState | null {
    return this.saved;
  }

  warnings(): string[] {
    return [...this.typeChanges, ...this.notes];
  }

  invalidTarget(): string {
    return `table "${this.output.postgres!.schema}"."${invalidTableName(this.table)}"`;
  }

  async endActive(): Promise<void> {
    const active = this.active;
    this.active = null;
    if (active) await active.endCopy();
  }

  /** Ends the COPY of the table loaded before `load`. */
  async activate(load: TableLoad): Promise<void> {
    if (this.active && this.active !== load) await this.active.endCopy();
    this.active = load;
  }

  /** Invalid records are gathered and sent after the batch (one COPY at a time). */
  async writeInvalid(entry: InvalidEntry): Promise<void> {
    this.invalidPending.push(entry);
    if (this.invalidPending.length >= BATCH) await this.flushInvalid();
  }

  private async flushInvalid(): Promise<void> {
    const entries = this.invalidPending;
    this.invalidPending = [];
    for (const e of entries) await this.putInvalid(e);
  }

  private async putInvalid(entry: InvalidEntry): Promise<void> {
    if (!this.invalid) {
      const name = invalidTableName(this.table);
      try {
        checkIdent(name, undefined, "table");
      } catch (err) {
        throw new RunError("output", (err as Error).message);
      }
      // Its rows carry `_run_id` and `_loaded_at` always (they are its own columns).
      this.invalid = new TableLoad(name, this.runId, [], false, this);
      await this.invalid.addColumns(INVALID_COLUMNS.map(([n, t]) => [n, t, POSTGRES_TYPES[t]]));
    }
    const row: Row = {
      record_id: entry.record_id,
      record: entry.record,
      errors: entry.errors,
      _run_id: this.runId,
      _loaded_at: new Date().toISOString(),
    };
    await this.invalid.put([], row, () => entry.record_id);
  }

  /** Encodes the buffered records: new fields become columns first. */
  private async flush(): Promise<void> {
    const rows = this.batch;
    if (this.invalidPending.length) await this.flushInvalid();
    if (!rows.length) return;
    this.batch = [];
    await this.discover(rows);
    const base = this.seq;
    /** Child rows of the batch, sent after the parent rows (one COPY at a time). */
    const childRows = new Map<TableLoad, [string, Row, () => string][]>();
    for (const load of this.children.values()) childRows.set(load, []);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      const seq = ++this.seq;
      const id = () => this.describe(row, base + i + 1);
      if (this.keyOf) {
        const key = this.keyOf(row);
        if (key === null) {
          if (this.output.mode === "merge" || this.nestedMode)
            throw new RunError(
              "output",
              this.redact(
                `record ${id()} has no value for the primary key (${this.primaryKey!.join(", ")}): it cannot be merged into table ${this.table}`,
              ),
            );
        } else if (this.keys.has(key)) this.dups++;
        else this.keys.add(key);
      }
      await this.main.put([String(seq)], row, id);
      for (const [field, load] of this.children) {
        const items = Object.hasOwn(row, field) ? row[field] : undefined;
        if (items === null || items === undefined) continue;
        if (!Array.isArray(items))
          throw new RunError(
            "output",
            this.redact(
              `record ${id()}: field \`${field}\` is a child table (nested: tables) but holds no array`,
            ),
          );
        for (let j = 0; j < items.length; j++) {
          const item = items[j];
          if (!item || typeof item !== "object" || Array.isArray(item))
            throw new RunError(
              "output",
              this.redact(
                `record ${id()}: item ${j} of \`${field}\` is not an object, so it cannot be a row of child table ${load.target}`,
              ),
            );
          const child: Row = { ...(item as Row) };
          for (const k of this.primaryKey!) child[k] = row[k];
          child[INDEX_COLUMN] = j;
          childRows.get(load)!.push([String(seq), child, id]);
        }
      }
    }
    for (const [load, list] of childRows)
      for (const [seq, child, id] of list) await load.put([seq], child, id);
  }

  /** Fields `rows` bring that have no column yet: child tables (nested: tables), or columns. */
  private async discover(rows: Row[]): Promise<void> {
    const fresh = new Set<string>();
    for (const row of rows)
      for (const name in row)
        if (!this.main.columns.has(name) && !this.children.has(name) && !fresh.has(name)) fresh.add(name);
    const newChildren: string[] = [];
    if (this.nestedMode && this.primaryKey) {
      for (const name of [...fresh]) {
        if (this.plainFields.has(name) || this.primaryKey.includes(name)) continue;
        const values = rows.map((r) => (Object.hasOwn(r, name) ? r[name] : undefined));
        const some = values.filter((v) => v !== null && v !== undefined);
        if (some.length && some.every(isArrayOfObjects)) {
          newChildren.push(name);
          fresh.delete(name);
        }
      }
    }
    if (fresh.size) {
      const cols: [string, ColumnType | null, string][] = [];
      for (const name of fresh) {
        if (this.main.meta && (METADATA_COLUMNS as readonly string[]).includes(name))
          throw new RunError(
            "output",
            `field \`${name}\` has the name of a metadata column of table ${this.table}: rename it with \`fields\`, or set \`metadata_columns: false\``,
          );
        const fromSchema = this.schemaTypes.get(name);
        // Without a schema, from the batch's values; only nulls so far: jsonb (holds any later value).
        const wanted =
          fromSchema ??
          typeOfValues(rows.map((r) => (Object.hasOwn(r, name) ? r[name] : undefined))) ??
          "json";
        cols.push(this.columnFor(this.main, name, wanted, fromSchema !== undefined));
        this.plainFields.add(name);
      }
      await this.main.addColumns(cols);
    }
    // After the parent's columns: a child's key columns take their types.
    for (const name of newChildren) await this.openChild(name, null);
    for (const [field, load] of this.children) {
      const fields = new Set<string>();
      for (const row of rows) {
        const items = Object.hasOwn(row, field) ? row[field] : undefined;
        if (!Array.isArray(items)) continue;
        for (const item of items)
          if (item && typeof item === "object" && !Array.isArray(item))
            for (const k in item as Row) if (!load.columns.has(k)) fields.add(k);
      }
      if (!fields.size) continue;
      const cols: [string, ColumnType | null, string][] = [];
      for (const k of fields) {
        if ((METADATA_COLUMNS as readonly string[]).includes(k) && load.meta)
          throw new RunError(
            "output",
            `field \`${k}\` of the items of \`${field}\` has the name of a metadata column`,
          );
        const values: unknown[] = [];
        for (const row of rows) {
          const items = Object.hasOwn(row, field) ? row[field] : undefined;
          if (Array.isArray(items))
            for (const it of items) if (it && typeof it === "object") values.push((it as Row)[k]);
        }
        cols.push(this.columnFor(load, k, typeOfValues(values) ?? "json", false));
      }
      await load.addColumns(cols);
    }
  }

  /** How a record is named in errors: its place in the run and its primary key. */
  private describe(row: Row, n: number): string {
    if (!this.primaryKey) return `#${n}`;
    const parts = this.primaryKey.map((k) => `${k}=${safeJson(row[k])}`);
    return `#${n} (${parts.join(", ")})`;
  }

  async commit(state?: CommitState | null): Promise<void> {
    await this.flush();
    if (!this.main.created) await this.main.addColumns([]);
    for (const load of this.loads()) await load.endCopy();
    const { client } = this;
    await client.query("BEGIN");
    try {
      if (this.dups) await this.dedupe();
      const mode = this.output.mode;
      // Children first: a merge finds the parent keys it replaces in the parent's staging table.
      for (const load of this.children.values()) await this.commitChild(load, mode);
      await this.commitTable(this.main, mode, this.primaryKey);
      await this.commitInvalid();
      if (state && this.output.stateKey) {
        const value: StreamState = { cursor: state.cursor, updated_at: new Date().toISOString() };
        await client.query(
          `INSERT INTO ${this.qs}.${qi(STATE_TABLE)} (pipeline, stream, state, updated_at) VALUES ($1, $2, $3, now()) ON CONFLICT (pipeline, stream) DO UPDATE SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at`,
          [this.output.stateKey, this.ctx.stream, JSON.stringify(value)],
        );
      }
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw this.fail(err);
    }
    await this.close();
  }

  private *loads(): Iterable<TableLoad> {
    yield this.main;
    yield* this.children.values();
    if (this.invalid) yield this.invalid;
  }

  /** Keeps the last record of each primary key (and its child rows). */
  private async dedupe(): Promise<void> {
    const pk = this.primaryKey!;
    const s = this.main.q(this.main.staging);
    const same = pk.map((k) => `a.${qi(k)} = b.${qi(k)}`).join(" AND ");
    await this.client.query(`DELETE FROM ${s} a USING ${s} b WHERE ${same} AND a."_seq" < b."_seq"`);
    for (const load of this.children.values())
      await this.client.query(
        `DELETE FROM ${load.q(load.staging)} c WHERE NOT EXISTS (SELECT 1 FROM ${s} p WHERE p."_seq" = c."_parent_seq")`,
      );
  }

  private async commitTable(load: TableLoad, mode: OutputPlan["mode"], pk: string[] | null): Promise<void> {
    const { client } = this;
    const target = load.q(load.target);
    const staging = load.q(load.staging);
    const exists =
      mode === "replace"
        ? await tableExists(client, this.output.postgres!.schema, load.target)
        : load.targetColumns !== null;
    if (mode === "replace" || !exists) {
      for (const [n] of load.fixed) await client.query(`ALTER TABLE ${staging} DROP COLUMN ${qi(n)}`);
      await client.query(`DROP TABLE IF EXISTS ${target}`);
      // An unlogged staging table (append, merge) becomes a logged, crash-safe target.
      if (this.unloggedStaging) await client.query(`ALTER TABLE ${staging} SET LOGGED`);
      await client.query(`ALTER TABLE ${staging} RENAME TO ${qi(load.target)}`);
      if (mode === "merge" && pk)
        await client.query(`ALTER TABLE ${target} ADD PRIMARY KEY (${pk.map(qi).join(", ")})`);
      return;
    }
    const present = load.targetColumns!;
    for (const name of load.targetNames()) {
      if (present.has(name)) continue;
      const col = load.columns.get(name);
      const sql = col ? col.sql : name === "_loaded_at" ? "timestamptz" : "text";
      await client.query(`ALTER TABLE ${target} ADD COLUMN ${qi(name)} ${sql}`);
      this.notes.push(`added column ${JSON.stringify(name)} (${sql}) to table ${load.target}`);
    }
    const names = load.targetNames();
    const cols = names.map(qi).join(", ");
    if (mode === "append") {
      await client.query("SAVEPOINT pipelines_append");
      try {
        await client.query(`INSERT INTO ${target} (${cols}) SELECT ${cols} FROM ${staging}`);
      } catch (err) {
        // Append keeps every row: a primary key an earlier merge created gives way.
        if ((err as { code?: string }).code !== "23505") throw err;
        await client.query("ROLLBACK TO SAVEPOINT pipelines_append");
        const pkName = await primaryKeyName(client, this.output.postgres!.schema, load.target);
        if (!pkName) throw err;
        await client.query(`ALTER TABLE ${target} DROP CONSTRAINT ${qi(pkName)}`);
        await client.query(`INSERT INTO ${target} (${cols}) SELECT ${cols} FROM ${staging}`);
        this.notes.push(
          `dropped the primary key of table ${load.target}: append added rows with keys it already had`,
        );
      }
    } else {
      await this.ensurePrimaryKey(load, pk!);
      const all = [...present.keys(), ...names.filter((n) => !present.has(n))];
      const set = all
        .filter((c) => !pk!.includes(c))
        .map((c) => `${qi(c)} = ${names.includes(c) ? `EXCLUDED.${qi(c)}` : "NULL"}`)
        .join(", ");
      await client.query(
        `INSERT INTO ${target} (${cols}) SELECT ${cols} FROM ${staging} ON CONFLICT (${pk!.map(qi).join(", ")}) ${set ? `DO UPDATE SET ${set}` : "DO NOTHING"}`,
      );
    }
    await client.query(`DROP TABLE ${staging}`);
  }

  private async commitChild(load: TableLoad, mode: OutputPlan["mode"]): Promise<void> {
    const pk = this.primaryKey!;
    if (mode === "merge" && load.targetColumns) {
      // The parent rows this run replaces take their child rows with them.
      const on = pk.map((k) => `c.${qi(k)} = p.${qi(k)}`).join(" AND ");
      await this.client.query(
        `DELETE FROM ${load.q(load.target)} c USING ${this.main.q(this.main.staging)} p WHERE ${on}`,
      );
    }
    // Append and merge of child rows are plain inserts (no conflict once the old ones are gone).
    await this.commitTable(load, mode === "merge" ? "append" : mode, null);
    if (mode === "merge" && !load.targetColumns)
      await this.client.query(
        `ALTER TABLE ${load.q(load.target)} ADD PRIMARY KEY (${[...pk, INDEX_COLUMN].map(qi).join(", ")})`,
      );
  }

  /** `<table>__invalid` describes this run: replaced, or dropped when every record was valid. */
  private async commitInvalid(): Promise<void> {
    const name = invalidTableName(this.table);
    if (this.invalid) await this.commitTable(this.invalid, "replace", null);
    else if (Buffer.byteLength(name) <= 63)
      await this.client.query(`DROP TABLE IF EXISTS ${this.qs}.${qi(name)}`);
  }

  private async ensurePrimaryKey(load: TableLoad, pk: string[]): Promise<void> {
    const schema = this.output.postgres!.schema;
    const r = await this.client.query(
      `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`,
      [`${qi(schema)}.${qi(load.target)}`],
    );
    const current = r.rows.map((x: { attname: string }) => x.attname);
    if (current.length) {
      if (current.join("\0") !== pk.join("\0"))
        throw new RunError(
          "output",
          `cannot merge into table ${load.target}: its primary key is (${current.join(", ")}), the stream's is (${pk.join(", ")})`,
        );
      return;
    }
    await this.client.query("SAVEPOINT pipelines_pk");
    try {
      await this.client.query(
        `ALTER TABLE ${load.q(load.target)} ADD PRIMARY KEY (${pk.map(qi).join(", ")})`,
      );
    } catch (err) {
      await this.client.query("ROLLBACK TO SAVEPOINT pipelines_pk");
      throw new RunError(
        "output",
        this.redact(
          `cannot merge into table ${load.target}: its rows are not unique (or not set) by the primary key (${pk.join(", ")}), so they cannot be upserted (was it written with mode append?): ${(err as Error).message}`,
        ),
      );
    }
  }

  /** The stream failed: the staging tables go, the target is untouched. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.batch = [];
    for (const load of this.loads()) load.dropCopy();
    try {
      // A COPY cut short leaves the connection unusable: a new one drops the staging tables.
      await this.client.end().catch(() => {});
      this.closed = true;
      const again = new pg.Client({
        connectionString: this.output.postgres!.url,
        application_name: "pipelines",
      });
      again.on("error", () => {});
      await again.connect();
      try {
        for (const load of this.loads())
          if (load.created) await again.query(`DROP TABLE IF EXISTS ${load.q(load.staging)}`);
      } finally {
        await again.end().catch(() => {});
      }
    } catch {
      // The next run drops them (run-lock.ts).
    }
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.end().catch(() => {});
  }

  /** Any error as a RunError with a clear, redacted message. */
  fail(err: unknown): RunError {
    if (err instanceof RunError) return err;
    if (err instanceof IdentifierError) return new RunError("output", this.redact(err.message));
    const e = err as { code?: string; message?: string; where?: string; detail?: string };
    if (e?.code && /^(ECONN|ENOTFOUND|ETIMEDOUT|EAI_|57P0|08)/.test(e.code))
      return new RunError(
        "output",
        this.redact(`PostgreSQL at ${this.where}: connection lost (${e.message})`),
      );
    const detail = e?.detail ? ` (${e.detail})` : "";
    const at = e?.where ? ` [${e.where.split("\n")[0].slice(0, 300)}]` : "";
    return new RunError(
      "output",
      this.redact(
        `PostgreSQL at ${this.where}, table ${this.table}: ${e?.message ?? String(err)}${detail}${at}`,
      ),
    );
  }
}

/** The prefix of every staging table of a run (the next run drops a killed one's by it). */
export function stagingPrefix(runId: string): string {
  return `_staging_${runId}_`;
}

/** Drops the staging tables of run `runId` in `schema`; the dropped names. */
export async function dropStaging(url: string, schema: string, runId: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url, application_name: "pipelines" });
  client.on("error", () => {});
  await client.connect();
  try {
    const r = await client.query(
      "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND starts_with(tablename, $2)",
      [schema, stagingPrefix(runId)],
    );
    const dropped: string[] = [];
    for (const { tablename } of r.rows as { tablename: string }[]) {
      await client.query(`DROP TABLE IF EXISTS ${qi(schema)}.${qi(tablename)}`);
      dropped.push(tablename);
    }
    return dropped;
  } finally {
    await client.end().catch(() => {});
  }
}

function qi(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

function checkName(name: string, table: string): void {
  try {
    checkIdent(name, undefined, "field");
  } catch (err) {
    throw new RunError("output", `${(err as Error).message} (table ${table})`);
  }
}

function ignoreRace(err: { code?: string }): void {
  // Two streams creating the same schema or table at once: one wins, the other sees it exist.
  if (err?.code !== "23505" && err?.code !== "42P07" && err?.code !== "42P06") throw err;
}

async function tableExists(client: pg.Client, schema: string, table: string): Promise<boolean> {
  const r = await client.query("SELECT to_regclass($1) AS t", [`${qi(schema)}.${qi(table)}`]);
  return r.rows[0].t !== null;
}

/** The table's columns and their SQL types, in order; null when it does not exist. */
async function tableColumns(
  client: pg.Client,
  schema: string,
  table: string,
): Promise<Map<string, string> | null> {
  if (!(await tableExists(client, schema, table))) return null;
  const r = await client.query(
    "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    [`${qi(schema)}.${qi(table)}`],
  );
  return new Map(r.rows.map((x: { attname: string; type: string }) => [x.attname, x.type]));
}

async function primaryKeyName(client: pg.Client, schema: string, table: string): Promise<string | null> {
  const r = await client.query(
    "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'p'",
    [`${qi(schema)}.${qi(table)}`],
  );
  return r.rows[0]?.conname ?? null;
}

const SQL_TYPES: Record<string, ColumnType> = {
  text: "text",
  "timestamp with time zone": "timestamptz",
  date: "date",
  bigint: "bigint",
  "double precision": "double",
  boolean: "boolean",
  jsonb: "json",
};

function typeOfSql(sql: string): ColumnType | null {
  return SQL_TYPES[sql] ?? null;
}

const NEEDS_ESCAPE = /[\\\n\r\t]/;

/** A string as a COPY text field: backslash, newline, CR and tab escaped; NUL refused. */
function copyText(s: string): string {
  if (s.includes("\0"))
    throw new Error(
      "holds a NUL character (U+0000), which PostgreSQL text cannot store; drop the field with `fields` or write jsonl",
    );
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(/[\\\n\r\t]/g, (c) =>
    c === "\\" ? "\\\\" : c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\t",
  );
}

function safeJson(v: unknown): string {
  try {
    return stringifyJson(v) ?? "undefined";
  } catch {
    return String(v);
  }
}

function mismatch(v: unknown, col: string): Error {
  const t = Array.isArray(v)
    ? "an array"
    : v === null
      ? "null"
      : typeof v === "object"
        ? "an object"
        : `a ${typeof v}`;
  return new Error(
    `${t} (${safeJson(v).slice(0, 80)}) cannot go into a ${col} column: the value is refused rather than changed (the column's type comes from the schema or the table)`,
  );
}

/** How a value becomes a COPY field for a column of `type` (null: the table's own type, as text). */
function encoder(type: ColumnType | null): Encoder {
  switch (type) {
    case "bigint":
      return (v) => {
        if (typeof v === "bigint") return String(v);
        if (typeof v === "number" && Number.isInteger(v) && Number.isSafeInteger(v)) return String(v);
        throw mismatch(v, "bigint");
      };
    case "double":
      return (v) => {
        if (typeof v === "number" || typeof v === "bigint") return String(v);
        throw mismatch(v, "double precision");
      };
    case "boolean":
      return (v) => {
        if (typeof v === "boolean") return v ? "t" : "f";
        throw mismatch(v, "boolean");
      };
    case "timestamptz":
    case "date":
      return (v) => {
        if (typeof v === "string") return copyText(v);
        throw mismatch(v, type === "date" ? "date" : "timestamptz");
      };
    case "json":
      return (v) => {
        const text = stringifyJson(v);
        if (text.includes("\\u0000"))
          throw new Error(
            "holds a NUL character (U+0000), which PostgreSQL jsonb cannot store; drop the field with `fields` or write jsonl",
          );
        return copyText(text);
      };
    default:
      return (v) => {
        if (typeof v === "string") return copyText(v);
        if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
        return copyText(stringifyJson(v));
      };
  }
}
