import { createReadStream, existsSync } from "node:fs";
import { createInterface } from "node:readline";
import type pg from "pg";
import { describeDatabaseUrl } from "../compile/compile-output.js";
import type { OutputPlan } from "../compile/plan.js";
import { RunError } from "../shared/errors.js";
import { databaseUrlSecrets, Redactor } from "../shared/secrets.js";
import { qi, tableExists } from "./postgres-sql.js";
import { STATE_TABLE, sqlString } from "./table-shape.js";
import type { StreamState } from "./writer.js";

/**
 * Whether the current target of a database or Parquet output holds a row, for the commit guard.
 * Each driver is loaded only when asked (they cost start-up time). False when there is no target
 * yet; a server that cannot be reached answers false too (the commit then fails with the
 * writer's own, masked, error).
 */
export async function duckdbHasRows(file: string, table: string): Promise<boolean> {
  if (!existsSync(file)) return false;
  const { engine, q } = await import("./duckdb-engine.js");
  const e = await engine(file);
  try {
    const c = await e.connect();
    try {
      const found = await c.runAndReadAll(
        `SELECT 1 FROM information_schema.tables WHERE table_name = ${sqlString(table)} AND table_schema = 'main'`,
      );
      if (!found.getRows().length) return false;
      return (await c.runAndReadAll(`SELECT 1 FROM ${q(table)} LIMIT 1`)).getRows().length > 0;
    } finally {
      c.closeSync();
    }
  } finally {
    e.release();
  }
}

/** The row count from the Parquet file's footer (no data read). */
export async function parquetHasRows(file: string): Promise<boolean> {
  if (!existsSync(file)) return false;
  const { engine } = await import("./duckdb-engine.js");
  const e = await engine(":memory:");
  try {
    const c = await e.connect();
    try {
      const rows = (
        await c.runAndReadAll(`SELECT sum(num_rows)::BIGINT FROM parquet_file_metadata(${sqlString(file)})`)
      ).getRows();
      return Number(rows[0]?.[0] ?? 0) > 0;
    } finally {
      c.closeSync();
    }
  } finally {
    e.release();
  }
}

export async function postgresHasRows(output: OutputPlan, table: string): Promise<boolean> {
  const what = `look at table "${output.postgres?.schema}"."${table}" before the commit (a second connection)`;
  return withPostgres(output, false, what, async (client, schema, name) => {
    // The writer's own transaction may hold a lock on the table: never wait on it for long.
    await client.query("SET lock_timeout = '10s'");
    if (!(await tableExists(client, name, table))) return false;
    return (await client.query(`SELECT 1 FROM ${schema}.${qi(table)} LIMIT 1`)).rowCount! > 0;
  });
}

/**
 * `use` with a client of the output's server and its schema quoted (`none` without a postgres
 * output). A connection that fails is an error, never `none`: the commit guard that could not look
 * at a table must not take it for an empty one (an empty replace then emptied the table when a
 * second connection was refused: a role's connection limit, a full pool). The driver loads only here.
 */
async function withPostgres<T>(
  output: OutputPlan,
  none: T,
  /** What the connection was for, in its error ("look at table x before the commit"). */
  what: string,
  /** `schema` quoted, `name` as written. */
  use: (client: pg.Client, schema: string, name: string) => Promise<T>,
): Promise<T> {
  if (!output.postgres) return none;
  const { connectClient, connectionError } = await import("./postgres-connection.js");
  const { url } = output.postgres;
  let client: pg.Client;
  try {
    client = await connectClient(url);
  } catch (err) {
    const redactor = new Redactor(databaseUrlSecrets(url));
    const e = connectionError(err, describeDatabaseUrl(url), (s) => redactor.text(s));
    throw new RunError("output", `cannot ${what}: ${e.message}`);
  }
  try {
    return await use(client, qi(output.postgres.schema), output.postgres.schema);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * A Singer messages file: a RECORD line of `stream` (read until the first one; several streams may
 * share the file, and each guards its own records). Node's modules are imported statically: the
 * bundled CLI runs in a vm.Script, where `import()` fails.
 */
export async function singerHasRecords(file: string, stream: string): Promise<boolean> {
  if (!existsSync(file)) return false;
  const prefix = `{"type":"RECORD","stream":${JSON.stringify(stream)},`;
  const lines = createInterface({ input: createReadStream(file, "utf8"), crlfDelay: Infinity });
  try {
    for await (const line of lines) if (line.startsWith(prefix)) return true;
    return false;
  } finally {
    lines.close();
  }
}

/**
 * The stream's state a checkpointed commit wrote into the DuckDB database's `_pipelines_state`
 * (read before its writer opens: it wins over the state file, as SQLite's does), or null.
 */
export async function duckdbState(file: string, key: string, stream: string): Promise<StreamState | null> {
  if (!existsSync(file)) return null;
  const { engine, engineSettings } = await import("./duckdb-engine.js");
  const { readDuckdbState } = await import("./duckdb-state.js");
  const e = await engine(file, engineSettings());
  try {
    const c = await e.connect();
    try {
      return await readDuckdbState(c, key, stream);
    } finally {
      c.closeSync();
    }
  } finally {
    e.release();
  }
}

/** The same for PostgreSQL (`<schema>._pipelines_state`); null when there is none or no server. */
export async function postgresState(
  output: OutputPlan,
  key: string,
  stream: string,
): Promise<StreamState | null> {
  return withPostgres(
    output,
    null,
    "read the stream's saved state from the database",
    async (client, schema, name) => {
      const { readState } = await import("./postgres-state.js");
      if (!(await tableExists(client, name, STATE_TABLE))) return null;
      return await readState(client, schema, key, stream);
    },
  );
}
