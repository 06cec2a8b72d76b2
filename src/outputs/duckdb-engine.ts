import { mkdir } from "node:fs/promises";
import { totalmem } from "node:os";
import path from "node:path";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { stagingTableSuffix } from "../compile/layout.js";
import { RunError } from "../shared/errors.js";
import { duckdbApi } from "../vendor/duckdb-api.js";
import { DUCKDB_MAX_IDENT_BYTES, quoteIdent } from "./table-shape.js";
/** A DuckDB identifier, quoted (any length; a NUL or an empty name refused). */
export function q(name: string): string {
  return quoteIdent(name, DUCKDB_MAX_IDENT_BYTES);
}

/**
 * The settings of every DuckDB instance the outputs open (the DuckDB and Parquet writers): a
 * modest buffer pool and one thread (the loads are one stream, and Node's thread is the other
 * core's), and `allocator_bulk_deallocation_flush_threshold` at 0: DuckDB's allocator returns
 * the memory a finished step of the load frees to the system at once instead of keeping it for
 * later (measured on the bench's 200,000 records: peak RSS 10 MiB lower for duckdb, 6 MiB for
 * parquet, the same CPU time).
 *
 * The buffer pool: 48 MB for a database file, 64 MB for Parquet. Measured with the bench's
 * records, alternating 6 runs of each (`CI=1 /usr/bin/time node dist/cli/bin.js run <pipeline>`):
 * a DuckDB file at 48 MB peaked at 150–155 MiB against 154–159 at 64 MB, 0.99–1.09 s against
 * 0.98–1.08 s; at 2,000,000 records 167 against 178 MiB, 7.91 against 7.73 s. Parquet's
 * sorted COPY needs the room: at 48 MB it took 0.98–1.03 s against 0.81–0.90 s, for no less memory.
 */
export function engineSettings(use: "database" | "parquet" = "database"): Record<string, string> {
  return {
    memory_limit: `${MEMORY_LIMIT_MB[use]}MB`,
    threads: "1",
    allocator_bulk_deallocation_flush_threshold: "0MB",
  };
}

/** The buffer pool of each use, in DuckDB's MB (10^6 bytes): see engineSettings. */
const MEMORY_LIMIT_MB = { database: 48, parquet: 64 } as const;

/**
 * A staged line this long may hold a string DuckDB keeps in a block of its own, which it holds
 * in memory until the commit (DuckDB 1.5: strings of about 32 KB or more; 20 KB ones are stored
 * in the row groups). Measured in a script loading staged lines of one long string each at a
 * 48 MB limit: 2,000 strings of 20 KB committed, 400 of 100 KB and 60 of 1 MB failed ("failed to
 * pin block").
 */
export const LONG_LINE_BYTES = 16 * 1024;

/**
 * How much memory a load needs per byte of long strings, over the base limit: a table's commit
 * about their size (measured: 200 strings of 1 MB needed 256 MB, not 128; 40 of 8 MB 512 MB, not
 * 256; 80 of 1 MB committed at 148 MB); a Parquet copy more, a row group of them buffered whole
 * and compressed (100 strings of 1 MB: refused at 1.5, 2 and 2.5 times; written at 3.5,
 * test/outputs/parquet-writer.test.ts).
 */
const LONG_FACTOR = { database: 1.25, parquet: 3.5 } as const;

/**
 * Runs `load` within the instance's memory limit — raised first for `longBytes` of long strings
 * (lines of LONG_LINE_BYTES or more staged, or held by the database already) — and, when DuckDB
 * runs out of memory all the same (records of hundreds of fields: read_json's buffers grow with
 * them; a merge into a large table: its index and the rows it replaces), again at 4 and then 16
 * times the limit, up to half the machine's memory: `load` must undo what it did when it fails
 * (a transaction rolled back, a file removed), as the DuckDB and Parquet commits do. The limit is
 * set back to `use`'s after; a database file is checkpointed at the raised limit first (a
 * checkpoint left to the instance's close, at the base limit, fails alike and leaves the records
 * in the WAL beside the file). A note says what was raised when the load committed; its error
 * says so when it failed. Runs within the engine's `exclusive` (the limit is the instance's,
 * shared by its streams).
 */
