/**
 * The streamed merge of the postgres output (src/outputs/postgres-upsert.ts): merge into a table
 * that exists upserts batches while records still arrive, in one transaction that the commit
 * ends. Against the test run's real PostgreSQL; PIPELINES_PG_UPSERT_ROWS makes batches small
 * (a batch is sent when the writer encodes its buffered records: every 1,000 records).
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { OutputPlan } from "../../src/compile/plan.js";
import { openWriter } from "../../src/outputs/registry.js";
import type { RecordWriter } from "../../src/outputs/writer.js";
import type { Row } from "../../src/records/shape.js";
import { ensureBuilt, REPO } from "../built.js";
import { freshDatabase, query, tables } from "../pg/helpers.js";

let url: string;
beforeAll(async () => {
  url = await freshDatabase("pg_upsert");
});
afterEach(() => {
  delete process.env.PIPELINES_PG_UPSERT_ROWS;
});

const plan = (mode: OutputPlan["mode"], table: string): OutputPlan => ({
  format: "postgres",
  mode,
  path: "/tmp/unused",
  postgres: { url, schema: "public" },
  table: { name: table, metadataColumns: true, nested: "json" },
  stateKey: "p",
});

const SCHEMA = {
  type: "object",
  properties: { id: { type: "integer" }, name: { type: "string" }, price: { type: "number" } },
};
let runs = 0;
async function open(mode: OutputPlan["mode"], table: string): Promise<RecordWriter> {
  return openWriter(plan(mode, table), {
    runId: `U${++runs}`,
    stream: "items",
    schema: SCHEMA,
    columns: ["id", "name", "price"],
    primaryKey: ["id"],
  });
}
async function write(writer: RecordWriter, records: Row[]): Promise<void> {
  for (const r of records) {
    const p = writer.write(r);
    if (p) await p;
  }
}
async function load(mode: OutputPlan["mode"], table: string, records: Row[]): Promise<RecordWriter> {
  const writer = await open(mode, table);
  try {
    await write(writer, records);
    await writer.commit(null);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer;
}

const rec = (id: number, name: string, extra: Row = {}): Row => ({ id, name, price: id / 2, ...extra });
const old = Array.from({ length: 3000 }, (_, i) => rec(i, `old${i}`));
/** Data columns of a table, in key order (metadata columns left out). */
const content = (t: string) =>
  query(url, `SELECT * FROM "${t}" ORDER BY id`).then((rows) =>
    rows.map(({ _run_id, _loaded_at, ...r }) => r),
  );
const staging = async () => (await tables(url)).filter((n) => n.startsWith("_staging"));
/**
 * Table locks the output's connection holds on `t` (pipelines sets application_name): locktype
 * `relation` only — an insert briefly holds the table's extension lock (locktype `extend`, also
 * "ExclusiveLock"), which says nothing about readers.
 */
const locks = (t: string) =>
  query<{ mode: string }>(
    url,
    "SELECT l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.application_name = 'pipelines' AND l.locktype = 'relation' AND l.relation = to_regclass($1) AND l.granted",
    [`"${t}"`],
  ).then((rows) => rows.map((r) => r.mode));

/** The locks on `t` once the upserts sent have started (they are not waited for): polled. */
async function locksOnceSent(t: string): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    const held = await locks(t);
    if (held.length) return held;
    await new Promise((r) => setTimeout(r, 50));
  }
  return locks(t);
}

/** 4,500 records of keys 0…3999: 500 keys twice in different batches, some twice within one; a late field. */
function duplicatedRun(): Row[] {
  const run: Row[] = [];
  for (let i = 0; i < 4500; i++) {
    const id = (i * 7) % 4000;
    run.push(rec(id, `new${i}`, i > 2500 ? { late: `l${i}` } : {}));
    if (i % 500 === 3) run.push(rec(id, `again${i}`));
  }
  return run;
}

