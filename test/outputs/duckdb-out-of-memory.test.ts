/**
 * Loads that need more than the DuckDB and Parquet outputs' small buffer pool (48 / 64 MB, kept
 * small for the peak RSS of common runs) are tried again at a higher limit (duckdb-engine.ts
 * withMemory) instead of failing: records of hundreds of fields (read_json's buffers grow with
 * them: 170 integer fields failed at 48 MB), and a merge into a table of as many rows (90,000
 * upserts into 90,000 rows failed: "could not allocate block").
 */
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runWriter, tempDir } from "./helpers.js";

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

async function query(file: string, sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(file.endsWith(".duckdb") ? file : ":memory:");
  const conn = await instance.connect();
  try {
    return (await conn.runAndReadAll(sql.replace("FILE", `read_parquet('${file}')`))).getRowsJS();
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

const wide = (fields: number, records: number) =>
  Array.from({ length: records }, (_, r) =>
    Object.fromEntries([["id", r], ...Array.from({ length: fields }, (_, i) => [`f${i}`, r * 1000 + i])]),
  );

describe("loads beyond the outputs' buffer pool", () => {
  it("duckdb: records of 400 fields load at a raised limit, said in the warnings, every value intact", async () => {
    const file = path.join(dir, "w.duckdb");
    const w = await runWriter("duckdb", "replace", file, wide(400, 50));
    expect(w.warnings?.().join("\n")).toMatch(
      /memory limit was raised to \d+ MiB for the load: it ran out of memory at 46 MiB/,
    );
    expect(await query(file, "SELECT count(*), sum(f399), max(f0) FROM items")).toEqual([
      [50n, BigInt(Array.from({ length: 50 }, (_, r) => r * 1000 + 399).reduce((a, b) => a + b, 0)), 49000n],
    ]);
  });

  it("parquet: records of 600 fields load at a raised limit, every value intact", async () => {
    const file = path.join(dir, "w.parquet");
    const w = await runWriter("parquet", "replace", file, wide(600, 50));
    expect(w.warnings?.().join("\n")).toMatch(/memory limit was raised to \d+ MiB for the load/);
    expect(await query(file, "SELECT count(*), max(f599) FROM FILE")).toEqual([[50n, 49599n]]);
  });

  it("duckdb: a merge of 90,000 records into a table of 90,000 commits", async () => {
    const file = path.join(dir, "m.duckdb");
    const rows = (v: string) =>
      Array.from({ length: 90_000 }, (_, i) => ({ id: i, v, s: `text ${i}`, f: i / 7 }));
    const opts = { primaryKey: ["id"] };
    await runWriter("duckdb", "merge", file, rows("first"), opts);
    await runWriter("duckdb", "merge", file, rows("second"), opts);
    expect(await query(file, "SELECT count(*), count(*) FILTER (WHERE v = 'second') FROM items")).toEqual([
      [90_000n, 90_000n],
    ]);
  }, 60_000);
});
