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
import { jsonKeyFunction } from "../../src/outputs/merge.js";
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

describe("withMemory: a load that committed is never run again", () => {
  it("a CHECKPOINT that runs out of memory after the load is tried again alone, at the next limit", async () => {
    const sql: string[] = [];
    let checkpoints = 0;
    const conn = {
      run: async (text: string) => {
        sql.push(text);
        if (text === "CHECKPOINT" && ++checkpoints === 1)
          throw new Error("Out of Memory Error: could not allocate block of size 256.0 KiB");
      },
    } as unknown as Parameters<typeof withMemory>[0];
    let loads = 0;
    const notes: string[] = [];
    // 20 MiB of long strings: the limit is raised before the load, so a CHECKPOINT follows it.
    await withMemory(conn, "database", 20 * 1024 * 1024, notes, async () => {
      loads++;
    });
    expect(loads).toBe(1);
    expect(sql).toEqual([
      "SET memory_limit = '71MiB'",
      "CHECKPOINT",
      "SET memory_limit = '284MiB'",
      "CHECKPOINT",
      "SET memory_limit = '48MB'",
    ]);
    expect(notes).toHaveLength(1);
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
      // A load that runs out of memory is tried again at 4, then 16 times the limit; what a failed
      // attempt noted is dropped; the limit goes back after.
      const tried: string[] = [];
      const oom: string[] = ["kept"];
      const outOfMemory = async (until: number) => {
        tried.push(await limit(conn));
        oom.push(`attempt ${tried.length}`);
        if (tried.length < until)
          throw new Error("Out of Memory Error: failed to allocate data of size 32.0 MiB");
        return "loaded";
      };
      expect(await withMemory(conn, "database", 0, oom, () => outOfMemory(2))).toBe("loaded");
      expect(tried).toEqual(["45.7 MiB", "184.0 MiB"]);
      expect(oom).toEqual([
        "kept",
        "attempt 2",
        expect.stringMatching(
          /memory limit was raised to 184 MiB for the load: it ran out of memory at 46 MiB/,
        ),
      ]);
      expect(await limit(conn)).toBe("45.7 MiB");
      tried.length = 0;
      await expect(withMemory(conn, "database", 0, [], () => outOfMemory(9))).rejects.toThrow(
        /Out of Memory Error.*\(DuckDB's memory limit was raised to 733 MiB for the load: it ran out of memory at 184 MiB/,
      );
      expect(tried).toEqual(["45.7 MiB", "184.0 MiB", "733.0 MiB"]);
      expect(await limit(conn)).toBe("45.7 MiB");
      // Any other error is not tried again.
      tried.length = 0;
      await expect(
        withMemory(conn, "database", 0, [], async () => {
          tried.push(await limit(conn));
          throw new Error("Conversion Error");
        }),
      ).rejects.toThrow("Conversion Error");
      expect(tried).toEqual(["45.7 MiB"]);
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

describe("DuckDB staging of lines made elsewhere (writeLines: the page path)", () => {
  /** Lines of every length around the byte-by-byte copy's limit, `{}`, a long one, positions past 9, 99, 999. */
  function rows(n: number, keys: number): Row[] {
    return Array.from({ length: n }, (_, i) => {
      if (keys === 0 && i % 97 === 5) return {};
      const v =
        i % 500 === 1
          ? "y".repeat(100_000)
          : i % 3 === 0
            ? "x".repeat(470 + (i % 90))
            : i % 7 === 0
              ? ""
              : `é🦆${i}`;
      return { id: keys ? i % keys : i, n: i, v };
    });
  }

  for (const format of ["duckdb", "parquet"] as const)
    for (const keys of [0, 700])
      it(`${format}${keys ? ", merge on a key that repeats (the last wins: positions in order)" : ", with {} records"}: the table holds every record`, async () => {
        const file = path.join(dir, "out", format === "duckdb" ? "db.duckdb" : "items.parquet");
        const writer = await openWriter(
          { format, mode: keys ? "merge" : "replace", path: file },
          { runId: `L${++runs}`, stream: "items", columns: null, primaryKey: keys ? ["id"] : null },
        );
        const all = rows(2100, keys);
        // In chunks of 300 lines, as pages come.
        for (let at = 0; at < all.length; at += 300) {
          const chunk = all.slice(at, at + 300);
          for (const r of chunk) writer.seeRow!(r, false);
          const text = Buffer.from(chunk.map((r) => `${JSON.stringify(r)}\n`).join(""));
          const keyList = keys ? chunk.map(jsonKeyFunction(["id"])) : null;
          await writer.writeLines!(text, chunk.length, keyList, null);
        }
        await writer.commit();
        const target = format === "duckdb" ? file : ":memory:";
        const from = format === "duckdb" ? "items" : `read_parquet('${file.replaceAll("'", "''")}')`;
        const got = await query(target, `SELECT id, n, v FROM ${from} ORDER BY n NULLS LAST`);
        const expected = keys ? [...new Map(all.map((r) => [r.id, r])).values()] : all;
        expect(got.length).toBe(expected.length);
        const norm = (r: Record<string, unknown>) => ({
          id: r.id === null || r.id === undefined ? null : Number(r.id),
          n: r.n === null || r.n === undefined ? null : Number(r.n),
          v: r.v ?? null,
        });
        const sorted = [...expected].sort((a, b) =>
          a.n === undefined ? 1 : b.n === undefined ? -1 : Number(a.n) - Number(b.n),
        );
        expect(got.map(norm)).toEqual(sorted.map(norm));
      });
});
