/**
 * DuckDB's load during the writes (src/outputs/duckdb-early.ts, EarlyLoad): full staged files go
 * into the target in a transaction opened at the first batch, committed by the writer's commit.
 * Every case is run twice, with the early load and with PIPELINES_DUCKDB_EARLY=off (the commit
 * loads everything), and must leave the same table, warnings and errors: the early load changes
 * when DuckDB does the work, never what is written.
 */
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { OutputPlan } from "../../src/compile/plan.js";
import { EARLY_BATCH_FILES, earlyLoadCommits } from "../../src/outputs/duckdb-early.js";
import { STAGING_PART_CHARS } from "../../src/outputs/duckdb-stager.js";
import { openWriter } from "../../src/outputs/registry.js";
import type { RecordWriter, WriterContext } from "../../src/outputs/writer.js";
import type { Row } from "../../src/records/shape.js";
import { listDir, tempDir } from "./helpers.js";

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => {
  delete process.env.PIPELINES_DUCKDB_EARLY;
  cleanup();
});

async function query(file: string, sql: string): Promise<Record<string, unknown>[]> {
  const inst = await DuckDBInstance.create(file);
  try {
    const conn = await inst.connect();
    const r = await conn.runAndReadAll(sql);
    conn.closeSync();
    return r.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    inst.closeSync();
  }
}

const SCHEMA = {
  type: "object",
  properties: {
    id: { type: "integer" },
    v: { type: "string" },
    at: { type: "string", format: "date-time" },
    n: { type: "number" },
    j: { type: "object" },
  },
};

/** Records enough for EARLY_BATCH_FILES full staging files and more (about 110 characters each). */
const COUNT = Math.ceil(((EARLY_BATCH_FILES + 1.5) * STAGING_PART_CHARS) / 110);
/** A record past the first batch of files: the early load has begun when it comes. */
const LATE = COUNT - 2000;

function records(change?: (r: Row, i: number) => void, count = COUNT): Row[] {
  return Array.from({ length: count }, (_, i) => {
    const r: Row = {
      id: i,
      v: `value ${i} ${"é🦆".repeat(i % 5)}`.padEnd(40, "-"),
      at:
        i % 7 === 0
          ? `2024-03-0${1 + (i % 9)}T10:00:00.123456+02:00`
          : `2024-03-01T00:00:${String(i % 60).padStart(2, "0")}Z`,
      n: i % 3 === 0 ? i / 4 : i,
      j: { a: [i % 10, "x"], b: null },
    };
    change?.(r, i);
    return r;
  });
}

let runs = 0;

interface Case {
  mode?: OutputPlan["mode"];
  ctx?: Partial<WriterContext>;
  stateKey?: string;
}

/** Writes `rows` into table `items` of `file` and commits; the writer (or the commit's error). */
async function write(
  file: string,
  rows: Row[],
  c: Case = {},
): Promise<{ writer: RecordWriter; error: string | null }> {
  const writer = await openWriter(
    {
      format: "duckdb",
      mode: c.mode ?? "replace",
      path: file,
      ...(c.stateKey ? { stateKey: c.stateKey } : {}),
    },
    {
      runId: `E${++runs}`,
      stream: "items",
      columns: Object.keys(SCHEMA.properties),
      primaryKey: null,
      schema: SCHEMA,
      ...c.ctx,
    },
  );
  for (let i = 0; i < rows.length; i++) {
    const p = writer.write(rows[i]);
    if (p) await p;
    // Invalid records too: `<table>__invalid` is written in the early load's transaction.
    if (i % 20000 === 7)
      await writer.writeInvalid?.({
        record_id: String(i),
        errors: [{ path: "/v", message: "bad" }],
        record: rows[i],
      });
  }
  try {
    await writer.commit(c.stateKey ? { cursor: String(rows.length) } : undefined);
    return { writer, error: null };
  } catch (err) {
    await writer.abort();
    return { writer, error: (err as Error).message };
  }
}

