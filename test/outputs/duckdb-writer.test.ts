import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { OutputPlan } from "../../src/compile/plan.js";
import { openWriter } from "../../src/outputs/registry.js";
import type { RecordWriter } from "../../src/outputs/writer.js";
import type { Row } from "../../src/records/shape.js";
import { listDir, type RunOptions, runWriter, tempDir } from "./helpers.js";

let dir: string;
let cleanup: () => void;
let file: string;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  file = path.join(dir, "out", "pipeline.duckdb");
});
afterEach(() => cleanup());

/** Reads the database back with DuckDB itself. */
async function query(sql: string, target = file): Promise<Record<string, unknown>[]> {
  const inst = await DuckDBInstance.create(target);
  try {
    const conn = await inst.connect();
    const r = await conn.runAndReadAll(sql);
    conn.closeSync();
    return r.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    inst.closeSync();
  }
}
const tables = async () =>
  (await query("SELECT table_name FROM duckdb_tables() ORDER BY table_name")).map((r) => r.table_name);
const types = async (table = "items") =>
  Object.fromEntries(
    (
      await query(
        `SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = '${table.replaceAll("'", "''")}' ORDER BY column_index`,
      )
    ).map((r) => [r.column_name, r.data_type]),
  );
/** Rows without the metadata columns, by id. */
const rows = async (table = "items") =>
  (await query(
    `SELECT * EXCLUDE (_run_id, _loaded_at) FROM "${table.replaceAll('"', '""')}" ORDER BY id`,
  )) as Row[];

const PK = { primaryKey: ["id"] };
const SCHEMA = {
  type: "object",
  properties: {
    id: { type: "integer" },
    price: { type: "number" },
    active: { type: "boolean" },
    name: { type: ["string", "null"] },
    at: { type: "string", format: "date-time" },
    day: { type: "string", format: "date" },
    tags: { type: "array", items: { type: "string" } },
    meta: { type: "object" },
  },
};

/** `nested: tables` into table `orders` (key `id`), through runWriter (aborted when it fails). */
const nested = (
  mode: OutputPlan["mode"],
  records: Row[],
  { meta = false, ...opts }: RunOptions & { meta?: boolean } = {},
) =>
  runWriter("duckdb", mode, file, records, {
    stream: "orders",
    primaryKey: ["id"],
    output: { table: { name: "orders", metadataColumns: meta, nested: "tables" } },
    ...opts,
  });