describe("postgres merge, streamed in batches", () => {
  it("gives the table one upsert at the commit gives: duplicate keys within and across batches keep their last record, a field first seen after some batches becomes a column", async () => {
    const run = duplicatedRun();
    const results: unknown[] = [];
    for (const [t, rows] of [
      ["one_upsert", "0"],
      ["streamed", "3"],
    ]) {
      process.env.PIPELINES_PG_UPSERT_ROWS = "0";
      await load("merge", t, old);
      process.env.PIPELINES_PG_UPSERT_ROWS = rows;
      const writer = await load("merge", t, run);
      results.push({
        table: await content(t),
        dups: writer.duplicates?.(),
        notes: writer.warnings?.().map((n) => n.replace(t, "<table>")),
      });
    }
    expect(results[1]).toEqual(results[0]);
    // The last record of each key, whole (a key whose last record has no `late` gets NULL).
    const last = new Map<unknown, Row>();
    for (const r of run) last.set(r.id, r);
    const expected = [...last.values()]
      .sort((a, b) => Number(a.id) - Number(b.id))
      .map((r) => ({ id: String(r.id), name: r.name, price: r.price, late: r.late ?? null }));
    expect(await content("streamed")).toEqual(expected);
    expect((results[1] as { dups: number }).dups).toBe(run.length - last.size);
    expect(await staging()).toEqual([]);
  });

  it("upserts while records still arrive (the target is locked ROW EXCLUSIVE before the commit); readers are not blocked and see the old rows until the commit", async () => {
    process.env.PIPELINES_PG_UPSERT_ROWS = "0";
    await load("merge", "live", old);
    for (const rows of ["0", "1000"]) {
      process.env.PIPELINES_PG_UPSERT_ROWS = rows;
      const writer = await open("merge", "live");
      await write(
        writer,
        old.map((r) => ({ ...r, name: `v${rows}` })),
      );
      // Records 1…2000 were sent (two batches); the last 1,000 wait in the writer.
      expect(rows === "0" ? await locks("live") : await locksOnceSent("live")).toEqual(
        rows === "0" ? [] : ["RowExclusiveLock"],
      );
      expect((await content("live"))[5]).toMatchObject({ name: rows === "0" ? "old5" : "v0" });
      await writer.commit(null);
      expect((await content("live"))[2999]).toMatchObject({ name: `v${rows}` });
    }
  });

  it("a batch that needs DDL (a new column, the table's primary key) waits for the commit: no ACCESS EXCLUSIVE lock while records arrive, readers never blocked", async () => {
    process.env.PIPELINES_PG_UPSERT_ROWS = "0";
    await load("merge", "ddl_col", old);
    await load("append", "ddl_pk", old); // no primary key yet
    process.env.PIPELINES_PG_UPSERT_ROWS = "1000";
    for (const [t, late] of [
      ["ddl_col", 1500],
      ["ddl_pk", 0],
    ] as const) {
      const writer = await open("merge", t);
      // The first 1,500 records as before; from there on each has a new field `late`.
      await write(
        writer,
        old.map((r, i) => (i >= late ? { ...r, name: `v${i}`, late: `l${i}` } : { ...r, name: `v${i}` })),
      );
      // Only the batch before the new field was upserted (ddl_col); ddl_pk upserted nothing.
      if (late) expect(await locksOnceSent(t)).toEqual(["RowExclusiveLock"]);
      expect(await locks(t)).not.toContain("AccessExclusiveLock");
      expect((await content(t))[2000]).toMatchObject({ name: "old2000" }); // a reader is not blocked
      await writer.commit(null);
      const after = await content(t);
      expect(after).toHaveLength(old.length);
      expect(after[2000]).toMatchObject({ name: "v2000", late: "l2000" });
      expect(after[1000]).toMatchObject({ late: late ? null : "l1000" });
      expect(writer.warnings?.().join("\n")).toContain(`added column "late" (text) to table ${t}`);
    }
    expect(await staging()).toEqual([]);
  });

  it("a run that fails after batches were upserted leaves the old table exactly as it was: aborted (a failed quality gate), a bad record, an upsert the server refuses (its error reported)", async () => {
    process.env.PIPELINES_PG_UPSERT_ROWS = "0";
    await load("merge", "kept", old);
    await query(url, 'ALTER TABLE "kept" ADD CONSTRAINT cheap CHECK (price < 5000)');
    const before = await query(url, 'SELECT * FROM "kept" ORDER BY id');
    process.env.PIPELINES_PG_UPSERT_ROWS = "1";
    const changed = old.map((r) => ({ ...r, name: "changed" }));

    const aborted = await open("merge", "kept");
    await write(aborted, changed);
    expect(await locksOnceSent("kept")).toEqual(["RowExclusiveLock"]);
    await aborted.abort();

    const bad = changed.map((r, i) => (i === 2500 ? { ...r, name: "nul\u0000" } : r));
    await expect(load("merge", "kept", bad)).rejects.toThrow(/record #2501 \(id=2500\), field "name"/);

    // Record 1,500 breaks the table's CHECK: the second batch's upsert fails on the server, and
    // the statements after it fail because the transaction is aborted; the first error is told.
    const refused = [...changed, rec(20_000, "x")].map((r, i) => (i === 1500 ? { ...r, price: 9999 } : r));
    await expect(load("merge", "kept", refused)).rejects.toThrow(/violates check constraint "cheap"/);

    expect(await query(url, 'SELECT * FROM "kept" ORDER BY id')).toEqual(before);
    expect(await staging()).toEqual([]);
    expect(await locks("kept")).toEqual([]);
  });
});

describe("postgres append, streamed in batches", () => {
  const all = (t: string) => query(url, `SELECT id, name, price, late FROM "${t}" ORDER BY id, name`);

  it("inserts while records still arrive (the target is locked ROW EXCLUSIVE before the commit, readers see the old rows), and gives the table one insert at the commit gives: earlier rows kept, duplicate keys within and across batches keep their last record, a late field becomes a column", async () => {
    const run = duplicatedRun();
    const results: unknown[] = [];
    for (const [t, rows] of [
      ["append_once", "0"],
      ["append_streamed", "1000"],
    ]) {
      process.env.PIPELINES_PG_UPSERT_ROWS = "0";
      await load("append", t, old);
      await query(url, `ALTER TABLE "${t}" ADD COLUMN late text`); // the late field's column exists
      process.env.PIPELINES_PG_UPSERT_ROWS = rows;
      const writer = await open("append", t);
      await write(writer, run.slice(0, 2400)); // two batches sent (records 1…2000), no duplicate yet
      expect(rows === "0" ? await locks(t) : await locksOnceSent(t)).toEqual(
        rows === "0" ? [] : ["RowExclusiveLock"],
      );
      expect(await all(t)).toHaveLength(old.length); // a reader is not blocked, sees the old rows
      await write(writer, run.slice(2400));
      await writer.commit(null);
      results.push({ table: await all(t), dups: writer.duplicates?.() });
    }
    expect(results[1]).toEqual(results[0]);
    const last = new Map<unknown, Row>();
    for (const r of run) last.set(r.id, r);
    const expected = [...old, ...last.values()]
      .map((r) => ({ id: String(r.id), name: String(r.name), price: r.price, late: r.late ?? null }))
      .sort((a, b) => Number(a.id) - Number(b.id) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    expect(await all("append_streamed")).toEqual(expected);
    expect(await staging()).toEqual([]);
  });

  it("a key that comes again after its record was inserted stops the streaming: the commit keeps the last record, and rows of earlier runs with that key stay", async () => {
    process.env.PIPELINES_PG_UPSERT_ROWS = "0";
    await load("append", "append_redo", old);
    process.env.PIPELINES_PG_UPSERT_ROWS = "1000";
    const run = [...old.slice(0, 2500).map((r) => rec(Number(r.id), "first")), rec(5, "second")];
    await load("append", "append_redo", run);
    const rows = await query<{ name: string }>(
      url,
      `SELECT name FROM "append_redo" WHERE id = 5 ORDER BY name`,
    );
    expect(rows.map((r) => r.name)).toEqual(["old5", "second"]);
    expect(await query(url, `SELECT count(*)::int AS n FROM "append_redo"`)).toEqual([{ n: 3000 + 2500 }]);
  });

  it("a table with a primary key or a unique index is not streamed: its conflicts are resolved at the commit as before", async () => {
    process.env.PIPELINES_PG_UPSERT_ROWS = "0";
    await load("merge", "append_pk", old); // merge made its primary key
    await load("append", "append_uq", old);
    await query(url, 'CREATE UNIQUE INDEX append_uq_name ON "append_uq" (name)');
    process.env.PIPELINES_PG_UPSERT_ROWS = "1000";
    for (const t of ["append_pk", "append_uq"]) {
      const writer = await open("append", t);
      await write(writer, old);
      expect(await locks(t)).toEqual([]);
      await writer.commit(null).catch(() => writer.abort());
    }
    // Append keeps every row: the primary key an earlier merge made gives way (noted).
    expect(await query(url, 'SELECT count(*)::int AS n FROM "append_pk"')).toEqual([{ n: 6000 }]);
    // A unique index of the user's is kept: the run fails, the table is as it was.
    expect(await query(url, 'SELECT count(*)::int AS n FROM "append_uq"')).toEqual([{ n: 3000 }]);
    expect(await staging()).toEqual([]);
  });

  it("a run that fails after batches were inserted leaves the old table exactly as it was: aborted, a bad record, an insert the server refuses", async () => {
    process.env.PIPELINES_PG_UPSERT_ROWS = "0";
    await load("append", "append_kept", old);
    await query(url, 'ALTER TABLE "append_kept" ADD CONSTRAINT cheap CHECK (price < 5000)');
    const before = await query(url, 'SELECT * FROM "append_kept" ORDER BY id');
    process.env.PIPELINES_PG_UPSERT_ROWS = "1";
    const more = old.map((r) => ({ ...r, id: Number(r.id) + 10_000 }));

    const aborted = await open("append", "append_kept");
    await write(aborted, more);
    expect(await locksOnceSent("append_kept")).toEqual(["RowExclusiveLock"]);
    await aborted.abort();

    const bad = more.map((r, i) => (i === 2500 ? { ...r, name: "nul\u0000" } : r));
    await expect(load("append", "append_kept", bad)).rejects.toThrow(
      /record #2501 \(id=12500\), field "name"/,
    );
    const refused = more.map((r, i) => (i === 1500 ? { ...r, price: 9999 } : r));
    await expect(load("append", "append_kept", refused)).rejects.toThrow(/violates check constraint "cheap"/);

    expect(await query(url, 'SELECT * FROM "append_kept" ORDER BY id')).toEqual(before);
    expect(await staging()).toEqual([]);
    expect(await locks("append_kept")).toEqual([]);
  });
});

describe("postgres streamed loads and the connection", () => {
  it("one statement at a time: the next COPY waits for the running upsert or insert, so pg never queues a query (its deprecation warning stays off stderr)", async () => {
    await ensureBuilt();
    process.env.PIPELINES_PG_UPSERT_ROWS = "0";
    await load("merge", "quiet_merge", old);
    await load("append", "quiet_append", old);
    // A process of its own: pg warns once per process.
    const registry = pathToFileURL(path.join(REPO, "dist/outputs/registry.js")).href;
    const script = `
      const { openWriter } = await import(${JSON.stringify(registry)});
      for (const mode of ["merge", "append"]) {
        const plan = ${JSON.stringify(plan("merge", "x"))};
        const w = await openWriter({ ...plan, mode, table: { ...plan.table, name: "quiet_" + mode } }, {
          runId: "Q" + mode, stream: "items", schema: ${JSON.stringify(SCHEMA)},
          columns: ["id", "name", "price"], primaryKey: ["id"],
        });
        for (let i = 0; i < 5000; i++) {
          const p = w.write({ id: i, name: "q" + i, price: i / 2 });
          if (p) await p;
        }
        await w.commit(null);
      }`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, PIPELINES_PG_UPSERT_ROWS: "1000" },
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    expect(await query(url, 'SELECT count(*)::int AS n FROM "quiet_append"')).toEqual([{ n: 8000 }]);
    expect((await content("quiet_merge"))[4999]).toMatchObject({ name: "q4999" });
  });
});

describe("a value refused in the last batch of a streamed merge or append", () => {
  it.each(["merge", "append"] as const)(
    "%s: fails at once naming the record; the table is unchanged, no transaction left open",
    async (mode) => {
      const table = `refused_${mode}`;
      await load(mode, table, old.slice(0, 10));
      const started = Date.now();
      // The NUL character is refused while the last batch's COPY is open.
      await expect(load(mode, table, [rec(20, "new"), rec(21, "bad\u0000nul")])).rejects.toThrow(
        /record .*21.* NUL/,
      );
      expect(Date.now() - started).toBeLessThan(4000);
      expect(await query(url, `SELECT count(*)::int AS n, max(id)::int AS top FROM "${table}"`)).toEqual([
        { n: 10, top: 9 },
      ]);
      const open = await query(
        url,
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
      );
      expect(open).toEqual([{ n: 0 }]);
      expect(await staging()).toEqual([]);
    },
    20_000,
  );
});