/** Everything a run leaves in the file: the tables, each one's columns and rows in their order. */
async function contents(file: string): Promise<unknown> {
  const names = (await query(file, "SELECT table_name FROM duckdb_tables() ORDER BY table_name")).map((r) =>
    String(r.table_name),
  );
  const out: Record<string, unknown> = {};
  for (const t of names) {
    const cols = await query(
      file,
      `SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = '${t}' ORDER BY column_index`,
    );
    const meta = cols.some((c) => c.column_name === "_loaded_at") ? " EXCLUDE (_run_id, _loaded_at)" : "";
    // The state's own times (`updated_at`, in the column and in the JSON) are the commit's.
    const what =
      t === "_pipelines_state"
        ? "pipeline, stream, json_extract_string(state, '$.cursor') AS cursor"
        : `*${meta}`;
    out[t] = { cols, rows: await query(file, `SELECT ${what} FROM "${t}" ORDER BY rowid`) };
  }
  return out;
}

/**
 * Runs `before` then `rows` (with `c`) into two files, once with the early load and once without;
 * expects the same contents, warnings and error, and returns whether the early load committed.
 */
async function both(
  rows: Row[],
  c: Case = {},
  before?: (file: string) => Promise<void>,
): Promise<{
  early: boolean;
  error: string | null;
  file: string;
}> {
  const results = [];
  for (const off of [false, true]) {
    const file = path.join(dir, off ? "off" : "on", "db.duckdb");
    if (before) {
      process.env.PIPELINES_DUCKDB_EARLY = "off";
      await before(file);
    }
    if (off) process.env.PIPELINES_DUCKDB_EARLY = "off";
    else delete process.env.PIPELINES_DUCKDB_EARLY;
    const commits = earlyLoadCommits();
    const { writer, error } = await write(file, rows, c);
    delete process.env.PIPELINES_DUCKDB_EARLY;
    results.push({
      early: earlyLoadCommits() > commits,
      error: error?.replaceAll(file, "<file>").replaceAll(/E\d+/g, "E"),
      warnings: writer.warnings?.() ?? [],
      contents: await contents(file),
      left: listDir(path.dirname(file)).filter((f) => f.endsWith(".tmp")),
      file,
    });
  }
  const [on, off] = results;
  expect(off.early).toBe(false);
  expect(on.error).toEqual(off.error);
  expect(on.warnings).toEqual(off.warnings);
  expect(on.contents).toEqual(off.contents);
  expect(on.left).toEqual([]);
  expect(off.left).toEqual([]);
  return { early: on.early, error: on.error ?? null, file: on.file };
}