export async function withMemory<T>(
  conn: DuckDBConnection,
  use: "database" | "parquet",
  longBytes: number,
  notes: string[],
  load: () => Promise<T>,
): Promise<T> {
  const base = MEMORY_LIMIT_MB[use] * 1_000_000;
  const cap = Math.max(base, totalmem() / 2);
  const first = Math.min(base + LONG_FACTOR[use] * longBytes, cap);
  const tries = [first, ...[4, 16].map((k) => Math.min(first * k, cap)).filter((b) => b > first)];
  const mark = notes.length;
  let raised: string | null = null;
  try {
    for (let i = 0; ; i++) {
      const mib = Math.ceil(tries[i] / (1024 * 1024));
      if (tries[i] !== base) {
        raised =
          i === 0
            ? `DuckDB's memory limit was raised to ${mib} MiB for the load: the run has records of ${LONG_LINE_BYTES / 1024} KiB or more, or the database long strings, which DuckDB holds in memory until the commit`
            : `DuckDB's memory limit was raised to ${mib} MiB for the load: it ran out of memory at ${Math.ceil(tries[i - 1] / (1024 * 1024))} MiB (records of many fields, or a merge into a large table)`;
        await conn.run(`SET memory_limit = '${mib}MiB'`);
      }
      let done: T;
      try {
        done = await load();
      } catch (err) {
        // What a failed attempt noted (columns added, types kept) is noted again by the next.
        notes.length = mark;
        if (i + 1 < tries.length && isOutOfMemory(err)) continue;
        if (raised && err instanceof Error) err.message += ` (${raised})`;
        throw err;
      }
      // The load committed: from here on it is never run again (an append would insert twice).
      if (raised && use === "database") await checkpoint(conn, tries.slice(i));
      if (raised) notes.push(raised);
      return done;
    }
  } finally {
    if (raised) await conn.run(`SET memory_limit = '${MEMORY_LIMIT_MB[use]}MB'`).catch(() => {});
  }
}

/**
 * CHECKPOINT at the first of `limits` (bytes), or, when it runs out of memory, at the next ones:
 * the load before it committed, so only the checkpoint is tried again.
 */
async function checkpoint(conn: DuckDBConnection, limits: number[]): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await conn.run("CHECKPOINT");
      return;
    } catch (err) {
      if (i + 1 >= limits.length || !isOutOfMemory(err)) throw err;
      await conn.run(`SET memory_limit = '${Math.ceil(limits[i + 1] / (1024 * 1024))}MiB'`);
    }
  }
}

