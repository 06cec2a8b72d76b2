/**
 * The postgres output against a real PostgreSQL server (the test run's throwaway cluster,
 * test/pg/global-setup.ts; one database for this file).
 */
import { createHash } from "node:crypto";
import { beforeAll, describe, expect, inject, it } from "vitest";
import type { OutputPlan } from "../../src/compile/plan.js";
import { openWriter } from "../../src/outputs/registry.js";
import type { CommitState, WriterContext } from "../../src/outputs/writer.js";
import type { Row } from "../../src/records/shape.js";
import { Redactor } from "../../src/shared/secrets.js";
import { freshDatabase, query, tables } from "../pg/helpers.js";

let url: string;
beforeAll(async () => {
  url = await freshDatabase("pg_writer");
});

let runs = 0;
function plan(
  mode: OutputPlan["mode"],
  table: string,
  extra: Partial<OutputPlan["table"]> = {},
  u = url,
): OutputPlan {
  return {
    format: "postgres",
    mode,
    path: "/tmp/unused",
    postgres: { url: u, schema: "public" },
    table: { name: table, metadataColumns: true, nested: "json", ...extra },
    stateKey: "p",
  };
}

async function load(
  output: OutputPlan,
  records: Row[],
  ctx: Partial<WriterContext> = {},
  opts: { state?: CommitState; abort?: boolean } = {},
) {
  const runId = `R${++runs}`;
  const writer = await openWriter(output, {
    runId,
    stream: "items",
    columns: null,
    primaryKey: null,
    ...ctx,
  });
  try {
    for (const r of records) {
      const p = writer.write(r);
      if (p) await p;
    }
    if (opts.abort) {
      await writer.abort();
      return { writer, runId };
    }
    await writer.commit(opts.state ?? null);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return { writer, runId };
}

const SCHEMA = {
  type: "object",
  properties: {
    id: { type: "integer" },
    name: { type: ["string", "null"] },
    price: { type: "number" },
    ok: { type: "boolean" },
    at: { type: "string", format: "date-time" },
    day: { type: "string", format: "date" },
    tags: { type: "array", items: { type: "string" } },
  },
};
const schemaCtx = { schema: SCHEMA, columns: Object.keys(SCHEMA.properties) };
const rec = (id: number, name: string, extra: Row = {}): Row => ({
  id,
  name,
  price: id + 0.5,
  ok: id % 2 === 0,
  at: "2024-05-01T10:00:00Z",
  day: "2024-05-01",
  tags: ["a"],
  ...extra,
});

async function columnTypes(table: string): Promise<Record<string, string>> {
  const rows = await query<{ attname: string; type: string }>(
    url,
    "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    [`"public"."${table}"`],
  );
  return Object.fromEntries(rows.map((r) => [r.attname, r.type]));
}

describe("postgres: types and modes", () => {
  it("types come from the schema: date-time → timestamptz, date, bigint, double, boolean, jsonb; metadata columns", async () => {
    await load(plan("replace", "typed"), [rec(1, "a"), rec(2, "b")], schemaCtx);
    expect(await columnTypes("typed")).toEqual({
      id: "bigint",
      name: "text",
      price: "double precision",
      ok: "boolean",
      at: "timestamp with time zone",
      day: "date",
      tags: "jsonb",
      _run_id: "text",
      _loaded_at: "timestamp with time zone",
    });
    const rows = await query(
      url,
      `SELECT id, at = '2024-05-01T10:00:00Z'::timestamptz AS same, tags FROM typed ORDER BY id`,
    );
    expect(rows).toEqual([
      { id: "1", same: true, tags: ["a"] },
      { id: "2", same: true, tags: ["a"] },
    ]);
    expect(await tables(url)).toEqual(["_pipelines_state", "typed"]);
  });

  it("without a schema, types come from the values seen", async () => {
    await load(plan("replace", "inferred"), [
      { id: 1, n: 1, x: "s", b: true, o: { a: 1 }, nul: null },
      { id: 2, n: 1.5, x: "t", b: false, o: [1], nul: null },
    ]);
    expect(await columnTypes("inferred")).toMatchObject({
      id: "bigint",
      n: "double precision",
      x: "text",
      b: "boolean",
      o: "jsonb",
      nul: "jsonb",
    });
  });

  for (const withSchema of [true, false]) {
    const ctx = withSchema ? schemaCtx : {};
    const label = withSchema ? "with a schema" : "without a schema";
    it(`replace swaps, append inserts, merge upserts (last record of a key wins) — ${label}`, async () => {
      const t = `modes_${withSchema ? "s" : "n"}`;
      await load(plan("replace", t), [rec(1, "a"), rec(2, "b")], ctx);
      await load(plan("replace", t), [rec(3, "c")], ctx);
      expect(await query(url, `SELECT id, name FROM "${t}" ORDER BY id`)).toEqual([{ id: "3", name: "c" }]);
      await load(plan("append", t), [rec(4, "d")], ctx);
      expect(await query(url, `SELECT id, name FROM "${t}" ORDER BY id`)).toEqual([
        { id: "3", name: "c" },
        { id: "4", name: "d" },
      ]);
      const { writer } = await load(plan("merge", t), [rec(4, "d2"), rec(5, "e"), rec(4, "d3")], {
        ...ctx,
        primaryKey: ["id"],
      });
      expect(writer.duplicates?.()).toBe(1);
      expect(await query(url, `SELECT id, name FROM "${t}" ORDER BY id`)).toEqual([
        { id: "3", name: "c" },
        { id: "4", name: "d3" },
        { id: "5", name: "e" },
      ]);
      const pk = await query(url, "SELECT contype FROM pg_constraint WHERE conrelid = to_regclass($1)", [
        `"${t}"`,
      ]);
      expect(pk).toEqual([{ contype: "p" }]);
      expect((await tables(url)).filter((n) => n.startsWith("_staging"))).toEqual([]);
    });
  }

  it("append and merge stage in UNLOGGED tables, yet every target is a logged (crash-safe) table", async () => {
    const persistence = async (table: string) =>
      (
        await query<{ p: string }>(url, "SELECT relpersistence AS p FROM pg_class WHERE relname = $1", [
          table,
        ])
      )[0]?.p;
    const pk = { primaryKey: ["id"] };
    await load(plan("merge", "persist_new"), [rec(1, "a")], pk);
    await load(plan("merge", "persist_new"), [rec(2, "b")], pk);
    await load(plan("replace", "persist_rep"), [rec(1, "a")], pk);
    await load(plan("append", "persist_app"), [rec(1, "a")], pk);
    await load(plan("append", "persist_app"), [rec(2, "b")], pk);
    for (const t of ["persist_new", "persist_app", "persist_rep"]) expect(await persistence(t), t).toBe("p");
  });

  it("an aborted run leaves the previous table exactly as it was and no staging table", async () => {
    await load(plan("replace", "kept"), [rec(1, "a")], schemaCtx);
    const before = await query(url, "SELECT * FROM kept");
    await load(plan("replace", "kept"), [rec(2, "b")], schemaCtx, { abort: true });
    expect(await query(url, "SELECT * FROM kept")).toEqual(before);
    expect((await tables(url)).filter((n) => n.startsWith("_staging"))).toEqual([]);
  });

  it("the state is written in the commit's transaction and read back at open", async () => {
    const { writer } = await load(plan("append", "stateful"), [rec(1, "a")], schemaCtx, {
      state: { cursor: "2024-05-02" },
    });
    expect(writer.savedState?.()).toBeNull();
    const again = await openWriter(plan("append", "stateful"), {
      runId: "R-state",
      stream: "items",
      columns: null,
      primaryKey: null,
    });
    expect(again.savedState?.()?.cursor).toBe("2024-05-02");
    await again.abort();
  });
});

describe("postgres: unusual values and identifiers", () => {
  it("big integers, __proto__ keys, 1 MB strings, emoji, tabs and backslashes arrive intact", async () => {
    const big = 2n ** 63n - 1n;
    const proto: Row = { id: 1, big, s: "é😀\t\\n\nx", long: "x".repeat(1024 * 1024) };
    Object.defineProperty(proto, "__proto__", {
      value: { a: 1 },
      enumerable: true,
      writable: true,
      configurable: true,
    });
    proto.obj = { n: 12345678901234567890n };
    await load(plan("replace", "odd"), [proto]);
    const [row] = await query<Record<string, unknown>>(
      url,
      `SELECT big::text AS big, s, length(long) AS len, "__proto__"::text AS proto, obj::text AS obj FROM odd`,
    );
    expect(row).toEqual({
      big: big.toString(),
      s: "é😀\t\\n\nx",
      len: 1024 * 1024,
      proto: '{"a": 1}',
      obj: '{"n": 12345678901234567890}',
    });
  });

  it("fields named like what every object inherits (`constructor`, `toString`) are read as own fields: a record without them gets NULL", async () => {
    const with_ = { id: 1, constructor: "c1", toString: "t1", hasOwnProperty: "h1" };
    await load(plan("replace", "inherited"), [with_, { id: 2 }]);
    const rows = await query(
      url,
      'SELECT id::int AS id, "constructor" AS c, "toString" AS t, "hasOwnProperty" AS h FROM inherited ORDER BY id',
    );
    expect(rows).toEqual([
      { id: 1, c: "c1", t: "t1", h: "h1" },
      { id: 2, c: null, t: null, h: null },
    ]);
  });

  it("a JSON column's string holding the text \\u0000 (a backslash, not a NUL) arrives intact; a NUL inside a JSON value is refused", async () => {
    const text = { id: 1, obj: { note: "\\u0000 is how JSON writes NUL", path: "C:\\u0000dir\\" } };
    await load(plan("replace", "json_text"), [text]);
    const [row] = await query<{ obj: unknown }>(url, "SELECT obj FROM json_text");
    expect(row.obj).toEqual(text.obj);
    await expect(load(plan("replace", "json_nul"), [{ id: 1, obj: { note: "a\u0000b" } }])).rejects.toThrow(
      /record #1, field "obj": holds a NUL character/,
    );
  });

  it("a string with a NUL character is refused with an error naming the record and field; nothing committed", async () => {
    await expect(
      load(plan("replace", "nul"), [rec(1, "ok"), rec(2, "bad\u0000")], { ...schemaCtx, primaryKey: ["id"] }),
    ).rejects.toThrow(/record #2 \(id=2\), field "name": holds a NUL character/);
    expect(await tables(url)).not.toContain("nul");
    expect((await tables(url)).filter((n) => n.startsWith("_staging"))).toEqual([]);
  });

  it("rows across many COPY chunks and batches all arrive intact; a bad record after several chunks commits nothing in any mode", async () => {
    // ~600 bytes a row: 5,000 rows are several 64 KiB COPY chunks and five batches of 1,000.
    const pad = "p".repeat(600);
    const many = Array.from({ length: 5000 }, (_, i) => rec(i, `${pad}${i}`));
    await load(plan("merge", "chunks"), many, { ...schemaCtx, primaryKey: ["id"] });
    const summary = async () =>
      (
        await query<{ n: string; digest: string }>(
          url,
          "SELECT count(*) AS n, md5(string_agg(id || ':' || name, ',' ORDER BY id)) AS digest FROM chunks",
        )
      )[0];
    const before = await summary();
    const text = many.map((r) => `${r.id}:${r.name}`).join(",");
    expect(before).toEqual({ n: "5000", digest: createHash("md5").update(text).digest("hex") });
    for (const mode of ["append", "merge", "replace"] as const) {
      const bad = many.map((r, i) => (i === 4321 ? { ...r, name: "bad\u0000" } : { ...r, name: "changed" }));
      await expect(load(plan(mode, "chunks"), bad, { ...schemaCtx, primaryKey: ["id"] })).rejects.toThrow(
        /record #4322 \(id=4321\), field "name": holds a NUL character/,
      );
      expect(await summary()).toEqual(before);
      expect((await tables(url)).filter((n) => n.startsWith("_staging"))).toEqual([]);
    }
  });

  it("identifiers with quotes, spaces, dots and reserved words are quoted; over 63 bytes are refused", async () => {
    const name = 'we"ird. table select';
    await load(plan("replace", name), [{ 'a "b"': 1, "c.d": 2, select: 3, "with space": 4 }]);
    expect(
      await query(url, `SELECT "a ""b""" AS a, "c.d" AS c, "select" AS s FROM "we""ird. table select"`),
    ).toEqual([{ a: "1", c: "2", s: "3" }]);
    await expect(load(plan("replace", "t".repeat(64)), [{ a: 1 }])).rejects.toThrow(/64 bytes long/);
    await expect(load(plan("replace", "longcol"), [{ ["c".repeat(70)]: 1 }])).rejects.toThrow(
      /70 bytes long/,
    );
  });
});

describe("postgres: evolution, invalid records, nested tables", () => {
  it("a new field becomes a nullable column (reported); a changed type is reported and drift: fail commits nothing", async () => {
    await load(plan("append", "evolve"), [{ id: 1, a: "x" }]);
    const { writer } = await load(plan("append", "evolve"), [{ id: 2, a: "y", b: 5 }]);
    expect(writer.warnings?.()).toEqual(['added column "b" (bigint) to table evolve']);
    expect(await query(url, "SELECT id, a, b FROM evolve ORDER BY id")).toEqual([
      { id: "1", a: "x", b: null },
      { id: "2", a: "y", b: "5" },
    ]);
    const schema = { type: "object", properties: { id: { type: "string" }, a: { type: "string" } } };
    const ctx = { schema, columns: ["id", "a"], drift: "fail" as const };
    await expect(load(plan("append", "evolve"), [{ id: "3", a: "z" }], ctx)).rejects.toThrow(
      /column "id" of table evolve is bigint, but the schema now says text/,
    );
    expect(await query(url, "SELECT count(*)::int AS n FROM evolve")).toEqual([{ n: 2 }]);
  });

  it("invalid records go to <table>__invalid, replaced each run", async () => {
    const output = plan("replace", "inv");
    const w = await openWriter(output, { runId: "R-inv", stream: "items", columns: null, primaryKey: null });
    await w.write({ id: 1 });
    await w.writeInvalid?.({
      record_id: "7",
      errors: [{ path: "/id", message: "bad" }],
      record: { id: "x" },
    });
    await w.commit(null);
    expect(await query(url, "SELECT record_id, record, errors, _run_id FROM inv__invalid")).toEqual([
      { record_id: "7", record: { id: "x" }, errors: [{ path: "/id", message: "bad" }], _run_id: "R-inv" },
    ]);
    await load(output, [{ id: 2 }]);
    expect(await tables(url)).not.toContain("inv__invalid");
  });

  it("nested: tables makes child tables keyed by the parent's primary key and _index, kept consistent on merge", async () => {
    const output = plan("merge", "orders", { nested: "tables" });
    const ctx = { primaryKey: ["id"] };
    await load(
      output,
      [
        {
          id: 1,
          lines: [
            { sku: "a", q: 1 },
            { sku: "b", q: 2 },
          ],
        },
        { id: 2, lines: [{ sku: "c", q: 3 }] },
      ],
      ctx,
    );
    await load(
      output,
      [
        { id: 1, lines: [{ sku: "z", q: 9 }] },
        { id: 1, lines: [{ sku: "y", q: 8 }] },
      ],
      ctx,
    );
    expect(await query(url, `SELECT id, _index, sku, q FROM orders__lines ORDER BY id, _index`)).toEqual([
      { id: "1", _index: "0", sku: "y", q: "8" },
      { id: "2", _index: "0", sku: "c", q: "3" },
    ]);
    expect(await query(url, "SELECT id FROM orders ORDER BY id")).toEqual([{ id: "1" }, { id: "2" }]);
    expect(Object.keys(await columnTypes("orders"))).not.toContain("lines");
  });

  it("without a schema, a text column the first values typed refuses a later value of another type, naming it", async () => {
    const records = [...Array.from({ length: 1000 }, (_, i) => ({ id: i, s: `x${i}` })), { id: 1000, s: 7 }];
    await expect(load(plan("replace", "late_types"), records)).rejects.toThrow(
      /#1001.*a number \(7\) cannot go into a text column: the value is refused rather than changed \(its type came from the run's first values/,
    );
    expect(await tables(url)).not.toContain("late_types");
    // A text column the table already has takes any value as its text (the table's type is kept).
    await load(plan("replace", "late_types"), [{ id: 1, s: "a" }]);
    await load(plan("append", "late_types"), [
      { id: 2, s: 42 },
      { id: 3, s: { x: [1, 2] } },
    ]);
    expect(await query(url, "SELECT s FROM late_types ORDER BY id")).toEqual([
      { s: "a" },
      { s: "42" },
      { s: '{"x":[1,2]}' },
    ]);
  });

  it("nested: tables without a schema: a merged parent whose array is now empty or null loses its child rows; a replace empties them", async () => {
    const ctx = { primaryKey: ["id"] };
    const first = [
      { id: 1, items: [{ sku: "a" }, { sku: "b" }] },
      { id: 2, items: [{ sku: "c" }] },
      { id: 3, items: [{ sku: "d" }] },
    ];
    const merge = plan("merge", "ord_ns", { nested: "tables" });
    await load(merge, first, ctx);
    const { writer } = await load(
      merge,
      [
        { id: 1, items: [] },
        { id: 2, items: null },
      ],
      ctx,
    );
    expect(await query(url, "SELECT id, sku FROM ord_ns__items ORDER BY id, _index")).toEqual([
      { id: "3", sku: "d" },
    ]);
    expect(Object.keys(await columnTypes("ord_ns"))).not.toContain("items");
    expect(writer.warnings?.().join("\n") ?? "").not.toMatch(/items/);
    const replace = plan("replace", "ord_ns", { nested: "tables" });
    await load(replace, [{ id: 7, items: [] }, { id: 8 }], ctx);
    expect(await query(url, "SELECT count(*)::int AS n FROM ord_ns__items")).toEqual([{ n: 0 }]);
  });

  it("nested: tables refuses an item with its own field named like a column the child table sets (the parent's key, _index): never overwritten", async () => {
    const output = plan("merge", "carts", { nested: "tables" });
    for (const item of [
      { sku: "a", _index: 7 },
      { sku: "b", id: 99 },
    ]) {
      const err = await load(output, [{ id: 1, lines: [item] }], { primaryKey: ["id"] }).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(
        /the items of `lines` have a field `(_index|id)`, a column child table carts__lines sets itself/,
      );
    }
    expect(await tables(url)).not.toContain("carts__lines");
  });
});

describe("postgres: connection errors are clear and never show the password", () => {
  const redactor = () => new Redactor([inject("pgPasswordUrl"), "s3cret-Pa55word"]);
  it("authentication failed", async () => {
    const bad = inject("pgPasswordUrl").replace("Pa55word", "Wrong123");
    const r = new Redactor([bad, "s3cret-Wrong123"]);
    const err = await openWriter(plan("replace", "x", {}, bad), {
      runId: "R-auth",
      stream: "items",
      columns: null,
      primaryKey: null,
      redactor: r,
    }).then(
      () => new Error("connected"),
      (e: Error) => e,
    );
    expect(err.message).toMatch(
      /cannot connect to PostgreSQL at postgres:\/\/pw_user@127\.0\.0\.1:\d+\/postgres: password authentication failed/,
    );
    expect(err.message).not.toContain("Wrong123");
  });
  it("connection refused and a bad database name", async () => {
    const u = new URL(inject("pgPasswordUrl"));
    const refused = `postgres://pw_user:s3cret-Pa55word@127.0.0.1:1/postgres`;
    const e1 = await openWriter(plan("replace", "x", {}, refused), {
      runId: "R-ref",
      stream: "items",
      columns: null,
      primaryKey: null,
      redactor: redactor(),
    }).then(
      () => new Error("connected"),
      (e: Error) => e,
    );
    expect(e1.message).toMatch(/connection refused/);
    expect(e1.message).not.toContain("s3cret");
    u.pathname = "/no_such_db";
    const e2 = await openWriter(plan("replace", "x", {}, u.toString()), {
      runId: "R-db",
      stream: "items",
      columns: null,
      primaryKey: null,
      redactor: redactor(),
    }).then(
      () => new Error("connected"),
      (e: Error) => e,
    );
    expect(e2.message).toMatch(/the database does not exist/);
    expect(e2.message).not.toContain("s3cret");
  });
});
