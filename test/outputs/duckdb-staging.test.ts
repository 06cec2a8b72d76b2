/**
 * How the DuckDB and Parquet writers stage records (src/outputs/duckdb-stager.ts, Stager): in
 * temporary files of STAGING_PART_CHARS each (read_json makes resident only what a file fills
 * of its buffer).
 */
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { engine, engineSettings, withMemory } from "../../src/outputs/duckdb-engine.js";
import { STAGING_PART_CHARS } from "../../src/outputs/duckdb-stager.js";
import { openWriter } from "../../src/outputs/registry.js";
import { heapInUse, heapReleases, RELEASE_HEAP_EVERY_CHARS } from "../../src/outputs/release-heap.js";
import type { Row } from "../../src/records/shape.js";
import { parseJson } from "../../src/shared/json-text.js";
import { listDir, tempDir } from "./helpers.js";

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

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

let runs = 0;
/** ~100 characters a record: 3 × STAGING_PART_CHARS of them, keys 0…n/2 twice (the last wins). */
function records(): Row[] {
  const n = Math.ceil((3 * STAGING_PART_CHARS) / 100);
  return Array.from({ length: n }, (_, i) => ({
    id: i % Math.ceil(n / 2),
    v: `${i}`.padStart(60, "x"),
    emoji: i % 1000 === 0 ? "🦆\u0000" : null,
  }));
}

describe("DuckDB staging", () => {
  for (const format of ["duckdb", "parquet"] as const)
    it(`${format}: records beyond one staging file are staged in several, all loaded (the last record of a key wins), the files removed`, async () => {
      const file = path.join(dir, "out", format === "duckdb" ? "db.duckdb" : "items.parquet");
      const all = records();
      for (const abort of [true, false]) {
        const writer = await openWriter(
          { format, mode: "merge", path: file },
          { runId: `S${++runs}`, stream: "items", columns: null, primaryKey: ["id"] },
        );
        for (const r of all) {
          const p = writer.write(r);
          if (p) await p;
        }
        const staged = listDir(path.dirname(file)).filter((n) => n.includes(".staging-"));
        expect(staged.length).toBeGreaterThanOrEqual(3);
        if (abort) await writer.abort();
        else await writer.commit();
        expect(listDir(path.dirname(file)).filter((n) => n.startsWith("."))).toEqual([]);
      }
      const target = format === "duckdb" ? file : ":memory:";
      const from = format === "duckdb" ? "items" : `read_parquet('${file.replaceAll("'", "''")}')`;
      const last = new Map<unknown, Row>();
      for (const r of all) last.set(r.id, r);
      const got = await query(target, `SELECT id, v, emoji FROM ${from} ORDER BY id`);
      expect(got.map((r) => ({ ...r, id: Number(r.id) }))).toEqual([...last.values()]);
    });
});

describe("DuckDB staging text", () => {
  for (const format of ["duckdb", "parquet"] as const)
    it(`${format}: a record's JSON text given with it (a JSON lines body's canonical line) is staged as it is, not serialized again`, async () => {
      const file = path.join(dir, "out", format === "duckdb" ? "db.duckdb" : "items.parquet");
      const writer = await openWriter(
        { format, mode: "replace", path: file },
        { runId: `T${++runs}`, stream: "items", columns: null, primaryKey: null },
      );
      // The text differs from the object on purpose: the table shows which one was staged.
      await writer.write({ id: 1, v: "object" }, '{"id":1,"v":"text \\u0000🦆"}');
      await writer.write({ id: 2, v: "object" });
      await writer.write({}, "{}");
      await writer.commit();
      const target = format === "duckdb" ? file : ":memory:";
      const from = format === "duckdb" ? "items" : `read_parquet('${file.replaceAll("'", "''")}')`;
      const got = await query(target, `SELECT id, v FROM ${from}`);
      expect(got.map((r) => ({ id: r.id === null ? null : Number(r.id), v: r.v }))).toEqual([
        { id: 1, v: "text \u0000🦆" },
        { id: 2, v: "object" },
        { id: null, v: null },
      ]);
    });
});

describe("DuckDB settings", () => {
  it("the DuckDB output's instance runs with engineSettings (read back with current_setting)", async () => {
    const file = path.join(dir, "out", "db.duckdb");
    const writer = await openWriter(
      { format: "duckdb", mode: "replace", path: file },
      { runId: `U${++runs}`, stream: "items", columns: null, primaryKey: null },
    );
    // The writer's instance: one per file in the process, so engine() here shares it.
    const eng = await engine(file);
    const conn = await eng.connect();
    try {
      const r = await conn.runAndReadAll(
        "SELECT current_setting('threads'), current_setting('memory_limit'), current_setting('allocator_bulk_deallocation_flush_threshold')",
      );
      expect(r.getRowsJS()[0].map(String)).toEqual(["1", "45.7 MiB", "0 bytes"]);
    } finally {
      conn.closeSync();
      eng.release();
      await writer.abort();
    }
    expect(engineSettings()).toEqual({
      memory_limit: "48MB",
      threads: "1",
      allocator_bulk_deallocation_flush_threshold: "0MB",
    });
    expect(engineSettings("parquet").memory_limit).toBe("64MB");
  });
});

