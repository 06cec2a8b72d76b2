import type pg from "pg";
import type { OutputPlan } from "../compile/plan.js";
import { RunError } from "../shared/errors.js";
import type { TableLoad } from "./postgres-copy.js";
import { literal, primaryKeyName, qi, tableExists } from "./postgres-sql.js";
import { INDEX_COLUMN, invalidTableName } from "./table-shape.js";

/**
 * The commit of the PostgreSQL output, inside the one transaction `PostgresWriter.commit` opens:
 * each staging table becomes its target (replace), or is copied into it (append: INSERT; merge:
 * INSERT … ON CONFLICT on the primary key, created when the target has none).
 */
export interface CommitScope {
  readonly client: pg.Client;
  /** The output's schema, unquoted. */
  readonly schema: string;
  readonly unloggedStaging: boolean;
  /** Notes for the report (columns added, a primary key dropped). */
  readonly notes: string[];
  redact(s: string): string;
}

/** What one stream loaded: its table, child tables and invalid records. */
export interface Loaded {
  readonly table: string;
  readonly main: TableLoad;
  readonly children: readonly TableLoad[];
  readonly invalid: TableLoad | null;
  readonly primaryKey: string[] | null;
  /** Records whose primary key an earlier record of the run had. */
  readonly dups: number;
}

/** Moves every staging table of `loaded` into its target, in `mode`. */
export async function commitLoads(s: CommitScope, loaded: Loaded, mode: OutputPlan["mode"]): Promise<void> {
  if (loaded.dups) await dedupe(s.client, loaded);
  // Children first: a merge finds the parent keys it replaces in the parent's staging table.
  for (const load of loaded.children) await commitChild(s, load, loaded, mode);
  await commitTable(s, loaded.main, mode, loaded.primaryKey);
  await commitInvalid(s, loaded);
}

/** Keeps the last record of each primary key (and its child rows). */
async function dedupe(client: pg.Client, loaded: Loaded): Promise<void> {
  const pk = loaded.primaryKey!;
  const s = loaded.main.q(loaded.main.staging);
  await client.query(dedupeSql(loaded.main, pk));
  for (const load of loaded.children)
    await client.query(
      `DELETE FROM ${load.q(load.staging)} c WHERE NOT EXISTS (SELECT 1 FROM ${s} p WHERE p."_seq" = c."_parent_seq")`,
    );
}

/** Deletes the staging rows of a primary key that a later staging row (higher `_seq`) has. */
function dedupeSql(load: TableLoad, pk: string[]): string {
  const s = load.q(load.staging);
  const same = pk.map((k) => `a.${qi(k)} = b.${qi(k)}`).join(" AND ");
  return `DELETE FROM ${s} a USING ${s} b WHERE ${same} AND a."_seq" < b."_seq"`;
}

/** Adds to the target (which exists) the columns the run has and it has not (noted). */
async function addTargetColumns(s: CommitScope, load: TableLoad): Promise<void> {
  const present = load.targetColumns!;
  for (const name of load.targetNames()) {
    if (present.has(name)) continue;
    const col = load.columns.get(name);
    const sql = col ? col.sql : name === "_loaded_at" ? "timestamptz" : "text";
    await s.client.query(`ALTER TABLE ${load.q(load.target)} ADD COLUMN ${qi(name)} ${sql}`);
    present.set(name, sql);
    s.notes.push(`added column ${JSON.stringify(name)} (${sql}) to table ${load.target}`);
  }
}

/**
 * The upsert of the staging rows into the target (which exists and has the primary key `pk`):
 * the target's missing columns are added first (awaited); the SQL text is returned. A row is
 * replaced whole: target columns the run does not have become NULL. With `dedupe`, the staging
 * rows a later row of the same key replaces are deleted first (in the same text).
 */
