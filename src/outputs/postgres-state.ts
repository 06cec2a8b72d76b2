import type pg from "pg";
import { ignoreRace, qi } from "./postgres-sql.js";
import { STATE_TABLE, stateValue } from "./table-shape.js";
import type { CommitState, StreamState } from "./writer.js";

/**
 * The streams' incremental state in the database (`<schema>._pipelines_state`), written in the
 * transaction that commits the stream's rows. `qs` is the quoted schema.
 */
export async function ensureStateTable(client: pg.Client, qs: string): Promise<void> {
  await client
    .query(
      `CREATE TABLE IF NOT EXISTS ${qs}.${qi(STATE_TABLE)} (pipeline text NOT NULL, stream text NOT NULL, state jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, stream))`,
    )
    .catch(ignoreRace);
}

/** The state the last commit of `stream` saved under `key`, or null. */
export async function readState(
  client: pg.Client,
  qs: string,
  key: string,
  stream: string,
): Promise<StreamState | null> {
  const r = await client.query(
    `SELECT state FROM ${qs}.${qi(STATE_TABLE)} WHERE pipeline = $1 AND stream = $2`,
    [key, stream],
  );
  return r.rows[0]?.state ?? null;
}

/** Upserts the stream's state (inside the commit's transaction). */
export async function writeState(
  client: pg.Client,
  qs: string,
  key: string,
  stream: string,
  state: CommitState,
): Promise<void> {
  const value = stateValue(state);
  await client.query(
    `INSERT INTO ${qs}.${qi(STATE_TABLE)} (pipeline, stream, state, updated_at) VALUES ($1, $2, $3, now()) ON CONFLICT (pipeline, stream) DO UPDATE SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at`,
    [key, stream, JSON.stringify(value)],
  );
}