describe("withMemory: a load at a raised memory limit", () => {
  const limit = async (conn: Awaited<ReturnType<Awaited<ReturnType<typeof engine>>["connect"]>>) =>
    String((await conn.runAndReadAll("SELECT current_setting('memory_limit')")).getRowsJS()[0][0]);

  it("raises the instance's limit for the load's long strings, says so, and sets it back — after a failed load too", async () => {
    const eng = await engine(path.join(dir, "out", "m.duckdb"), engineSettings());
    const conn = await eng.connect();
    try {
      const notes: string[] = [];
      // 100 MiB of long strings: 48 MB + 1.25 times them = 179,072,000 bytes, 171 MiB (rounded up).
      const inside = await withMemory(conn, "database", 100 * 1024 * 1024, notes, () => limit(conn));
      expect(inside).toBe("171.0 MiB");
      expect(await limit(conn)).toBe("45.7 MiB");
      expect(notes).toEqual([expect.stringMatching(/memory limit was raised to 171 MiB for the load/)]);
      // A failed load: its error says what the limit was; no note (the run did not load).
      const failed: string[] = [];
      await expect(
        withMemory(conn, "database", 200 * 1024 * 1024, failed, async () => {
          throw new Error("failed to pin block");
        }),
      ).rejects.toThrow(/failed to pin block \(DuckDB's memory limit was raised to 296 MiB/);
      expect(failed).toEqual([]);
      expect(await limit(conn)).toBe("45.7 MiB");
      // Without long strings: nothing changes.
      expect(await withMemory(conn, "database", 0, failed, () => limit(conn))).toBe("45.7 MiB");
      expect(failed).toEqual([]);
    } finally {
      conn.closeSync();
      eng.release();
    }
  });
});

describe("DuckDB staging types", () => {
  it("JSON values stay JSON from read_json to the table (no VARCHAR round trip): a rejected run's table has them as JSON, text intact", async () => {
    const file = path.join(dir, "out", "db.duckdb");
    const writer = await openWriter(
      { format: "duckdb", mode: "replace", path: file },
      { runId: "V1", stream: "items", columns: null, primaryKey: null },
    );
    const meta = '{"big":123456789012345678901234567890,"__proto__":{"x":"\\u0000🦆"},"f":[1.5e300,-0.0]}';
    const text = `{"id":1,"meta":${meta}}`;
    await writer.write(parseJson(text) as Row, text);
    await writer.write({ id: 2, meta: null });
    const where = await writer.keepRejected!();
    expect(where).toContain("items__rejected_V1");
    const got = await query(
      file,
      "SELECT (SELECT data_type FROM duckdb_columns() WHERE table_name = 'items__rejected_V1' AND column_name = 'meta') AS type, CAST(meta AS VARCHAR) AS meta FROM items__rejected_V1 ORDER BY id",
    );
    expect(got).toEqual([
      { type: "JSON", meta },
      { type: "JSON", meta: null },
    ]);
  });
});

describe("DuckDB staging of a long run", () => {
  it("collects the heap every RELEASE_HEAP_EVERY_CHARS staged, from twice that (none for a short run)", async () => {
    const file = path.join(dir, "out", "db.duckdb");
    const big = "x".repeat(256 * 1024);
    const stage = async (chars: number): Promise<number> => {
      const writer = await openWriter(
        { format: "duckdb", mode: "replace", path: file },
        { runId: `W${++runs}`, stream: "items", columns: null, primaryKey: null },
      );
      const before = heapReleases();
      for (let i = 0; i * big.length < chars; i++) await writer.write({ id: i, v: big });
      await writer.abort();
      return heapReleases() - before;
    };
    expect(await stage(RELEASE_HEAP_EVERY_CHARS)).toBe(0);
    expect(await stage(3.5 * RELEASE_HEAP_EVERY_CHARS)).toBe(2);
    // A run that keeps a large heap (a merge's keys, say): a collection costs about what it keeps,
    // so the next waits until as much again is staged — one collection here instead of two.
    const kept = Array.from({ length: 16 }, () => new Array<number>(1024 * 1024).fill(1.5));
    expect(heapInUse()).toBeGreaterThan(3 * RELEASE_HEAP_EVERY_CHARS);
    expect(await stage(3.5 * RELEASE_HEAP_EVERY_CHARS)).toBe(1);
    kept.length = 0;
  });
});
