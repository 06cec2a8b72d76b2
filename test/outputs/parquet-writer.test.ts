import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { STAGING_PART_CHARS } from "../../src/outputs/duckdb-stager.js";
import { PARQUET_ROW_GROUP_SIZE } from "../../src/outputs/parquet-writer.js";
import { listDir, runWriter, tempDir } from "./helpers.js";

let dir: string;
let cleanup: () => void;
let file: string;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  file = path.join(dir, "out", "items.parquet");
});
afterEach(() => cleanup());

/** Reads the Parquet file back with DuckDB. */
async function query(sql: string): Promise<Record<string, unknown>[]> {
  const inst = await DuckDBInstance.create(":memory:");
  try {
    const conn = await inst.connect();
    const r = await conn.runAndReadAll(sql.replace("FILE", `read_parquet('${file.replaceAll("'", "''")}')`));
    conn.closeSync();
    return r.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    inst.closeSync();
  }
}
const rows = () => query("SELECT * EXCLUDE (_run_id, _loaded_at) FROM FILE");
const PK = { primaryKey: ["id"] };

describe("parquet", () => {
  it("types from the schema, metadata columns, values intact", async () => {
    const schema = {
      type: "object",
      properties: {
        id: { type: "integer" },
        at: { type: "string", format: "date-time" },
        tags: { type: "array" },
        s: { type: "string" },
      },
    };
    await runWriter(
      "parquet",
      "replace",
      file,
      [{ id: 1, at: "2024-01-01T10:00:00+02:00", tags: [1], s: "a\u0000😀" }],
      {
        schema,
        columns: ["id", "at", "tags", "s"],
      },
    );
    const cols = await query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM FILE)");
    expect(cols.map((c) => [c.column_name, c.column_type])).toEqual([
      ["id", "BIGINT"],
      ["at", "TIMESTAMP WITH TIME ZONE"],
      ["tags", "JSON"],
      ["s", "VARCHAR"],
      ["_run_id", "VARCHAR"],
      ["_loaded_at", "TIMESTAMP WITH TIME ZONE"],
    ]);
    expect(
      await query('SELECT id, epoch_ms("at") AS ms, CAST(tags AS VARCHAR) AS tags, s FROM FILE'),
    ).toEqual([{ id: 1n, ms: BigInt(Date.parse("2024-01-01T08:00:00Z")), tags: "[1]", s: "a\u0000😀" }]);
  });

  it("replace, append and merge rewrite the file; a merged key keeps its place and takes the last record", async () => {
    await runWriter(
      "parquet",
      "replace",
      file,
      [
        { id: 1, v: "a" },
        { id: 2, v: "b" },
      ],
      PK,
    );
    await runWriter("parquet", "append", file, [{ id: 3, v: "c" }], PK);
    expect(await rows()).toEqual([
      { id: 1n, v: "a" },
      { id: 2n, v: "b" },
      { id: 3n, v: "c" },
    ]);
    const w = await runWriter(
      "parquet",
      "merge",
      file,
      [
        { id: 2, v: "B1" },
        { id: 4, v: "d", x: true },
        { id: 2, v: "B2" },
      ],
      PK,
    );
    expect(w.duplicates?.()).toBe(1);
    expect(await rows()).toEqual([
      { id: 1n, v: "a", x: null },
      { id: 2n, v: "B2", x: null },
      { id: 3n, v: "c", x: null },
      { id: 4n, v: "d", x: true },
    ]);
    await runWriter("parquet", "replace", file, [{ id: 9, v: "z" }], PK);
    expect(await rows()).toEqual([{ id: 9n, v: "z" }]);
    expect(listDir(path.dirname(file))).toEqual(["items.parquet"]);
  });

  it("a type change is reported and not applied; drift: fail refuses the commit", async () => {
    await runWriter("parquet", "replace", file, [{ id: 1, n: 5 }]);
    const w = await runWriter("parquet", "append", file, [{ id: 2, n: "6" }]);
    expect(w.warnings?.().join("\n")).toMatch(/column type changed \(`n` is BIGINT, this run's is VARCHAR\)/);
    expect(await rows()).toEqual([
      { id: 1n, n: 5n },
      { id: 2n, n: 6n },
    ]);
    await expect(
      runWriter("parquet", "append", file, [{ id: 3, n: "x" }], { drift: "fail" }),
    ).rejects.toThrow(/drift: fail/);
    expect(await rows()).toHaveLength(2);
  });

  it("append keeps a column's type: a value it cannot hold exactly fails naming the record", async () => {
    await runWriter("parquet", "replace", file, [{ id: 1, v: 1, w: "a" }]);
    await expect(runWriter("parquet", "append", file, [{ id: 2, v: 2.5, w: "b" }])).rejects.toThrow(
      /record #1 written: field `v` holds 2\.5 \(DOUBLE\), which the BIGINT column of .* cannot hold exactly/,
    );
    await runWriter("parquet", "append", file, [
      { id: 3, v: 3, w: 7 },
      { id: 4, v: 4, w: "8" },
    ]);
    expect(await rows()).toEqual([
      { id: 1n, v: 1n, w: "a" },
      { id: 3n, v: 3n, w: "7" },
      { id: 4n, v: 4n, w: "8" },
    ]);
  });

  it("many long strings: the copy's memory limit is raised for them (and said), the values intact", async () => {
    // 100 strings of 1 MB: at the engine's 64 MB the copy failed ("could not allocate block").
    const long = (i: number) => `${"z".repeat(1024 * 1024)}${i}`;
    const records = Array.from({ length: 100 }, (_, i) => ({ id: i, text: long(i) }));
    const w = await runWriter("parquet", "replace", file, records);
    expect(w.warnings?.().join("\n")).toMatch(/memory limit was raised to \d+ MiB for the load/);
    const got = await query("SELECT count(*) AS n, sum(length(text)) AS chars FROM FILE");
    expect(got).toEqual([{ n: 100n, chars: BigInt(records.reduce((n, r) => n + r.text.length, 0)) }]);
  });

  it("an aborted run leaves the previous file and no temporary file", async () => {
    await runWriter("parquet", "replace", file, [{ id: 1 }]);
    await runWriter("parquet", "replace", file, [{ id: 2 }], { abort: true });
    expect(await rows()).toEqual([{ id: 1n }]);
    expect(listDir(path.dirname(file))).toEqual(["items.parquet"]);
  });

  it("row groups of about PARQUET_ROW_GROUP_SIZE rows (bounded memory), in the run's order, on replace and on append", async () => {
    const n = 2 * PARQUET_ROW_GROUP_SIZE + 500;
    const records = Array.from({ length: n }, (_, i) => ({ id: i, v: `r${i}` }));
    const groups = async () =>
      (
        await query(
          "SELECT row_group_id AS g, any_value(row_group_num_rows) AS n FROM parquet_metadata('FILE') GROUP BY g ORDER BY g".replace(
            "'FILE'",
            `'${file.replaceAll("'", "''")}'`,
          ),
        )
      ).map((g) => Number(g.n));
    // The staged records are read from files of STAGING_PART_CHARS (a row group ends at the
    // end of a file's rows past PARQUET_ROW_GROUP_SIZE): at most one file's rows more.
    const perFile = Math.ceil(STAGING_PART_CHARS / '{"__pl_row":0,"id":0,"v":"r0"}\n'.length) + 1;
    const bounded = (sizes: number[], total: number) => {
      expect(sizes.length).toBeGreaterThanOrEqual(2);
      expect(sizes.reduce((a, b) => a + b)).toBe(total);
      for (const size of sizes) expect(size).toBeLessThanOrEqual(PARQUET_ROW_GROUP_SIZE + perFile);
    };
    await runWriter("parquet", "replace", file, records);
    bounded(await groups(), n);
    await runWriter("parquet", "append", file, [{ id: n, v: "last" }]);
    bounded(await groups(), n + 1);
    const ids = await query("SELECT id FROM FILE");
    expect(ids.every((r, i) => r.id === BigInt(i))).toBe(true);
    expect(ids).toHaveLength(n + 1);
  });
});