export async function upsertStatements(
  s: CommitScope,
  load: TableLoad,
  pk: string[],
  dedupe: boolean,
): Promise<string> {
  await addTargetColumns(s, load);
  const present = load.targetColumns!;
  const names = load.targetNames();
  const cols = names.map(qi).join(", ");
  const set = [...present.keys()]
    .filter((c) => !pk.includes(c))
    .map((c) => `${qi(c)} = ${names.includes(c) ? `EXCLUDED.${qi(c)}` : "NULL"}`)
    .join(", ");
  const upsert = `INSERT INTO ${load.q(load.target)} (${cols}) SELECT ${cols} FROM ${load.q(load.staging)} ON CONFLICT (${pk.map(qi).join(", ")}) ${set ? `DO UPDATE SET ${set}` : "DO NOTHING"}`;
  return dedupe ? `${dedupeSql(load, pk)}; ${upsert}` : upsert;
}

/**
 * A streamed append's statements (see postgres-upsert.ts): the target's missing columns are added
 * first (awaited); the SQL text is returned. With `sentDup`, the rows this transaction already
 * inserted for a key the staging table has again are deleted (their later record wins); with
 * `dedupe`, the staging rows a later row of the same key replaces.
 *
 * The rows this transaction inserted are those of the run's `_run_id` loaded at its start
 * (`_loaded_at` = `now()`: the rows an earlier commit of the same run made, in a stream that
 * commits at checkpoints, are older). Not `xmin`: a row the transaction updates gets it too (a
 * trigger on the target marking the key's earlier rows), and a frozen row keeps its raw `xmin`,
 * which the transaction ids come back to every 2^32. A keyed append without metadata columns
 * is not streamed (openStreamed).
 */
export async function appendStatements(
  s: CommitScope,
  load: TableLoad,
  pk: string[] | null,
  dedupe: boolean,
  sentDup: boolean,
): Promise<string> {
  await addTargetColumns(s, load);
  const cols = load.targetNames().map(qi).join(", ");
  const sql: string[] = [];
  if (pk && sentDup) {
    const same = pk.map((k) => `t.${qi(k)} = s.${qi(k)}`).join(" AND ");
    sql.push(
      `DELETE FROM ${load.q(load.target)} t USING ${load.q(load.staging)} s WHERE ${same} AND t."_run_id" = ${literal(load.runId)} AND t."_loaded_at" = now()`,
    );
  }
  if (pk && dedupe) sql.push(dedupeSql(load, pk));
  sql.push(`INSERT INTO ${load.q(load.target)} (${cols}) SELECT ${cols} FROM ${load.q(load.staging)}`);
  return sql.join("; ");
}

/** Whether the target has a unique index (a primary key included). */
export async function hasUniqueIndex(s: CommitScope, load: TableLoad): Promise<boolean> {
  const r = await s.client.query("SELECT 1 FROM pg_index WHERE indrelid = to_regclass($1) AND indisunique", [
    `${qi(s.schema)}.${qi(load.target)}`,
  ]);
  return r.rows.length > 0;
}

async function commitTable(
  s: CommitScope,
  load: TableLoad,
  mode: OutputPlan["mode"],
  pk: string[] | null,
): Promise<void> {
  const { client } = s;
  const target = load.q(load.target);
  const staging = load.q(load.staging);
  const exists =
    mode === "replace" ? await tableExists(client, s.schema, load.target) : load.targetColumns !== null;
  if (mode === "replace" || !exists) {
    for (const [n] of load.fixed) await client.query(`ALTER TABLE ${staging} DROP COLUMN ${qi(n)}`);
    await client.query(`DROP TABLE IF EXISTS ${target}`);
    // An unlogged staging table (append, merge) becomes a logged, crash-safe target.
    if (s.unloggedStaging) await client.query(`ALTER TABLE ${staging} SET LOGGED`);
    await client.query(`ALTER TABLE ${staging} RENAME TO ${qi(load.target)}`);
    if (mode === "merge" && pk)
      await client.query(`ALTER TABLE ${target} ADD PRIMARY KEY (${pk.map(qi).join(", ")})`);
    return;
  }
  await addTargetColumns(s, load);
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
      const pkName = await primaryKeyName(client, s.schema, load.target);
      if (!pkName) throw err;
      await client.query(`ALTER TABLE ${target} DROP CONSTRAINT ${qi(pkName)}`);
      await client.query(`INSERT INTO ${target} (${cols}) SELECT ${cols} FROM ${staging}`);
      s.notes.push(
        `dropped the primary key of table ${load.target}: append added rows with keys it already had`,
      );
    }
  } else {
    await ensurePrimaryKey(s, load, pk!);
    await client.query(await upsertStatements(s, load, pk!, false));
  }
  await client.query(`DROP TABLE ${staging}`);
}

