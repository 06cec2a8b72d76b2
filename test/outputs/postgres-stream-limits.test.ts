/**
 * The streamed merge and append of the postgres output (src/outputs/postgres-upsert.ts) and what
 * the server or the table may do to them: a session timeout that would end the transaction idle
 * during the fetch (not streamed), the server ending the session anyway (its message told), and
 * a trigger on the target that updates rows of the key a keyed append inserts (only the rows the
 * run inserted are deleted by its commit). Against the test run's real PostgreSQL.
 */
import { afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import type { OutputPlan } from "../../src/compile/plan.js";
import { openWriter } from "../../src/outputs/registry.js";
import type { RecordWriter } from "../../src/outputs/writer.js";
import type { Row } from "../../src/records/shape.js";
import { freshDatabase, query, tables } from "../pg/helpers.js";

let url: string;
beforeAll(async () => {
  url = await freshDatabase("pg_limits");
});
afterEach(() => {
  delete process.env.PIPELINES_PG_UPSERT_ROWS;
});

const SCHEMA = { type: "object", properties: { id: { type: "integer" }, name: { type: "string" } } };
let runs = 0;
function open(
  mode: OutputPlan["mode"],
  table: string,
  opts: { db?: string; meta?: boolean; runId?: string } = {},
): Promise<RecordWriter> {
  return openWriter(
    {
      format: "postgres",
      mode,
      path: "/tmp/unused",
      postgres: { url: opts.db ?? url, schema: "public" },
      table: { name: table, metadataColumns: opts.meta ?? true, nested: "json" },
      stateKey: "p",
    },
    {
      runId: opts.runId ?? `L${++runs}`,
      stream: "items",
      schema: SCHEMA,
      columns: ["id", "name"],
      primaryKey: ["id"],
    },
  );
}
async function write(writer: RecordWriter, records: Row[]): Promise<void> {
  for (const r of records) {
    const p = writer.write(r);
    if (p) await p;
  }
}
async function load(
  mode: OutputPlan["mode"],
  table: string,
  records: Row[],
  opts: Parameters<typeof open>[2] = {},
): Promise<void> {
  const writer = await open(mode, table, opts);
  try {
    await write(writer, records);
    await writer.commit(null);
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
const recs = (from: number, n: number, name: string): Row[] =>
  Array.from({ length: n }, (_, i) => ({ id: from + i, name: `${name}${from + i}` }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Table locks the output's connections hold on `t` in database `db`. */
const locks = (db: string, t: string) =>
  query<{ mode: string }>(
    db,
    "SELECT l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.application_name = 'pipelines' AND l.locktype = 'relation' AND l.relation = to_regclass($1) AND l.granted",
    [`"${t}"`],
  ).then((rows) => rows.map((r) => r.mode));
const names = (db: string, t: string, id: number) =>
  query<{ name: string; is_latest?: boolean }>(db, `SELECT * FROM "${t}" WHERE id = $1 ORDER BY name`, [
    id,
  ]).then((rows) => rows.map((r) => (r.is_latest === undefined ? r.name : `${r.name}:${r.is_latest}`)));

describe("postgres streamed loads and the server's session limits", () => {
  it("a database with idle_in_transaction_session_timeout: merge and append are not streamed (the setting is kept), so a fetch slower than the timeout loads everything at the commit", async () => {
    const db = await freshDatabase("pg_idle");
    process.env.PIPELINES_PG_UPSERT_ROWS = "0";
    await load("merge", "idle_merge", recs(0, 3000, "old"), { db });
    await load("append", "idle_append", recs(0, 3000, "old"), { db });
    const name = new URL(db).pathname.slice(1);
    await query(db, `ALTER DATABASE "${name}" SET idle_in_transaction_session_timeout = '500ms'`);
    process.env.PIPELINES_PG_UPSERT_ROWS = "1000";
    for (const [mode, t] of [
      ["merge", "idle_merge"],
      ["append", "idle_append"],
    ] as const) {
      const writer = await open(mode, t, { db });
      await write(writer, recs(1000, 2500, "new")); // two batches of 1,000 would have been sent
      // A page slower than the timeout: a streamed transaction, idle meanwhile, would be ended.
      await sleep(1500);
      await write(writer, recs(3500, 500, "new"));
      const held = await locks(db, t);
      await writer.commit(null);
      expect(held).toEqual([]); // no transaction open before the commit
      expect(await names(db, t, 3999)).toEqual(["new3999"]);
      expect(await names(db, t, 5)).toEqual(["old5"]);
      expect(await names(db, t, 1500)).toEqual(mode === "merge" ? ["new1500"] : ["new1500", "old1500"]);
    }
  });

  it("the server ending the session mid-run fails the stream with the server's message and the URL without its password (not pg's 'not queryable'); the table is as it was", async () => {
    const admin = await freshDatabase("pg_ended");
    const name = new URL(admin).pathname.slice(1);
    await query(admin, `ALTER DATABASE "${name}" OWNER TO pw_user`);
    await query(admin, "ALTER SCHEMA public OWNER TO pw_user");
    const u = new URL(inject("pgPasswordUrl"));
    const password = decodeURIComponent(u.password);
    u.pathname = `/${name}`;
    const db = u.toString();
    process.env.PIPELINES_PG_UPSERT_ROWS = "0";
    await load("merge", "ended", recs(0, 3000, "old"), { db });
    const before = await query(admin, 'SELECT * FROM "ended" ORDER BY id');
    process.env.PIPELINES_PG_UPSERT_ROWS = "1000";
    const writer = await open("merge", "ended", { db });
    await write(writer, recs(0, 1500, "new")); // one batch upserted, in the open transaction
    let pid: number | null = null;
    for (let i = 0; i < 200 && pid === null; i++) {
      const idle = await query<{ pid: number }>(
        admin,
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'pipelines' AND datname = current_database() AND state = 'idle in transaction'",
      );
      if (idle.length) pid = idle[0].pid;
      else await sleep(25);
    }
    expect(pid).not.toBeNull();
    // What the server does at a timeout or to a session an administrator ends: FATAL, then closes.
    await query(admin, "SELECT pg_terminate_backend($1)", [pid]);
    const failed = await write(writer, recs(1500, 1500, "new"))
      .then(() => writer.commit(null))
      .then(
        () => null,
        (err: Error) => err,
      );
    await writer.abort();
    expect(failed?.message).not.toContain("not queryable");
    expect(failed?.message).toMatch(
      /^PostgreSQL at postgres:\/\/pw_user@127\.0\.0\.1:\d+\/pg_ended_\w+: the server ended the session: terminating connection due to administrator command \(SQLSTATE 57P01\)$/,
    );
    expect(failed?.message).not.toContain(password);
    expect(await query(admin, 'SELECT * FROM "ended" ORDER BY id')).toEqual(before);
    expect((await tables(admin)).filter((n) => n.startsWith("_staging"))).toEqual([]);
  });
});

describe("postgres streamed append into a table with a trigger", () => {
  /** A history table: each insert marks the key's earlier rows as no longer the latest. */
  async function addHistoryTrigger(t: string): Promise<void> {
    await query(url, `ALTER TABLE "${t}" ADD COLUMN is_latest boolean DEFAULT true`);
    await query(
      url,
      `CREATE FUNCTION "${t}_mark"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
         UPDATE "${t}" SET is_latest = false WHERE id = NEW.id AND ctid <> NEW.ctid AND is_latest;
         RETURN NULL; END $$`,
    );
    await query(
      url,
      `CREATE TRIGGER mark AFTER INSERT ON "${t}" FOR EACH ROW EXECUTE FUNCTION "${t}_mark"()`,
    );
  }
  /** Keys 5 and 6 in the first batch, and again after that batch was inserted (streaming stops). */
  const redo: Row[] = [
    { id: 5, name: "first" },
    { id: 6, name: "first" },
    ...recs(1001, 1498, "run"),
    { id: 5, name: "second" },
    { id: 6, name: "second" },
    ...recs(6000, 600, "run"),
  ];

  it("the commit deletes the rows the run inserted for a key that came again, not the rows of earlier runs (or of an earlier commit of the same run) the trigger updated in its transaction", async () => {
    process.env.PIPELINES_PG_UPSERT_ROWS = "0";
    await load("append", "hist", [...recs(5, 2, "old")]);
    await addHistoryTrigger("hist");
    process.env.PIPELINES_PG_UPSERT_ROWS = "1000";
    // A stream that commits at checkpoints: two commits of the same run.
    await load("append", "hist", [{ id: 5, name: "checkpoint" }], { runId: "CK" });
    await load("append", "hist", redo, { runId: "CK" });
    expect(await names(url, "hist", 5)).toEqual(["checkpoint:false", "old5:false", "second:true"]);
    expect(await names(url, "hist", 6)).toEqual(["old6:false", "second:true"]);
    expect(await query(url, `SELECT count(*)::int AS n FROM "hist"`)).toEqual([{ n: 2 + 1 + 2100 }]);
  });

  it("metadata_columns: false: a keyed append is not streamed (nothing to tell the run's rows by); the trigger's table keeps every earlier row", async () => {
    process.env.PIPELINES_PG_UPSERT_ROWS = "0";
    await load("append", "hist_plain", [...recs(5, 2, "old")], { meta: false });
    await addHistoryTrigger("hist_plain");
    process.env.PIPELINES_PG_UPSERT_ROWS = "1000";
    const writer = await open("append", "hist_plain", { meta: false });
    await write(writer, redo);
    const held = await locks(url, "hist_plain");
    await writer.commit(null);
    expect(await names(url, "hist_plain", 5)).toEqual(["old5:false", "second:true"]);
    expect(await names(url, "hist_plain", 6)).toEqual(["old6:false", "second:true"]);
    expect(await query(url, `SELECT count(*)::int AS n FROM "hist_plain"`)).toEqual([{ n: 2 + 2100 }]);
    expect(held).toEqual([]); // not streamed: no transaction open before the commit
  });
});
