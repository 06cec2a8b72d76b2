import pg from "pg";
import { RunError } from "../shared/errors.js";
import { qi } from "./postgres-sql.js";
import { IdentifierError } from "./table-shape.js";

/**
 * Connections of the PostgreSQL output and their errors: every message shows the server as
 * `describeDatabaseUrl` names it (no password) and goes through the run's redactor.
 */

/**
 * The error a client's connection had outside a query: the server's message when it ended the
 * session while the client was idle (a FATAL message, then the socket's end), else the first.
 * pg fails every later query with "not queryable", which hides it.
 */
const lost = new WeakMap<pg.Client, unknown>();

/** The severity of a message of the server (none: an error of the client or its socket). */
function severity(err: unknown): string | undefined {
  return (err as { severity?: string } | null)?.severity;
}

/** A message of the server that ends the session. */
function isFatal(err: unknown): boolean {
  return severity(err) === "FATAL" || severity(err) === "PANIC";
}

/** A connected client; a connection lost between queries is reported by the next query. */
export async function connectClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: "pipelines" });
  // Kept for the error of the next query (and no unhandled 'error' event crashes the process).
  client.on("error", (err) => {
    if (!lost.has(client) || isFatal(err)) lost.set(client, err);
  });
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

/**
 * Any error of a load as a RunError with a clear, redacted message. `client`: the load's
 * connection; an error of the client itself (no server message: "not queryable") after its
 * connection was lost is told as that loss, with the server's message when it ended the session.
 */
export function loadError(
  err: unknown,
  where: string,
  table: string,
  redact: (s: string) => string,
  client?: pg.Client,
): RunError {
  if (err instanceof RunError) return err;
  if (err instanceof IdentifierError) return new RunError("output", redact(err.message));
  const cause = client && lost.has(client) && !severity(err) ? lost.get(client) : err;
  const e = cause as { code?: string; message?: string; where?: string; detail?: string };
  if (isFatal(cause))
    return new RunError(
      "output",
      redact(`PostgreSQL at ${where}: the server ended the session: ${e.message} (SQLSTATE ${e.code})`),
    );
  if (cause !== err || (e?.code && /^(ECONN|ENOTFOUND|ETIMEDOUT|EAI_|57P0|08)/.test(e.code)))
    return new RunError(
      "output",
      redact(`PostgreSQL at ${where}: connection lost (${e?.message ?? String(cause)})`),
    );
  const detail = e?.detail ? ` (${e.detail})` : "";
  // The COPY context names the line and column; the value PostgreSQL quotes after them is cut to
  // 100 bytes, which a secret in it would escape the redactor with: left out.
  const context = e?.where?.split("\n")[0].replace(/(, column [^:]*): .*$/s, "$1");
  const at = context ? ` [${context.slice(0, 300)}]` : "";
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
