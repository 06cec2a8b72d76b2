import type { DuckDBConnection } from "@duckdb/node-api";
import { q } from "./duckdb-engine.js";
import { STATE_TABLE, stateValue } from "./table-shape.js";
import type { CommitState, StreamState } from "./writer.js";

/** The stream's state the last commit wrote into `_pipelines_state` of this database, or null. */
export async function readDuckdbState(
  conn: DuckDBConnection,
  key: string,
  stream: string,
): Promise<StreamState | null> {
  const r = await conn.runAndReadAll(
    "SELECT count(*) FROM duckdb_tables() WHERE table_name = $1 AND schema_name = 'main' AND database_name = current_database()",
    [STATE_TABLE],
  );
  if (!Number(r.getRows()[0][0])) return null;
  const rows = (
    await conn.runAndReadAll(
      `SELECT CAST(state AS VARCHAR) FROM ${q(STATE_TABLE)} WHERE pipeline = $1 AND stream = $2`,
      [key, stream],
    )
  ).getRows();
  return rows.length ? (JSON.parse(String(rows[0][0])) as StreamState) : null;
}

/** Upserts the stream's state into `_pipelines_state`, in the commit's transaction. */
export async function saveDuckdbState(
  conn: DuckDBConnection,
  key: string,
  stream: string,
  state: CommitState,
): Promise<void> {
  const value = stateValue(state);
  await conn.run(
    `CREATE TABLE IF NOT EXISTS ${q(STATE_TABLE)} (pipeline VARCHAR NOT NULL, stream VARCHAR NOT NULL, state JSON NOT NULL, updated_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (pipeline, stream))`,
  );
  await conn.run(
    `INSERT INTO ${q(STATE_TABLE)} VALUES ($1, $2, $3, now()) ON CONFLICT (pipeline, stream) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
    [key, stream, JSON.stringify(value)],
  );
}
