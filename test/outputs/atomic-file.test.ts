import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AtomicFile, readLines, SpanReader } from "../../src/outputs/atomic-file.js";
import { listDir, tempDir } from "./helpers.js";

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

describe("AtomicFile", () => {
  it("keeps the order of writes even when the caller does not wait for them", async () => {
    const target = path.join(dir, "out.txt");
    const f = await AtomicFile.create(target, "r1");
    const chunk = (i: number) => `${String(i).padStart(6, "0")}${"x".repeat(100_000)}\n`;
    const pending: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      const p = f.write(chunk(i));
      if (p) pending.push(p);
    }
    expect(pending.length).toBeGreaterThan(3);
    await f.commit();
    const lines = readFileSync(target, "utf8").split("\n").slice(0, -1);
    expect(lines.map((l) => Number(l.slice(0, 6)))).toEqual([...Array(40).keys()]);
    expect(listDir(dir)).toEqual(["out.txt"]);
  });

  it("close keeps the temporary file to read back; abort removes it and leaves the target", async () => {
    const target = path.join(dir, "out.txt");
    writeFileSync(target, "old");
    const f = await AtomicFile.create(target, "r1", "body");
    await f.write("new");
    await f.close();
    expect(readFileSync(f.tmpPath, "utf8")).toBe("new");
    await f.abort();
    expect(listDir(dir)).toEqual(["out.txt"]);
    expect(readFileSync(target, "utf8")).toBe("old");
  });
});

describe("SpanReader", () => {
  it("reads spans in any order, across block boundaries and larger than a block", async () => {
    const file = path.join(dir, "data.txt");
    const text = Array.from({ length: 250_000 }, (_, i) => `${i}é✓`).join("|");
    writeFileSync(file, text);
    const bytes = Buffer.from(text);
    expect(bytes.length).toBeGreaterThan(2 * SpanReader.BLOCK);
    const reader = await SpanReader.open(file);
    const spans: [number, number][] = [
      [0, 5],
      [SpanReader.BLOCK - 3, 10],
      [bytes.length - 7, 7],
      [10, 3],
      [0, bytes.length],
      [SpanReader.BLOCK + 100, 50],
    ];
    for (const [offset, length] of spans) {
      expect(await reader.read(offset, length)).toBe(
        bytes.subarray(offset, offset + length).toString("utf8"),
      );
    }
    await expect(reader.read(bytes.length - 2, 10)).rejects.toThrow(/end of file/);
    await reader.close();
  });
});

describe("readLines", () => {
  it("splits on LF, CRLF and CR, drops a BOM, and keeps a last line without an end", async () => {
    const file = path.join(dir, "lines.txt");
    writeFileSync(file, "\ufeffa\r\nb\nc\rd\u2028e");
    const lines: string[] = [];
    for await (const line of readLines(file)) lines.push(line);
    expect(lines).toEqual(["a", "b", "c", "d\u2028e"]);
  });
});
