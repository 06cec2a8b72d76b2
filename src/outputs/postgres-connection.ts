import pg from "pg";
import { RunError } from "../shared/errors.js";
import { qi } from "./postgres-sql.js";
import { IdentifierError } from "./table-shape.js";

/**
 * Connections of the PostgreSQL output and their errors: every message shows the server as
 * `describeDatabaseUrl` names it (no password) and goes through the run's redactor.
 */

/** A connected client; a connection lost between queries is reported by the next query. */
export async function connectClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: "pipelines" });
  // This only keeps a lost connection from crashing the process as an unhandled 'error' event.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw err;
  }
  return client;
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

/** Any error of a load as a RunError with a clear, redacted message. */
export function loadError(
  err: unknown,
  where: string,
  table: string,
  redact: (s: string) => string,
): RunError {
  if (err instanceof RunError) return err;
  if (err instanceof IdentifierError) return new RunError("output", redact(err.message));
  const e = err as { code?: string; message?: string; where?: string; detail?: string };
  if (e?.code && /^(ECONN|ENOTFOUND|ETIMEDOUT|EAI_|57P0|08)/.test(e.code))
    return new RunError("output", redact(`PostgreSQL at ${where}: connection lost (${e.message})`));
  const detail = e?.detail ? ` (${e.detail})` : "";
  const at = e?.where ? ` [${e.where.split("\n")[0].slice(0, 300)}]` : "";
  return new RunError(
    "output",
    redact(`PostgreSQL at ${where}, table ${table}: ${e?.message ?? String(err)}${detail}${at}`),
  );
}

/** The prefix of every staging table of a run (the next run drops a killed one's by it). */
export function stagingPrefix(runId: string): string {
  return `_staging_${runId}_`;
}

/** Drops the staging tables of run `runId` in `schema`; the dropped names. */
export async function dropStaging(url: string, schema: string, runId: string): Promise<string[]> {
  const client = await connectClient(url);
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
