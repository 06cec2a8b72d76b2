import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openWriter } from "../../src/outputs/registry.js";
import type { Row } from "../../src/records/shape.js";
import { runWriter, tempDir } from "./helpers.js";

let dir: string;
let cleanup: () => void;
let file: string;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  file = path.join(dir, "out", "pipeline.db");
});
afterEach(() => cleanup());

function query<T = Row>(sql: string, ...params: unknown[]): T[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** A table's rows in rowid order (the order they were stored in). */
const rows = (table = "items") => query(`SELECT * FROM "${table}" ORDER BY rowid`);
const columnTypes = (table = "items") =>
  Object.fromEntries(
    query<{ name: string; type: string }>("SELECT name, type FROM pragma_table_info(?)", table).map((c) => [
      c.name,
      c.type,
    ]),
  );
const tables = () =>
  query<{ name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").map(
    (t) => t.name,
  );

const r = (id: number, name: string, extra: Row = {}): Row => ({ id, name, ...extra });
const PK = { primaryKey: ["id"] };

describe("sqlite columns", () => {
  it("types come from the schema; booleans as 0/1, arrays and objects as JSON text", async () => {
    const schema = {
      type: "object",
      properties: {
        id: { type: "integer" },
        price: { type: "number" },
        active: { type: "boolean" },
        name: { type: ["string", "null"] },
        tags: { type: "array", items: { type: "string" } },
        meta: { type: "object" },
        either: { anyOf: [{ type: "integer" }, { type: "null" }] },
        mixed: { type: ["integer", "string"] },
      },
    };
    await runWriter(
      "sqlite",
      "replace",
      file,
      [
        {
          id: 1,
          price: 9.5,
          active: true,
          name: "a",
          tags: ["x", "y"],
          meta: { k: [1] },
          either: 3,
          mixed: "m",
        },
        { id: 2, price: 3, active: false, name: null, tags: [], meta: {}, either: null, mixed: 4 },
      ],
      { columns: Object.keys(schema.properties), schema },
    );
    expect(columnTypes()).toEqual({
      id: "INTEGER",
      price: "REAL",
      active: "INTEGER",
      name: "TEXT",
      tags: "TEXT",
      meta: "TEXT",
      either: "INTEGER",
      mixed: "TEXT",
    });
    expect(rows()).toEqual([
      {
        id: 1,
        price: 9.5,
        active: 1,
        name: "a",
        tags: '["x","y"]',
        meta: '{"k":[1]}',
        either: 3,
        mixed: "m",
      },
      { id: 2, price: 3, active: 0, name: null, tags: "[]", meta: "{}", either: null, mixed: "4" },
    ]);
    expect(query("SELECT typeof(price) AS t FROM items WHERE id = 2")).toEqual([{ t: "real" }]);
    expect(query("SELECT typeof(id) AS t, typeof(mixed) AS m FROM items WHERE id = 2")).toEqual([
      { t: "integer", m: "text" },
    ]);
  });

  it("without a schema: types from the first records' values; all-null columns have no type", async () => {
    await runWriter("sqlite", "replace", file, [
      { id: 1, n: null, s: "x", f: 1.5, b: true, o: { a: 1 } },
      { id: 2, n: null, s: "y", f: 2, b: false, o: [1] },
    ]);
    expect(columnTypes()).toEqual({ id: "INTEGER", n: "", s: "TEXT", f: "REAL", b: "INTEGER", o: "TEXT" });
    expect(rows()).toEqual([
      { id: 1, n: null, s: "x", f: 1.5, b: 1, o: '{"a":1}' },
      { id: 2, n: null, s: "y", f: 2, b: 0, o: "[1]" },
    ]);
  });

  it("schema columns without types (no schema given) keep their order and take types from values", async () => {
    await runWriter("sqlite", "replace", file, [{ b: "x", a: 1 }], { columns: ["a", "b", "c"] });
    expect(columnTypes()).toEqual({ a: "INTEGER", b: "TEXT", c: "" });
  });

  it("an untyped column stores values as they come: integers stay integers", async () => {
    const records: Row[] = [];
    for (let i = 0; i < 1000; i++) records.push({ id: i, u: null }); // the whole first batch: no type to infer
    records.push({ id: 1000, u: 7 }, { id: 1001, u: 2.5 }, { id: 1002, u: "s" });
    await runWriter("sqlite", "replace", file, records);
    expect(columnTypes()).toEqual({ id: "INTEGER", u: "" });
    expect(query("SELECT u, typeof(u) AS t FROM items WHERE id >= 999 ORDER BY id")).toEqual([
      { u: null, t: "null" },
      { u: 7, t: "integer" },
      { u: 2.5, t: "real" },
      { u: "s", t: "text" },
    ]);
  });

  it("new fields mid-stream (in a later batch) are added with ALTER TABLE, earlier rows NULL", async () => {
    const records: Row[] = [];
    for (let i = 0; i < 2500; i++)
      records.push(i < 1500 ? r(i, `n${i}`) : r(i, `n${i}`, { late: i, later: i % 2 === 0 }));
    records.push({ id: 2500, last: "L" });
    await runWriter("sqlite", "replace", file, records);
    expect(columnTypes()).toEqual({
      id: "INTEGER",
      name: "TEXT",
      late: "INTEGER",
      later: "INTEGER",
      last: "TEXT",
    });
    const got = rows();
    expect(got).toHaveLength(2501);
    expect(got[0]).toEqual({ id: 0, name: "n0", late: null, later: null, last: null });
    expect(got[1501]).toEqual({ id: 1501, name: "n1501", late: 1501, later: 0, last: null });
    expect(got[2500]).toEqual({ id: 2500, name: null, late: null, later: null, last: "L" });
  });

  it("fields that differ only in case fail the stream with a clear message", async () => {
    await expect(runWriter("sqlite", "replace", file, [{ Name: "a", name: "b" }])).rejects.toThrow(
      /differ only in case/,
    );
  });
});

describe("sqlite rows inserted several at a time (no primary key)", () => {
  it("every row stored, in order, with its values and types: batches that do not divide by the group, a column added mid-batch", async () => {
    const records: Row[] = Array.from({ length: 2345 }, (_, i) => ({
      id: i,
      name: i % 7 === 0 ? null : `n${i}`,
      amount: i % 3 ? i / 4 : i,
      ok: i % 2 === 0,
      tags: i % 5 ? ["a", i] : [],
      ...(i >= 1210 ? { late: `l${i}` } : {}),
      ...(i % 100 === 99 ? { rare: i } : {}),
    }));
    await runWriter("sqlite", "replace", file, records);
    const got = rows();
    expect(got.length).toBe(2345);
    const expected = records.map((r) => ({
      id: r.id,
      name: r.name,
      amount: r.amount,
      ok: r.ok ? 1 : 0,
      tags: JSON.stringify(r.tags),
      late: r.late ?? null,
      rare: r.rare ?? null,
    }));
    expect(got).toEqual(expected);
  });

  it("a table of 1,000 columns (fewer rows per statement: SQLite's parameter limit)", async () => {
    const records: Row[] = Array.from({ length: 130 }, (_, i) =>
      Object.fromEntries(Array.from({ length: 1000 }, (_, c) => [`c${c}`, c === 0 ? i : `${i}.${c}`])),
    );
    await runWriter("sqlite", "replace", file, records);
    const got = rows();
    expect(got.length).toBe(130);
    expect(got.map((r) => r.c0)).toEqual(records.map((r) => r.c0));
    expect(got[129].c999).toBe("129.999");
    expect(got[77].c500).toBe("77.500");
  });

  it("a value SQLite cannot hold is refused naming its record, inside a group of rows", async () => {
    const records: Row[] = Array.from({ length: 200 }, (_, i) => ({
      id: i,
      s: i === 123 ? "bad \ud800" : `s${i}`,
    }));
    await expect(runWriter("sqlite", "replace", file, records)).rejects.toThrow(/record #124, field "s"/);
  });
});

describe("sqlite modes", () => {
  it("replace: the table holds exactly the run's rows; no staging table is left", async () => {
    await runWriter("sqlite", "replace", file, [r(1, "a"), r(2, "b")]);
    await runWriter("sqlite", "replace", file, [r(3, "c")]);
    expect(rows()).toEqual([r(3, "c")]);
    expect(tables()).toEqual(["items"]);
  });

  it("replace with no record empties the table", async () => {
    await runWriter("sqlite", "replace", file, [r(1, "a")]);
    await runWriter("sqlite", "replace", file, []);
    expect(rows()).toEqual([]);
  });

  it("append: old rows, then the new ones; new columns added to the table", async () => {
    await runWriter("sqlite", "append", file, [r(1, "a"), r(2, "b")], PK);
    await runWriter("sqlite", "append", file, [r(1, "a again", { extra: 1.5 })], PK);
    expect(rows()).toEqual([
      { id: 1, name: "a", extra: null },
      { id: 2, name: "b", extra: null },
      { id: 1, name: "a again", extra: 1.5 },
    ]);
    expect(tables()).toEqual(["items"]);
  });

  it("merge: updated in place, new keys appended, a new record replaces the row whole; idempotent", async () => {
    await runWriter(
      "sqlite",
      "merge",
      file,
      [r(1, "a", { x: 1 }), r(2, "b", { x: 2 }), r(3, "c", { x: 3 })],
      PK,
    );
    await runWriter("sqlite", "merge", file, [r(4, "d", { y: "new" }), r(2, "B")], PK);
    const want = [
      { id: 1, name: "a", x: 1, y: null },
      { id: 2, name: "B", x: null, y: null },
      { id: 3, name: "c", x: 3, y: null },
      { id: 4, name: "d", x: null, y: "new" },
    ];
    expect(rows()).toEqual(want);
    await runWriter("sqlite", "merge", file, [r(4, "d", { y: "new" }), r(2, "B")], PK);
    expect(rows()).toEqual(want);
    expect(query("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'items'")).toEqual([
      { name: "items__pk" },
    ]);
  });

  it("merge into a table made by replace (no unique index yet) with a composite key", async () => {
    const k = { primaryKey: ["org", "id"] };
    await runWriter("sqlite", "replace", file, [
      { org: "x", id: 1, v: 1 },
      { org: "y", id: 1, v: 2 },
    ]);
    await runWriter(
      "sqlite",
      "merge",
      file,
      [
        { org: "y", id: 1, v: 3 },
        { org: "x", id: 2, v: 4 },
      ],
      k,
    );
    expect(rows()).toEqual([
      { org: "x", id: 1, v: 1 },
      { org: "y", id: 1, v: 3 },
      { org: "x", id: 2, v: 4 },
    ]);
  });

  it("merge into a table whose keys are not unique fails and leaves it untouched", async () => {
    await runWriter("sqlite", "append", file, [r(1, "a"), r(1, "a2")]);
    await expect(runWriter("sqlite", "merge", file, [r(1, "A")], PK)).rejects.toThrow(
      /not unique by the primary key \(id\)/,
    );
    expect(rows()).toEqual([r(1, "a"), r(1, "a2")]);
    expect(tables()).toEqual(["items"]);
  });

  it("append after merge keeps every row (the merge's unique index gives way), and merge after that says why it cannot", async () => {
    await runWriter("sqlite", "merge", file, [r(1, "a"), r(2, "b")], PK);
    await runWriter("sqlite", "append", file, [r(3, "c")], PK);
    expect(query("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'items'")).toEqual([
      { name: "items__pk" },
    ]);
    await runWriter("sqlite", "append", file, [r(1, "a again")], PK);
    expect(rows()).toEqual([r(1, "a"), r(2, "b"), r(3, "c"), r(1, "a again")]);
    expect(query("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'items'")).toEqual([]);
    await expect(runWriter("sqlite", "merge", file, [r(2, "B")], PK)).rejects.toThrow(/not unique/);
  });

  it("merge without a primary key is refused when the writer opens", async () => {
    await expect(runWriter("sqlite", "merge", file, [r(1, "a")])).rejects.toThrow(/primary_key/);
  });

  it("a view on the table survives a replace", async () => {
    await runWriter("sqlite", "replace", file, [r(1, "a")]);
    const db = new Database(file);
    db.exec("CREATE VIEW names AS SELECT name FROM items");
    db.close();
    await runWriter("sqlite", "replace", file, [r(2, "b")]);
    expect(query("SELECT * FROM names")).toEqual([{ name: "b" }]);
  });

  it("a stream name that needs quoting is a valid table name", async () => {
    await runWriter("sqlite", "replace", file, [r(1, "a")], { stream: 'my "odd" stream; drop' });
    expect(rows('my ""odd"" stream; drop')).toEqual([r(1, "a")]);
  });
});

describe("sqlite duplicates within a run", () => {
  it.each(["replace", "append", "merge"] as const)(
    "%s: the last record of a key is kept at the first one's place, and counted (across batches)",
    async (mode) => {
      const records: Row[] = [];
      for (let i = 0; i < 2600; i++) records.push(r(i % 1000, `v${i}`));
      const writer = await runWriter("sqlite", mode, file, records, PK);
      expect(writer.duplicates?.()).toBe(1600);
      const got = rows();
      expect(got).toHaveLength(1000);
      expect(got[0]).toEqual(r(0, "v2000"));
      expect(got[599]).toEqual(r(599, "v2599"));
      expect(got[600]).toEqual(r(600, "v1600"));
    },
  );

  it("records with a null key are all kept", async () => {
    const writer = await runWriter("sqlite", "replace", file, [r(1, "a"), { name: "x" }, { name: "y" }], PK);
    expect(writer.duplicates?.()).toBe(0);
    expect(rows()).toHaveLength(3);
  });
});

describe("sqlite atomicity", () => {
  it.each(["replace", "append", "merge"] as const)(
    "%s: abort leaves the previous table exactly as it was and drops the staging table",
    async (mode) => {
      await runWriter("sqlite", "replace", file, [r(1, "a"), r(2, "b")]);
      const before = { rows: rows(), types: columnTypes() };
      const records: Row[] = [];
      for (let i = 0; i < 1500; i++) records.push(r(i, `new${i}`, { extra: i }));
      await runWriter("sqlite", mode, file, records, { ...PK, abort: true });
      expect({ rows: rows(), types: columnTypes() }).toEqual(before);
      expect(tables()).toEqual(["items"]);
    },
  );

  it("a stream that aborts before any table exists leaves no table", async () => {
    await runWriter("sqlite", "replace", file, [r(1, "a")], { abort: true });
    expect(tables()).toEqual([]);
  });

  it("two streams write the same file concurrently, one commits and one aborts", async () => {
    await runWriter("sqlite", "replace", file, [r(0, "old")], { stream: "b" });
    const ctx = (stream: string) => ({ runId: "r1", stream, columns: null, primaryKey: ["id"] });
    const a = await openWriter({ format: "sqlite", mode: "replace", path: file }, ctx("a"));
    const b = await openWriter({ format: "sqlite", mode: "merge", path: file }, ctx("b"));
    const c = await openWriter({ format: "sqlite", mode: "append", path: file }, ctx("c"));
    for (let i = 0; i < 3500; i++) {
      await a.write(r(i, `a${i}`));
      await b.write(r(i, `b${i}`));
      await c.write(r(i, `c${i}`));
      if (i % 700 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all([a.commit(), b.abort(), c.commit()]);
    expect(rows("a")).toHaveLength(3500);
    expect(rows("c")).toHaveLength(3500);
    expect(rows("b")).toEqual([r(0, "old")]);
    expect(tables()).toEqual(["a", "b", "c"]);
  });
});