describe("duckdb columns", () => {
  it("types come from the schema: timestamps with time zone, dates, JSON; values intact", async () => {
    await runWriter(
      "duckdb",
      "replace",
      file,
      [
        {
          id: 1,
          price: 4.5,
          active: true,
          name: "a",
          at: "2024-01-01T10:00:00.123456+02:00",
          day: "2024-02-29",
          tags: ["x", "y"],
          meta: { k: [1, { z: null }] },
        },
        { id: 2, price: 3, active: false, name: null },
      ],
      { columns: Object.keys(SCHEMA.properties), schema: SCHEMA },
    );
    expect(await types()).toEqual({
      id: "BIGINT",
      price: "DOUBLE",
      active: "BOOLEAN",
      name: "VARCHAR",
      at: "TIMESTAMP WITH TIME ZONE",
      day: "DATE",
      tags: "JSON",
      meta: "JSON",
      _run_id: "VARCHAR",
      _loaded_at: "TIMESTAMP WITH TIME ZONE",
    });
    const got = await query(
      'SELECT id, price, active, name, epoch_us("at") AS at_us, CAST(day AS VARCHAR) AS day, CAST(tags AS VARCHAR) AS tags, CAST(meta AS VARCHAR) AS meta, _run_id FROM items ORDER BY id',
    );
    expect(got).toEqual([
      {
        id: 1n,
        price: 4.5,
        active: true,
        name: "a",
        at_us: BigInt(Date.parse("2024-01-01T08:00:00.123Z")) * 1000n + 456n,
        day: "2024-02-29",
        tags: '["x","y"]',
        meta: '{"k":[1,{"z":null}]}',
        _run_id: expect.stringMatching(/^run/),
      },
      {
        id: 2n,
        price: 3,
        active: false,
        name: null,
        at_us: null,
        day: null,
        tags: null,
        meta: null,
        _run_id: expect.any(String),
      },
    ]);
    expect(await tables()).toEqual(["items"]); // no staging table left
  });

  it("without a schema, types come from the values seen, and widen rather than change a value", async () => {
    const recs: Row[] = [];
    for (let i = 0; i < 3000; i++) recs.push({ id: i, n: i, s: "x", mixed: i });
    recs.push({ id: 3000, n: 1.5, s: "y", mixed: "text", late: true });
    await runWriter("duckdb", "replace", file, recs);
    expect(await types()).toMatchObject({
      id: "BIGINT",
      n: "DOUBLE",
      s: "VARCHAR",
      mixed: "JSON",
      late: "BOOLEAN",
    });
    const got = await query(
      "SELECT id, n, CAST(mixed AS VARCHAR) AS mixed, late FROM items WHERE id IN (2999, 3000) ORDER BY id",
    );
    expect(got).toEqual([
      { id: 2999n, n: 2999, mixed: "2999", late: null },
      { id: 3000n, n: 1.5, mixed: '"text"', late: true },
    ]);
  });

  it("unusual values arrive intact: 64-bit integers, NUL bytes, emoji, 1 MB strings, __proto__ keys", async () => {
    const big = "x".repeat(1024 * 1024);
    const proto = JSON.parse('{"id": 1, "__proto__": "p", "obj": {"__proto__": {"a": 1}}}') as Row;
    await runWriter("duckdb", "replace", file, [
      { ...proto, s: "a\u0000b 😀 é", big: 9007199254740993n, text: big },
      { id: 2, s: "", big: -(2n ** 63n), text: null },
    ]);
    const got = await query(
      `SELECT id, "__proto__" AS p, CAST(obj AS VARCHAR) AS obj, s, big, length(text) AS len FROM items ORDER BY id`,
    );
    expect(got).toEqual([
      {
        id: 1n,
        p: "p",
        obj: '{"__proto__":{"a":1}}',
        s: "a\u0000b 😀 é",
        big: 9007199254740993n,
        len: BigInt(big.length),
      },
      { id: 2n, p: null, obj: null, s: "", big: -(2n ** 63n), len: null },
    ]);
  });

  it("many long strings: DuckDB keeps them in memory until the commit, so its memory limit is raised for the load (and said)", async () => {
    // 60 strings of 1 MB: at the engine's 48 MB the commit failed ("failed to pin block").
    const long = (i: number) => `${"y".repeat(1024 * 1024)}${i}`;
    const records = Array.from({ length: 60 }, (_, i) => ({ id: i, text: long(i) }));
    const w = await runWriter("duckdb", "replace", file, records);
    expect(w.warnings?.().join("\n")).toMatch(/memory limit was raised to \d+ MiB for the load/);
    const got = await query(
      "SELECT count(*) AS n, sum(length(text)) AS chars, max(text) = $1 AS last FROM items".replace(
        "$1",
        `'${long(9)}'`,
      ),
    );
    expect(got).toEqual([
      { n: 60n, chars: BigInt(records.reduce((n, r) => n + r.text.length, 0)), last: true },
    ]);
  });

  it("refuses, naming the record, an integer its BIGINT column cannot hold, and leaves the table as it was", async () => {
    const schema = { type: "object", properties: { id: { type: "integer" }, n: { type: "integer" } } };
    const opts = { ...PK, schema, columns: ["id", "n"] };
    await runWriter("duckdb", "replace", file, [{ id: 1, n: 5 }], opts);
    await expect(runWriter("duckdb", "replace", file, [{ id: 7, n: 2n ** 64n }], opts)).rejects.toThrow(
      /record 7: field `n` holds an integer beyond 64 bits, which its BIGINT column cannot hold/,
    );
    expect(await rows()).toEqual([{ id: 1n, n: 5n }]);
    expect(await tables()).toEqual(["items"]);
    // Without a schema, such a column is JSON, and the digits arrive exactly.
    await runWriter("duckdb", "replace", file, [{ id: 7, n: 2n ** 64n }], PK);
    expect(await query("SELECT CAST(n AS VARCHAR) AS n FROM items")).toEqual([{ n: "18446744073709551616" }]);
  });

  it("refuses a date-time DuckDB cannot read, naming the record; the previous table stays", async () => {
    const schema = {
      type: "object",
      properties: { id: { type: "integer" }, at: { type: "string", format: "date-time" } },
    };
    const opts = { schema, columns: ["id", "at"] };
    await runWriter("duckdb", "replace", file, [{ id: 1, at: "2024-01-01T00:00:00Z" }], opts);
    await expect(
      runWriter(
        "duckdb",
        "replace",
        file,
        [
          { id: 1, at: "2024-01-01T00:00:00Z" },
          { id: 2, at: "yesterday" },
        ],
        opts,
      ),
    ).rejects.toThrow(/record #2 written: field `at` is not a valid date-time/);
    expect(await query('SELECT id, CAST("at" AS VARCHAR) AS "at" FROM items')).toEqual([
      { id: 1n, at: "2024-01-01 00:00:00+00" },
    ]);
    expect(await tables()).toEqual(["items"]);
  });

  it("quotes every identifier: quotes, spaces, dots, reserved words, long names", async () => {
    const table = `se"lect. ${"t".repeat(100)}`;
    const col = `we"ird col.${"c".repeat(100)}`;
    await runWriter("duckdb", "merge", file, [{ id: 1, [col]: "v", select: 1, "a b": 2 }], PK, table);
    await runWriter("duckdb", "merge", file, [{ id: 1, [col]: "w", select: 3, "a b": 4 }], PK, table);
    expect(await rows(table)).toEqual([{ id: 1n, [col]: "w", select: 3n, "a b": 4n }]);
  });

  it("fields that differ only in case are refused (DuckDB names ignore case)", async () => {
    await expect(runWriter("duckdb", "replace", file, [{ id: 1, Name: "a", name: "b" }])).rejects.toThrow(
      /differ only in case/,
    );
  });
});

describe("duckdb modes", () => {
  it("replace swaps the table in; append inserts; merge upserts on a primary-key constraint", async () => {
    await runWriter(
      "duckdb",
      "replace",
      file,
      [
        { id: 1, v: "a" },
        { id: 2, v: "b" },
      ],
      PK,
    );
    await runWriter("duckdb", "replace", file, [{ id: 3, v: "c" }], PK);
    expect(await rows()).toEqual([{ id: 3n, v: "c" }]);
    await runWriter("duckdb", "append", file, [{ id: 4, v: "d" }], PK);
    expect(await rows()).toEqual([
      { id: 3n, v: "c" },
      { id: 4n, v: "d" },
    ]);
    const w = await runWriter(
      "duckdb",
      "merge",
      file,
      [
        { id: 4, v: "D1" },
        { id: 5, v: "e" },
        { id: 4, v: "D2" },
      ],
      PK,
    );
    expect(w.duplicates?.()).toBe(1);
    expect(await rows()).toEqual([
      { id: 3n, v: "c" },
      { id: 4n, v: "D2" },
      { id: 5n, v: "e" },
    ]);
    const pk = await query(
      "SELECT constraint_type FROM duckdb_constraints() WHERE table_name = 'items' AND constraint_type = 'PRIMARY KEY'",
    );
    expect(pk).toHaveLength(1);
    // A merged row carries the run that last wrote it.
    const runs = await query("SELECT id, _run_id FROM items ORDER BY id");
    expect(runs[0]._run_id).not.toBe(runs[1]._run_id);
    expect(runs[1]._run_id).toBe(runs[2]._run_id);
    // Merging the same data again changes nothing.
    await runWriter(
      "duckdb",
      "merge",
      file,
      [
        { id: 4, v: "D2" },
        { id: 5, v: "e" },
      ],
      PK,
    );
    expect(await rows()).toHaveLength(3);
  });

  it("a failed run leaves the previous table exactly as it was, and no staging table", async () => {
    await runWriter("duckdb", "replace", file, [{ id: 1, v: "a" }], PK);
    const before = await query("SELECT * FROM items");
    await runWriter("duckdb", "replace", file, [{ id: 2, v: "b" }], { ...PK, abort: true });
    await runWriter("duckdb", "merge", file, [{ id: 1, v: "z" }], { ...PK, abort: true });
    expect(await query("SELECT * FROM items")).toEqual(before);
    expect(await tables()).toEqual(["items"]);
    expect(listDir(path.dirname(file)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("schema evolution: a new field becomes a nullable column, reported; a type change is reported, not applied", async () => {
    await runWriter("duckdb", "append", file, [{ id: 1, n: 5 }], PK);
    const w = await runWriter("duckdb", "append", file, [{ id: 2, n: "6", extra: true }], PK);
    expect(w.warnings?.().join("\n")).toMatch(/column `extra` \(BOOLEAN\) added to table `items`/);
    expect(w.warnings?.().join("\n")).toMatch(
      /column type changed \(`n` is BIGINT, this run's is VARCHAR\).*keep their type/,
    );
    expect(await types()).toMatchObject({ n: "BIGINT", extra: "BOOLEAN" });
    expect(await rows()).toEqual([
      { id: 1n, n: 5n, extra: null },
      { id: 2n, n: 6n, extra: true },
    ]);
    // drift: fail stops the stream before commit.
    await expect(
      runWriter("duckdb", "append", file, [{ id: 3, n: "x" }], { ...PK, drift: "fail" }),
    ).rejects.toThrow(/column type changed.*drift: fail/);
    expect(await rows()).toHaveLength(2);
    expect(await tables()).toEqual(["items"]);
  });

  it("the state is written in the commit's transaction and read back at open; a failed commit keeps the old one", async () => {
    const plan = (mode: "append" | "replace") =>
      ({
        format: "duckdb",
        mode,
        path: file,
        table: { name: "items", metadataColumns: true, nested: "json" },
        stateKey: "p",
      }) as const;
    const open = (runId: string, drift?: "fail") =>
      openWriter(plan("append"), { runId, stream: "items", columns: null, primaryKey: ["id"], drift });
    const first = await open("r1");
    expect(first.savedState?.()).toBeNull();
    first.write({ id: 1, n: 1 });
    await first.commit({ cursor: "2024-05-02" });
    expect(
      await query("SELECT pipeline, stream, CAST(state AS VARCHAR) AS state FROM _pipelines_state"),
    ).toEqual([{ pipeline: "p", stream: "items", state: expect.stringContaining('"cursor":"2024-05-02"') }]);
    const second = await open("r2", "fail");
    expect(second.savedState?.()).toMatchObject({ cursor: "2024-05-02" });
    second.write({ id: 2, n: "x" });
    // drift: fail refuses the commit: neither the rows nor the state move.
    await expect(second.commit({ cursor: "2024-06-01" })).rejects.toThrow(/drift: fail/);
    await second.abort();
    const third = await open("r3");
    expect(third.savedState?.()).toMatchObject({ cursor: "2024-05-02" });
    third.write({ id: 3, n: 3 });
    await third.commit({ cursor: 7 });
    expect((await open("r4")).savedState?.()).toMatchObject({ cursor: 7 });
    expect(await rows()).toEqual([
      { id: 1n, n: 1n },
      { id: 3n, n: 3n },
    ]);
  });

  it("nested: tables makes child tables keyed by the parent's primary key and _index, kept consistent on merge and replace", async () => {
    const load = (mode: OutputPlan["mode"], records: Row[], schema?: Record<string, unknown>) =>
      nested(mode, records, { schema, meta: true });
    const lines = () => query("SELECT id, _index, sku, q FROM orders__lines ORDER BY id, _index");
    await load("merge", [
      {
        id: 1,
        note: null,
        lines: [
          { sku: "a", q: 1 },
          { sku: "b", q: 2 },
        ],
      },
      { id: 2, lines: [{ sku: "c", q: 3 }] },
    ]);
    expect(await lines()).toEqual([
      { id: 1n, _index: 0n, sku: "a", q: 1n },
      { id: 1n, _index: 1n, sku: "b", q: 2n },
      { id: 2n, _index: 0n, sku: "c", q: 3n },
    ]);
    // A key repeated within the run: its last record's child rows only; the old ones of id 1 go.
    await load("merge", [
      { id: 1, lines: [{ sku: "z", q: 9 }] },
      { id: 1, lines: [{ sku: "y", q: 8 }] },
    ]);
    expect(await lines()).toEqual([
      { id: 1n, _index: 0n, sku: "y", q: 8n },
      { id: 2n, _index: 0n, sku: "c", q: 3n },
    ]);
    expect(await query("SELECT id FROM orders ORDER BY id")).toEqual([{ id: 1n }, { id: 2n }]);
    expect(Object.keys(await types("orders"))).not.toContain("lines");
    // With a schema, the child's columns are typed from the items' properties; replace recreates.
    const schema = {
      type: "object",
      properties: {
        id: { type: "integer" },
        lines: {
          type: "array",
          items: { type: "object", properties: { sku: { type: "string" }, q: { type: "number" } } },
        },
      },
    };
    await load("replace", [{ id: 3, lines: [{ sku: "d", q: 4 }] }], schema);
    expect(await lines()).toEqual([{ id: 3n, _index: 0n, sku: "d", q: 4 }]);
    expect(await types("orders__lines")).toMatchObject({
      id: "BIGINT",
      _index: "BIGINT",
      sku: "VARCHAR",
      q: "DOUBLE",
    });
    expect((await tables()).filter((t) => String(t).includes("staging"))).toEqual([]);
    await expect(load("append", [{ id: 4, lines: [{ sku: "e", id: 5 }] }])).rejects.toThrow(
      /items of `lines` have a field `id`/,
    );
  });

  it("metadata_columns: false leaves _run_id and _loaded_at out", async () => {
    const writer = await openWriter(
      {
        format: "duckdb",
        mode: "replace",
        path: file,
        table: { name: "t", metadataColumns: false, nested: "json" },
      },
      { runId: "r1", stream: "items", columns: null, primaryKey: null },
    );
    writer.write({ id: 1 });
    await writer.commit();
    expect(await types("t")).toEqual({ id: "BIGINT" });
  });

  it("invalid records go to <table>__invalid, replaced by each commit", async () => {
    const open = (runId: string): Promise<RecordWriter> =>
      openWriter(
        { format: "duckdb", mode: "replace", path: file },
        { runId, stream: "items", columns: null, primaryKey: null },
      );
    let w = await open("r1");
    w.write({ id: 1 });
    await w.writeInvalid?.({
      record_id: "#2",
      errors: [{ path: "/id", message: "must be integer" } as never],
      record: { id: "x", __proto__: null } as Row,
    });
    await w.commit();
    expect(
      await query(
        "SELECT record_id, CAST(record AS VARCHAR) AS record, CAST(errors AS VARCHAR) AS errors, _run_id FROM items__invalid",
      ),
    ).toEqual([
      {
        record_id: "#2",
        record: '{"id":"x"}',
        errors: '[{"path":"/id","message":"must be integer"}]',
        _run_id: "r1",
      },
    ]);
    w = await open("r2");
    w.write({ id: 1 });
    await w.commit();
    expect(await tables()).toEqual(["items"]);
  });

  it("several streams write one file at the same time", async () => {
    const open = (stream: string) =>
      openWriter(
        { format: "duckdb", mode: "replace", path: file },
        { runId: "r1", stream, columns: null, primaryKey: null },
      );
    const [a, b] = await Promise.all([open("a"), open("b")]);
    const fill = async (w: RecordWriter, n: number) => {
      for (let i = 0; i < n; i++) await w.write({ id: i });
      await w.commit();
    };
    await Promise.all([fill(a, 5000), fill(b, 7000)]);
    expect(await query("SELECT (SELECT count(*) FROM a) AS a, (SELECT count(*) FROM b) AS b")).toEqual([
      { a: 5000n, b: 7000n },
    ]);
  });
});

describe("duckdb merge: a record without its primary key", () => {
  it("fails the commit naming the record; the table is unchanged", async () => {
    const key = { primaryKey: ["a", "b"] };
    await runWriter("duckdb", "merge", file, [{ a: 1, b: "x", v: 1 }], key);
    const records = [
      { a: 2, b: "y", v: 2 },
      { a: 3, b: "z", v: 3 },
      { a: null, b: "x", v: 4 },
      { b: "w", v: 5 },
    ];
    await expect(runWriter("duckdb", "merge", file, records, key)).rejects.toThrow(
      /record #3 written has no value for the primary key \(a, b\): mode merge upserts each row of table `items`/,
    );
    expect(await query("SELECT a, b, v FROM items")).toEqual([{ a: 1n, b: "x", v: 1n }]);
    // A key field no record has at all: the first record is named.
    await expect(runWriter("duckdb", "merge", path.join(dir, "n.duckdb"), [{ v: 1 }], key)).rejects.toThrow(
      /record #1 written has no value for the primary key/,
    );
  });
});

describe("duckdb append and merge keep a column's type", () => {
  it("a value the column cannot hold exactly fails naming the record; JSON strings into a text column lose no quotes", async () => {
    await runWriter("duckdb", "replace", file, [{ id: 1, v: 1, w: "a" }]);
    await expect(
      runWriter("duckdb", "append", file, [
        { id: 2, v: 1, w: "b" },
        { id: 3, v: 1.5, w: "c" },
      ]),
    ).rejects.toThrow(
      /record #2 written: field `v` holds 1\.5 \(DOUBLE\), which the BIGINT column of table `items` .* cannot hold exactly/,
    );
    await expect(runWriter("duckdb", "merge", file, [{ id: 4, v: "007" }], PK)).rejects.toThrow(
      /record #1 written: field `v` holds 007 \(VARCHAR\), which the BIGINT column/,
    );
    expect(await rows()).toEqual([{ id: 1n, v: 1n, w: "a" }]);
    // Mixed values (a JSON column in the run) into the text column: strings as they are.
    const w = await runWriter("duckdb", "append", file, [
      { id: 5, v: 2, w: 5 },
      { id: 6, v: 3, w: "9" },
      { id: 7, v: 4, w: { x: 1 } },
    ]);
    expect(w.warnings?.().join("\n")).toMatch(/column type changed/);
    expect(await rows()).toEqual([
      { id: 1n, v: 1n, w: "a" },
      { id: 5n, v: 2n, w: "5" },
      { id: 6n, v: 3n, w: "9" },
      { id: 7n, v: 4n, w: '{"x":1}' },
    ]);
  });
});

describe("duckdb nested: tables without a schema", () => {
  const lines = () => query("SELECT id, _index, sku FROM orders__lines ORDER BY id, _index");
  const first = [
    { id: 1, lines: [{ sku: "a" }, { sku: "b" }] },
    { id: 2, lines: [{ sku: "c" }] },
    { id: 3, lines: [{ sku: "d" }] },
  ];

  it("a merged parent whose array is now empty or null loses its child rows; no JSON column is added", async () => {
    await nested("merge", first);
    const w = await nested("merge", [
      { id: 1, lines: [] },
      { id: 2, lines: null },
    ]);
    expect(await lines()).toEqual([{ id: 3n, _index: 0n, sku: "d" }]);
    expect(await types("orders")).toEqual({ id: "BIGINT" });
    expect(w.warnings?.() ?? []).toEqual([]);
  });

  it("a column a child table keeps with another type is the child's own: the parent's of the same name is not checked against it", async () => {
    await nested("merge", [{ id: 1, code: "A", lines: [{ code: 5 }] }]);
    // The child's `code` (BIGINT) takes "7" exactly; the parent's `code` is text, as the run's.
    await nested("merge", [{ id: 2, code: "B", lines: [{ code: "7" }] }]);
    expect(await query("SELECT id, code FROM orders ORDER BY id")).toEqual([
      { id: 1n, code: "A" },
      { id: 2n, code: "B" },
    ]);
    expect(await query("SELECT id, code FROM orders__lines ORDER BY id")).toEqual([
      { id: 1n, code: 5n },
      { id: 2n, code: 7n },
    ]);
  });

  it("a replace whose records have no item empties the child table", async () => {
    await nested("replace", first);
    await nested("replace", [{ id: 5, lines: [] }]);
    expect(await query("SELECT count(*) AS n FROM orders__lines")).toEqual([{ n: 0n }]);
    expect(await query("SELECT id FROM orders")).toEqual([{ id: 5n }]);
  });
});

describe("nested: tables and the table of invalid records", () => {
  it("a field named `invalid` cannot be a child table (its rows would be dropped with `<table>__invalid`)", async () => {
    await expect(nested("replace", [{ id: 1, invalid: [{ x: 1 }] }])).rejects.toThrow(
      /field `invalid` would make child table `orders__invalid` \(nested: tables\), the name of the table of invalid records/,
    );
  });
});

describe("duckdb: an earlier run's child table, a kept DATE column", () => {
  it("a child table an earlier run made is not forced on a field the schema now declares otherwise", async () => {
    await nested("merge", [{ id: 1, tags: [{ t: "a" }] }]);
    const schema = {
      type: "object",
      properties: { id: { type: "integer" }, tags: { type: "array", items: { type: "string" } } },
    };
    await nested("merge", [{ id: 2, tags: ["x", "y"] }], { schema });
    expect(await query("SELECT id, CAST(tags AS VARCHAR) AS tags FROM orders WHERE id = 2")).toEqual([
      { id: 2n, tags: '["x","y"]' },
    ]);
  });

  it("append: a date-time into a DATE column is refused unless it is a midnight (its time would be lost)", async () => {
    const dates = {
      type: "object",
      properties: { id: { type: "integer" }, day: { type: "string", format: "date" } },
    };
    const times = {
      type: "object",
      properties: { id: { type: "integer" }, day: { type: "string", format: "date-time" } },
    };
    const columns = ["id", "day"];
    await runWriter("duckdb", "replace", file, [{ id: 1, day: "2024-03-04" }], { schema: dates, columns });
    await expect(
      runWriter("duckdb", "append", file, [{ id: 2, day: "2024-03-05T10:11:12Z" }], {
        schema: times,
        columns,
      }),
    ).rejects.toThrow(
      /record #1 written: field `day` holds .* \(TIMESTAMP WITH TIME ZONE\), which the DATE column/,
    );
    await runWriter("duckdb", "append", file, [{ id: 3, day: "2024-03-06T00:00:00Z" }], {
      schema: times,
      columns,
    });
    expect(
      (await query("SELECT CAST(day AS VARCHAR) AS day FROM items ORDER BY id")).map((r) => r.day),
    ).toEqual(["2024-03-04", "2024-03-06"]);
  });
});

describe("duckdb merge: a value a later record of its key replaces", () => {
  it("is not checked against the column's type (it is never written)", async () => {
    await runWriter("duckdb", "merge", file, [{ id: 1, v: 1 }], PK);
    await runWriter(
      "duckdb",
      "merge",
      file,
      [
        { id: 1, v: 1.5 },
        { id: 1, v: 2 },
      ],
      PK,
    );
    expect(await rows()).toEqual([{ id: 1n, v: 2n }]);
  });
});
