import { mkdir } from "node:fs/promises";
import path from "node:path";
import { type DuckDBAppender, type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type { Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import { stringifyJson } from "../shared/json-text.js";
import {
  type ColumnType,
  DUCKDB_MAX_IDENT_BYTES,
  DUCKDB_STAGING_TYPES,
  DUCKDB_TYPES,
  describeValue,
  fitsInt64,
  quoteIdent,
  valueType,
  widenType,
} from "./table-shape.js";

/** A DuckDB identifier, quoted (any length; a NUL or an empty name refused). */
export function q(name: string): string {
  return quoteIdent(name, DUCKDB_MAX_IDENT_BYTES);
}

/**
 * One DuckDB instance per database file in this process, shared by the streams that write it
 * (each through its own connection), and closed when the last one is done: DuckDB allows one
 * process to open a file, and opening it twice in one process would make two caches of it.
 * Catalog changes and commits of a file run one at a time (`exclusive`): streams of a pipeline
 * run concurrently, and two transactions changing the catalog at once would conflict.
 */
export interface Engine {
  connect(): Promise<DuckDBConnection>;
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  release(): void;
}

const open = new Map<string, { instance: Promise<DuckDBInstance>; refs: number; chain: Promise<unknown> }>();

export async function engine(file: string, options: Record<string, string> = {}): Promise<Engine> {
  const key = file === ":memory:" ? `:memory:${Math.random()}` : path.resolve(file);
  let entry = open.get(key);
  if (!entry) {
    // Set at once: a second stream opening the file meanwhile shares this instance.
    const instance = (async () => {
      if (file !== ":memory:") await mkdir(path.dirname(key), { recursive: true });
      return DuckDBInstance.create(file, options);
    })();
    entry = { instance, refs: 0, chain: Promise.resolve() };
    open.set(key, entry);
    instance.catch(() => open.delete(key));
  }
  entry.refs++;
  const e = entry;
  let released = false;
  const instance = await e.instance.catch((err: Error) => {
    e.refs--;
    throw new RunError("output", `cannot open the DuckDB database ${file}: ${err.message}`);
  });
  return {
    connect: () => instance.connect(),
    exclusive: <T>(fn: () => Promise<T>): Promise<T> => {
      const run = e.chain.then(fn, fn);
      e.chain = run.catch(() => {});
      return run;
    },
    release: () => {
      if (released) return;
      released = true;
      if (--e.refs > 0) return;
      open.delete(key);
      instance.closeSync();
    },
  };
}

/** Rows appended per batch: new columns are found, and types inferred, a batch at a time. */
const BATCH = 2048;
/** The first batch is smaller: the staging table exists early (a later column widens if needed). */
const FIRST_BATCH = 100;
const MISFIT = Symbol("misfit");

export interface StagedColumn {
  name: string;
  kind: ColumnType;
  /** From the schema (a value that does not fit is refused), or inferred (the column widens). */
  typed: boolean;
}

/**
 * Loads one stream's records into a staging table with DuckDB's appender. Values are checked
 * and converted in JavaScript, so a value the column cannot hold is refused naming its record;
 * a column without a schema widens instead (integer → number → JSON text).
 */
export class Stager {
  readonly columns: StagedColumn[] = [];
  private readonly byLower = new Map<string, StagedColumn>();
  private readonly byName = new Set<string>();
  private batch: Row[] = [];
  private appender: DuckDBAppender | null = null;
  private created = false;
  private count = 0;
  private readonly bigSeen = new Set<string>();

  constructor(
    private readonly conn: DuckDBConnection,
    private readonly eng: Engine,
    readonly table: string,
    /** Columns known before any record (the schema's properties, the primary key). */
    private readonly planned: { name: string; kind: ColumnType | null }[],
    /** Names the metadata columns take: a field with one of them is refused. */
    private readonly reserved: string[],
    private readonly recordId: (row: Row, position: number) => string,
    private readonly what: string,
  ) {}

  get hasTable(): boolean {
    return this.created;
  }

  get rows(): number {
    return this.count;
  }

  write(row: Row): Promise<void> | undefined {
    this.batch.push(row);
    if (this.batch.length >= (this.created ? BATCH : FIRST_BATCH)) return this.flush();
    return undefined;
  }

  async flush(): Promise<void> {
    const rows = this.batch;
    this.batch = [];
    await this.addColumns(rows);
    if (!this.created) {
      this.count += rows.length;
      return;
    }
    const cols = this.columns;
    const n = cols.length;
    const values = new Array<unknown>(n);
    for (const row of rows) {
      this.count++;
      for (let i = 0; i < n; i++) {
        const c = cols[i];
        const raw = field(row, c.name);
        let v = convert(c.kind, raw);
        if (v === MISFIT) {
          if (c.typed || (raw !== null && typeof raw === "object" && c.kind === "json")) {
            throw new RunError(
              "output",
              `record ${this.recordId(row, this.count)}: field \`${c.name}\` holds ${describeValue(raw)}, which its ${DUCKDB_TYPES[c.kind]} column cannot hold exactly (${this.what}); declare the field's type in the schema (\`type: string\` keeps any value as text)`,
            );
          }
          await this.widenColumn(c, raw);
          v = convert(c.kind, raw);
        }
        if (typeof raw === "bigint") this.bigSeen.add(c.name);
        values[i] = v;
      }
      const app = this.appender!;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        switch (typeof v) {
          case "string":
            app.appendVarchar(v);
            break;
          case "number":
            app.appendDouble(v);
            break;
          case "bigint":
            app.appendBigInt(v);
            break;
          case "boolean":
            app.appendBoolean(v);
            break;
          default:
            app.appendNull();
        }
      }
      app.endRow();
    }
  }

  /** Flushes and closes the appender: the staging table holds every record written. */
  async finish(): Promise<void> {
    await this.flush();
    this.appender?.closeSync();
    this.appender = null;
  }

  close(): void {
    try {
      this.appender?.closeSync();
    } catch {
      // a failed stream: its staging table is dropped next
    }
    this.appender = null;
  }

  private async addColumns(rows: Row[]): Promise<void> {
    const fresh: StagedColumn[] = [];
    const add = (name: string, kind: ColumnType | null, typed: boolean): void => {
      const lower = name.toLowerCase();
      const other = this.byLower.get(lower);
      if (other) {
        if (other.name !== name)
          throw new RunError(
            "output",
            `fields \`${other.name}\` and \`${name}\` differ only in case: DuckDB column names ignore case (${this.what}); rename one with \`fields\``,
          );
        return;
      }
      if (name === "" || name.includes("\0"))
        throw new RunError(
          "output",
          `a field named ${JSON.stringify(name)} cannot be a DuckDB column (${this.what}); select the fields to keep with \`fields\``,
        );
      if (this.reserved.includes(lower))
        throw new RunError(
          "output",
          `field \`${name}\` has the name of a metadata column (${this.what}); rename it with \`fields\`, or set \`output.metadata_columns: false\``,
        );
      const col: StagedColumn = { name, kind: kind ?? inferKind(rows, name), typed };
      this.byLower.set(lower, col);
      this.byName.add(name);
      fresh.push(col);
    };
    if (!this.created) for (const p of this.planned) add(p.name, p.kind, p.kind !== null);
    for (const row of rows) for (const name in row) if (!this.byName.has(name)) add(name, null, false);
    if (!fresh.length) return;
    this.columns.push(...fresh);
    const defs = fresh.map((c) => `${q(c.name)} ${DUCKDB_STAGING_TYPES[c.kind]}`);
    this.appender?.closeSync();
    this.appender = null;
    await this.eng.exclusive(async () => {
      if (!this.created) {
        await this.conn.run(`DROP TABLE IF EXISTS ${q(this.table)}`);
        await this.conn.run(`CREATE TABLE ${q(this.table)} (${defs.join(", ")})`);
      } else {
        for (const d of defs) await this.conn.run(`ALTER TABLE ${q(this.table)} ADD COLUMN ${d}`);
      }
    });
    this.created = true;
    this.appender = await this.conn.createAppender(this.table);
  }

  /** A column without a schema meets a value of another type: integer → number, else JSON text. */
  private async widenColumn(c: StagedColumn, raw: unknown): Promise<void> {
    const to: ColumnType =
      c.kind === "bigint" && valueType(raw) === "double" && !this.bigSeen.has(c.name) ? "double" : "json";
    this.appender?.closeSync();
    this.appender = null;
    const col = q(c.name);
    await this.eng.exclusive(() =>
      this.conn.run(
        `ALTER TABLE ${q(this.table)} ALTER COLUMN ${col} SET DATA TYPE ${DUCKDB_STAGING_TYPES[to]} USING ${
          to === "double" ? `CAST(${col} AS DOUBLE)` : `CAST(to_json(${col}) AS VARCHAR)`
        }`,
      ),
    );
    c.kind = to;
    this.appender = await this.conn.createAppender(this.table);
  }
}

/** A record's own field: `__proto__` is read only when the record has it. */
function field(row: Row, name: string): unknown {
  return name === "__proto__" ? (Object.hasOwn(row, name) ? row[name] : undefined) : row[name];
}

/** The kind of a new column without a schema: from the values of the batch that brings it. */
function inferKind(rows: Row[], name: string): ColumnType {
  let kind: ColumnType | null = null;
  for (const row of rows) {
    kind = widenType(kind, valueType(field(row, name)));
    if (kind === "json") return kind;
  }
  return kind ?? "text";
}

/**
 * A value as the appender takes it for a column of `kind` (strings, numbers, bigints, booleans;
 * null), or MISFIT when the column cannot hold it exactly.
 */
function convert(kind: ColumnType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (kind) {
    case "bigint":
      if (typeof v === "number") return Number.isInteger(v) ? v : MISFIT;
      if (typeof v === "bigint") return fitsInt64(v) ? v : MISFIT;
      return MISFIT;
    case "double":
      if (typeof v === "number") return v;
      if (typeof v === "bigint") return BigInt(Number(v)) === v ? Number(v) : MISFIT;
      return MISFIT;
    case "boolean":
      return typeof v === "boolean" ? v : MISFIT;
    case "timestamptz":
    case "date":
      return typeof v === "string" ? v : MISFIT;
    case "text":
      if (typeof v === "string") return v;
      return MISFIT;
    default:
      return stringifyJson(v);
  }
}

/**
 * The staged rows as a subquery with `__pl_ord` (their position): with a primary key, one row per
 * key, the last record of the key at the position of its first (a key with a NULL part is never
 * a duplicate).
 */
export function stagedRows(staging: string, primaryKey: string[] | null): string {
  const t = q(staging);
  if (!primaryKey) return `(SELECT *, rowid AS __pl_ord FROM ${t})`;
  const pk = primaryKey.map(q).join(", ");
  const nullKey = primaryKey.map((k) => `${q(k)} IS NULL`).join(" OR ");
  return (
    `(SELECT * EXCLUDE (__pl_row, __pl_first, __pl_last), CASE WHEN ${nullKey} THEN __pl_row ELSE __pl_first END AS __pl_ord FROM ` +
    `(SELECT *, rowid AS __pl_row, min(rowid) OVER (PARTITION BY ${pk}) AS __pl_first, max(rowid) OVER (PARTITION BY ${pk}) AS __pl_last FROM ${t}) ` +
    `WHERE ${nullKey} OR __pl_row = __pl_last)`
  );
}