describe("DuckDB early load", () => {
  it("replace: the rows loaded during the writes are the commit's own load (values, types, order), one _loaded_at", async () => {
    const old = (file: string) => write(file, records().slice(0, 10)).then(() => undefined);
    const r = await both(records(), {}, old);
    expect(r).toMatchObject({ early: true, error: null });
    expect(await query(r.file, "SELECT count(*) AS n, count(DISTINCT _loaded_at) AS t FROM items")).toEqual([
      { n: BigInt(COUNT), t: 1n },
    ]);
  });

  it("merge into a table that does not exist yet: loaded early, with its primary-key constraint", async () => {
    const r = await both(records(), { mode: "merge", ctx: { primaryKey: ["id"] } });
    expect(r.early).toBe(true);
    const again = await write(r.file, [{ id: 5, v: "new" }], { mode: "merge", ctx: { primaryKey: ["id"] } });
    expect(again.error).toBeNull();
    expect(await query(r.file, "SELECT count(*) AS n, max(v) FILTER (WHERE id = 5) AS v FROM items")).toEqual(
      [{ n: BigInt(COUNT), v: "new" }],
    );
  });

  it("the state is committed with the early load, in its transaction", async () => {
    const r = await both(records(), { stateKey: "p" });
    expect(r.early).toBe(true);
    expect(await query(r.file, "SELECT CAST(state AS VARCHAR) AS s FROM _pipelines_state")).toEqual([
      { s: expect.stringContaining(`"cursor":"${COUNT}"`) },
    ]);
  });

  // Where the commit must load everything itself: each leaves what the commit's own load leaves.
  const cases: [string, () => Row[], Case, ((file: string) => Promise<void>) | null, boolean][] = [
    [
      "a field the schema lacks, first seen after the early load began",
      () => records((r, i) => i >= LATE && (r.extra = true)),
      {},
      null,
      false,
    ],
    [
      "a key repeated after the early load began (the last record of a key wins)",
      () => records((r, i) => i === LATE && (r.id = 3)),
      { ctx: { primaryKey: ["id"] } },
      null,
      false,
    ],
    [
      "a column without a schema widening after the early load began",
      () => records((r, i) => (r.w = i >= LATE ? 0.5 : i)),
      {},
      null,
      false,
    ],
    [
      "append into an existing table",
      () => records(),
      { mode: "append" },
      (f) => write(f, records().slice(0, 3), { mode: "append" }).then(() => undefined),
      false,
    ],
    [
      "replace over a table whose column changed type (reported)",
      () => records(),
      {},
      (f) => write(f, [{ id: 1, v: 1 }], { ctx: { schema: null } }).then(() => undefined),
      false,
    ],
    // Only nulls until a record past the first batch: the load waits for the column's type, then
    // takes every file so far at the next batch.
    [
      "a column of nulls until a late record",
      () => records((r, i) => (r.late = i >= COUNT ? "x" : null), 2 * COUNT),
      {},
      null,
      true,
    ],
  ];
  for (const [name, rows, c, before, early] of cases)
    it(`${name}: the same table ${early ? "(loaded early)" : "(loaded by the commit)"}`, async () => {
      const r = await both(rows(), c, before ?? undefined);
      expect(r.error).toBeNull();
      expect(r.early).toBe(early);
    });

  it("a value DuckDB cannot cast, after the early load began: the same error naming the record; the old table stays", async () => {
    const old = (file: string) => write(file, records().slice(0, 10)).then(() => undefined);
    const r = await both(
      records((rec, i) => i === LATE && (rec.at = "yesterday")),
      {},
      old,
    );
    expect(r.error ?? "").toMatch(
      new RegExp(`record #${LATE + 1} written: field \`at\` is not a valid date-time`),
    );
    expect(await query(r.file, "SELECT count(*) AS n FROM items")).toEqual([{ n: 10n }]);
  });

  it("aborted, or its records kept aside, after the early load began: the old table as it was, no table or file left", async () => {
    const file = path.join(dir, "db.duckdb");
    await write(file, records().slice(0, 10));
    const before = await contents(file);
    const open = () =>
      openWriter(
        { format: "duckdb", mode: "replace", path: file },
        {
          runId: `E${++runs}`,
          stream: "items",
          columns: Object.keys(SCHEMA.properties),
          primaryKey: null,
          schema: SCHEMA,
        },
      );
    const a = await open();
    for (const r of records()) await a.write(r);
    await a.abort();
    expect(await contents(file)).toEqual(before);
    const k = await open();
    for (const r of records()) await k.write(r);
    const kept = (await k.keepRejected!()) ?? "";
    const table = /table (\S+)\)$/.exec(kept)![1];
    const after = (await contents(file)) as Record<string, { rows: unknown[] }>;
    expect(after[table].rows).toHaveLength(COUNT);
    delete after[table];
    // keepRejected writes `<table>__invalid` with this run's invalid records (none here).
    const { items__invalid: _, ...rest } = before as Record<string, unknown>;
    expect(after).toEqual(rest);
    expect(listDir(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("two streams with their state into a new file, at the same time: one loads early (one at a time per file), both commit", async () => {
    const file = path.join(dir, "db.duckdb");
    const commits = earlyLoadCommits();
    const open = (stream: string) =>
      openWriter(
        { format: "duckdb", mode: "replace", path: file, stateKey: "p" },
        { runId: "E2", stream, columns: Object.keys(SCHEMA.properties), primaryKey: null, schema: SCHEMA },
      );
    const [a, b] = await Promise.all([open("a"), open("b")]);
    const all = records();
    for (let i = 0; i < all.length; i++) {
      await a.write(all[i]);
      await b.write(all[all.length - 1 - i]);
    }
    // b commits first, loading everything while a's early load is open: it writes
    // _pipelines_state, which a made beforehand (two transactions making it would conflict).
    await b.commit({ cursor: "b" });
    await a.commit({ cursor: "a" });
    expect(earlyLoadCommits() - commits).toBe(1);
    expect(
      await query(
        file,
        "SELECT (SELECT count(*) FROM a) AS a, (SELECT count(*) FROM b) AS b, (SELECT string_agg(stream, ',' ORDER BY stream) FROM _pipelines_state) AS s",
      ),
    ).toEqual([{ a: BigInt(COUNT), b: BigInt(COUNT), s: "a,b" }]);
  });
});