/** DuckDB's "Out of Memory Error" (its buffer pool's limit reached), however it was wrapped. */
export function isOutOfMemory(err: unknown): boolean {
  return err instanceof Error && /Out of Memory Error/.test(err.message);
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
      return duckdbApi().DuckDBInstance.create(file, options);
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

/**
 * The staged rows as a subquery with `__pl_ord` (their position): with a primary key, one row per
 * key, the last record of the key at the position of its first (a key with a NULL part is never
 * a duplicate).
 */
export function stagedRows(staging: string, primaryKey: string[] | null): string {
  const t = q(staging);
  if (!primaryKey) return `(SELECT *, __pl_row AS __pl_ord FROM ${t})`;
  const pk = primaryKey.map(q).join(", ");
  const nullKey = primaryKey.map((k) => `${q(k)} IS NULL`).join(" OR ");
  return (
    `(SELECT * EXCLUDE (__pl_first, __pl_last), CASE WHEN ${nullKey} THEN __pl_row ELSE __pl_first END AS __pl_ord FROM ` +
    `(SELECT *, min(__pl_row) OVER (PARTITION BY ${pk}) AS __pl_first, max(__pl_row) OVER (PARTITION BY ${pk}) AS __pl_last FROM ${t}) ` +
    `WHERE ${nullKey} OR __pl_row = __pl_last)`
  );
}

/** Drops the staging tables a killed run left (`…__staging_<runId>`) in `file`; the dropped. */
export async function dropStagingTables(file: string, runId: string): Promise<string[]> {
  const eng = await engine(file, engineSettings());
  const conn = await eng.connect();
  try {
    const suffix = stagingTableSuffix(runId);
    const r = await conn.runAndReadAll(
      "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND database_name = current_database() AND suffix(table_name, $1)",
      [suffix],
    );
    const dropped: string[] = [];
    for (const [name] of r.getRows()) {
      await conn.run(`DROP TABLE IF EXISTS ${q(String(name))}`);
      dropped.push(String(name));
    }
    return dropped;
  } finally {
    conn.closeSync();
    eng.release();
  }
}

/**
 * A run's value into a column of another type that the table keeps (append and merge never alter
 * a column): DuckDB's cast, except JSON into text, where a JSON string becomes its text (a cast
 * kept its quotes: `"9"`) and any other JSON value its JSON text.
 */
export function castInto(expr: string, from: string, to: string): string {
  if (from === "JSON" && to === "VARCHAR")
    return `CASE WHEN json_type(${expr}) = 'VARCHAR' THEN ${expr} ->> '$' ELSE CAST(${expr} AS VARCHAR) END`;
  return `CAST(${expr} AS ${to})`;
}

/** A kept column's type check: the field, its run expression and type, and the column's type. */
export interface KeptColumn {
  field: string;
  expr: string;
  from: string;
  to: string;
}

/**
 * Append and merge keep a column's type: the first of `rows` (SQL of staged rows, with
 * `__pl_row`) whose value the column cannot hold exactly (lossyInto) fails the commit, naming
 * its record. `where` names the column's table or file; `replace` what mode replace does instead.
 */
export async function refuseLossyCasts(
  conn: DuckDBConnection,
  rows: string,
  kept: KeptColumn[],
  where: string,
  replace: string,
): Promise<void> {
  for (const { field, expr, from, to } of kept) {
    const r = await conn.runAndReadAll(
      `SELECT __pl_row, CAST(${expr} AS VARCHAR) FROM ${rows} WHERE ${lossyInto(expr, from, to)} ORDER BY __pl_row LIMIT 1`,
    );
    const row = r.getRows()[0];
    if (!row) continue;
    // A long value is named by its size: cut, a secret in it would escape the redactor.
    const value = String(row[1]);
    const shown = value.length > 60 ? `a value of ${value.length} characters` : value;
    throw new RunError(
      "output",
      `record #${Number(row[0]) + 1} written: field \`${field}\` holds ${shown} (${from}), which the ${to} column of ${where} cannot hold exactly (append and merge keep a column's type); declare the field's type in the schema, or write with mode replace (${replace})`,
    );
  }
}

/**
 * True for a value `castInto` would change: one the column's type cannot read, or one that does
 * not come back the same (1.5 into BIGINT is 2; 2^53 + 1 into DOUBLE is 2^53; a date-time into a
 * DATE column loses its time). Any value becomes text; a date-time or date column takes any text
 * it reads (its own format differs).
 */
function lossyInto(expr: string, from: string, to: string): string {
  if (to === "VARCHAR") return "false";
  const conv = `TRY_CAST(${expr} AS ${to})`;
  // Text into a date-time or date column: any text it reads (its own format differs); anything
  // else (a date-time into a DATE column: its time) must come back the same.
  if (/^(TIMESTAMP|DATE)/.test(to) && (from === "VARCHAR" || from === "JSON"))
    return `(${expr} IS NOT NULL AND ${conv} IS NULL)`;
  return `(${expr} IS NOT NULL AND (${conv} IS NULL OR CAST(${conv} AS ${from}) IS DISTINCT FROM ${expr}))`;
}