async function commitChild(
  s: CommitScope,
  load: TableLoad,
  loaded: Loaded,
  mode: OutputPlan["mode"],
): Promise<void> {
  const pk = loaded.primaryKey!;
  if (mode === "merge" && load.targetColumns) {
    // The parent rows this run replaces take their child rows with them.
    const on = pk.map((k) => `c.${qi(k)} = p.${qi(k)}`).join(" AND ");
    await s.client.query(
      `DELETE FROM ${load.q(load.target)} c USING ${loaded.main.q(loaded.main.staging)} p WHERE ${on}`,
    );
  }
  // Append and merge of child rows are plain inserts (no conflict once the old ones are gone).
  await commitTable(s, load, mode === "merge" ? "append" : mode, null);
  if (mode === "merge" && !load.targetColumns)
    await s.client.query(
      `ALTER TABLE ${load.q(load.target)} ADD PRIMARY KEY (${[...pk, INDEX_COLUMN].map(qi).join(", ")})`,
    );
}

/** `<table>__invalid` describes this run: replaced, or dropped when every record was valid. */
export async function commitInvalid(s: CommitScope, loaded: Loaded): Promise<void> {
  const name = invalidTableName(loaded.table);
  if (loaded.invalid) await commitTable(s, loaded.invalid, "replace", null);
  else if (Buffer.byteLength(name) <= 63)
    await s.client.query(`DROP TABLE IF EXISTS ${qi(s.schema)}.${qi(name)}`);
}

/**
 * Whether the target has the primary key `pk` (false: it has none yet); another primary key is
 * an error.
 */
export async function hasPrimaryKey(s: CommitScope, load: TableLoad, pk: string[]): Promise<boolean> {
  const r = await s.client.query(
    `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`,
    [`${qi(s.schema)}.${qi(load.target)}`],
  );
  const current = r.rows.map((x: { attname: string }) => x.attname);
  if (!current.length) return false;
  if (current.join("\0") !== pk.join("\0"))
    throw new RunError(
      "output",
      `cannot merge into table ${load.target}: its primary key is (${current.join(", ")}), the stream's is (${pk.join(", ")})`,
    );
  return true;
}

/** Columns the run has and the target lacks (each an `ALTER TABLE … ADD COLUMN` before the upsert). */
export function missingTargetColumns(load: TableLoad): boolean {
  const present = load.targetColumns!;
  return load.targetNames().some((n) => !present.has(n));
}

export async function ensurePrimaryKey(s: CommitScope, load: TableLoad, pk: string[]): Promise<void> {
  if (await hasPrimaryKey(s, load, pk)) return;
  await s.client.query("SAVEPOINT pipelines_pk");
  try {
    await s.client.query(`ALTER TABLE ${load.q(load.target)} ADD PRIMARY KEY (${pk.map(qi).join(", ")})`);
  } catch (err) {
    await s.client.query("ROLLBACK TO SAVEPOINT pipelines_pk");
    throw new RunError(
      "output",
      s.redact(
        `cannot merge into table ${load.target}: its rows are not unique (or not set) by the primary key (${pk.join(", ")}), so they cannot be upserted (was it written with mode append?): ${(err as Error).message}`,
      ),
    );
  }
}
