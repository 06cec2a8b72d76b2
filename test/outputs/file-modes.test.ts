import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Row } from "../../src/records/shape.js";
import { listDir, readCsvFile, readJson, readJsonl, runWriter, tempDir } from "./helpers.js";

type FileFormat = "jsonl" | "json" | "csv";
const FORMATS: FileFormat[] = ["jsonl", "json", "csv"];

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

/** The records of a file; for CSV, as cell text by column. */
function readBack(format: FileFormat, file: string): unknown[] {
  if (format === "jsonl") return readJsonl(file);
  if (format === "json") return readJson(file);
  return readCsvFile(file).rows;
}

/** What `records` look like when read back: for CSV, every value as its cell text. */
function expected(format: FileFormat, records: Row[]): unknown[] {
  if (format !== "csv") return records;
  return records.map((r) =>
    Object.fromEntries(
      Object.entries(r).map(([k, v]) => [
        k,
        v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v),
      ]),
    ),
  );
}

const r = (id: number, name: string, extra: Row = {}): Row => ({ id, name, ...extra });
const PK = { primaryKey: ["id"] };

describe.each(FORMATS)("%s output", (format) => {
  const file = () => path.join(dir, `items.${format}`);

  it("replace: the committed file holds exactly the run's records, and a second run replaces them", async () => {
    await runWriter(format, "replace", file(), [r(1, "a"), r(2, "b")]);
    expect(readBack(format, file())).toEqual(expected(format, [r(1, "a"), r(2, "b")]));
    await runWriter(format, "replace", file(), [r(3, "c")]);
    expect(readBack(format, file())).toEqual(expected(format, [r(3, "c")]));
    expect(listDir(dir)).toEqual([`items.${format}`]);
  });

  it("append: old records, then the new ones, in one well-formed file", async () => {
    await runWriter(format, "append", file(), [r(1, "a"), r(2, "b")]);
    await runWriter(format, "append", file(), [r(3, "c"), r(1, "a again")]);
    expect(readBack(format, file())).toEqual(
      expected(format, [r(1, "a"), r(2, "b"), r(3, "c"), r(1, "a again")]),
    );
    if (format === "csv") expect(readFileSync(file(), "utf8").match(/id,name/g)).toHaveLength(1);
    expect(listDir(dir)).toEqual([`items.${format}`]);
  });

  it("append with no new record keeps the old records", async () => {
    await runWriter(format, "append", file(), [r(1, "a")]);
    await runWriter(format, "append", file(), []);
    expect(readBack(format, file())).toEqual(expected(format, [r(1, "a")]));
  });

  it("merge: old order kept, changed records updated in place, new keys appended; idempotent", async () => {
    await runWriter(format, "merge", file(), [r(1, "a"), r(2, "b"), r(3, "c")], PK);
    await runWriter(format, "merge", file(), [r(4, "d"), r(2, "B")], PK);
    const want = expected(format, [r(1, "a"), r(2, "B"), r(3, "c"), r(4, "d")]);
    expect(readBack(format, file())).toEqual(want);
    const bytes = readFileSync(file());
    await runWriter(format, "merge", file(), [r(4, "d"), r(2, "B")], PK);
    expect(readFileSync(file())).toEqual(bytes);
    expect(listDir(dir)).toEqual([`items.${format}`]);
  });

  it("merge into a file that does not exist yet writes the run's records", async () => {
    await runWriter(format, "merge", file(), [r(2, "b"), r(1, "a")], PK);
    expect(readBack(format, file())).toEqual(expected(format, [r(2, "b"), r(1, "a")]));
  });

  it("merge with a composite key", async () => {
    const k = { primaryKey: ["org", "id"] };
    await runWriter(
      format,
      "merge",
      file(),
      [
        { org: "x", id: 1, v: 1 },
        { org: "y", id: 1, v: 2 },
      ],
      k,
    );
    await runWriter(
      format,
      "merge",
      file(),
      [
        { org: "y", id: 1, v: 3 },
        { org: "x", id: 2, v: 4 },
      ],
      k,
    );
    expect(readBack(format, file())).toEqual(
      expected(format, [
        { org: "x", id: 1, v: 1 },
        { org: "y", id: 1, v: 3 },
        { org: "x", id: 2, v: 4 },
      ]),
    );
  });

  it("merge collapses old records that share a key into the new one, at the first one's place", async () => {
    await runWriter(format, "append", file(), [r(1, "a"), r(2, "b")]);
    await runWriter(format, "append", file(), [r(1, "a2")]);
    await runWriter(format, "merge", file(), [r(1, "A")], PK);
    expect(readBack(format, file())).toEqual(expected(format, [r(1, "A"), r(2, "b")]));
  });

  it("records whose key is missing or null never match", async () => {
    await runWriter(format, "merge", file(), [r(1, "a"), { name: "no id" }], PK);
    await runWriter(format, "merge", file(), [{ id: null, name: "null id" }, { name: "no id" }], PK);
    const got = readBack(format, file());
    expect(got).toHaveLength(4);
  });

  it("merge without a primary key is refused when the writer opens", async () => {
    await expect(runWriter(format, "merge", file(), [r(1, "a")])).rejects.toThrow(/primary_key/);
  });

  describe("duplicates within a run", () => {
    it.each(["replace", "append", "merge"] as const)(
      "%s: the last record of a key is kept at the first one's place, and counted",
      async (mode) => {
        const writer = await runWriter(
          format,
          mode,
          file(),
          [r(1, "a"), r(2, "b"), r(1, "a2"), r(3, "c"), r(1, "a3"), r(3, "c2")],
          PK,
        );
        expect(writer.duplicates?.()).toBe(3);
        expect(readBack(format, file())).toEqual(expected(format, [r(1, "a3"), r(2, "b"), r(3, "c2")]));
      },
    );

    it("no primary key: nothing is a duplicate", async () => {
      const writer = await runWriter(format, "replace", file(), [r(1, "a"), r(1, "a")]);
      expect(writer.duplicates?.() ?? 0).toBe(0);
      expect(readBack(format, file())).toHaveLength(2);
    });

    it("many records, multi-byte text, buffers flushed mid-run: the right records move", async () => {
      const records: Row[] = [];
      for (let i = 0; i < 6000; i++)
        records.push(r(i % 2500, `ñame ✓\u2028\u0085 ${"é".repeat(i % 50)} #${i}`));
      const writer = await runWriter(format, "replace", file(), records, PK);
      expect(writer.duplicates?.()).toBe(3500);
      const want: Row[] = [];
      for (let id = 0; id < 2500; id++) {
        const last = id < 1000 ? id + 5000 : id + 2500;
        want.push(r(id, `ñame ✓\u2028\u0085 ${"é".repeat(last % 50)} #${last}`));
      }
      expect(readBack(format, file())).toEqual(expected(format, want));
    });
  });

  describe("abort leaves the target exactly as it was", () => {
    it.each(["replace", "append", "merge"] as const)("%s", async (mode) => {
      await runWriter(format, "replace", file(), [r(1, "a"), r(2, "b")]);
      const before = readFileSync(file());
      await runWriter(format, mode, file(), [r(2, "B"), r(3, "c"), r(3, "c2"), { id: 4, other: "x" }], {
        ...PK,
        abort: true,
      });
      expect(readFileSync(file())).toEqual(before);
      expect(listDir(dir)).toEqual([`items.${format}`]);
    });

    it("no file before: still none after", async () => {
      await runWriter(format, "append", file(), [r(1, "a")], { abort: true });
      expect(listDir(dir)).toEqual([]);
    });
  });

  it("an empty replace run writes an empty output", async () => {
    await runWriter(format, "replace", file(), [r(1, "a")]);
    await runWriter(format, "replace", file(), []);
    expect(readFileSync(file(), "utf8")).toBe(format === "json" ? "[]\n" : "");
  });
});

describe("reading old files written by others", () => {
  it("json: a pretty-printed array is appended to and merged into", async () => {
    const file = path.join(dir, "items.json");
    const old = [
      { id: 1, name: 'a, [b] {c} "q" \\', tags: ["x", "y"] },
      { id: 2, name: "b", nested: { deep: [1, { id: 9 }] } },
    ];
    writeFileSync(file, JSON.stringify(old, null, 2));
    await runWriter("json", "append", file, [r(3, "c")]);
    expect(readJson(file)).toEqual([...old, r(3, "c")]);
    writeFileSync(file, JSON.stringify(old, null, 2));
    await runWriter("json", "merge", file, [r(2, "B"), r(3, "c")], PK);
    expect(readJson(file)).toEqual([old[0], r(2, "B"), r(3, "c")]);
  });

  it("json: an empty file and an empty array read as no records", async () => {
    const file = path.join(dir, "items.json");
    for (const text of ["", "[]", " [ ] \n"]) {
      writeFileSync(file, text);
      await runWriter("json", "append", file, [r(1, "a")]);
      expect(readJson(file)).toEqual([r(1, "a")]);
    }
  });

  it("json: a file that is not an array fails the commit and is left as it was", async () => {
    const file = path.join(dir, "items.json");
    writeFileSync(file, '{"id":1}');
    await expect(runWriter("json", "append", file, [r(1, "a")])).rejects.toThrow(/not a JSON array/);
    expect(readFileSync(file, "utf8")).toBe('{"id":1}');
  });

  it("jsonl: CRLF line ends, blank lines and a missing last newline", async () => {
    const file = path.join(dir, "items.jsonl");
    writeFileSync(file, '{"id":1,"name":"a"}\r\n\r\n{"id":2,"name":"b"}');
    await runWriter("jsonl", "merge", file, [r(2, "B"), r(3, "c")], PK);
    expect(readFileSync(file, "utf8")).toBe(
      '{"id":1,"name":"a"}\n{"id":2,"name":"B"}\n{"id":3,"name":"c"}\n',
    );
  });

  it("jsonl: a line that is not JSON fails a merge (nothing is dropped silently)", async () => {
    const file = path.join(dir, "items.jsonl");
    writeFileSync(file, '{"id":1}\nnot json\n');
    await expect(runWriter("jsonl", "merge", file, [r(1, "a")], PK)).rejects.toThrow(
      /line 2 is not valid JSON/,
    );
    expect(readFileSync(file, "utf8")).toBe('{"id":1}\nnot json\n');
  });
});

describe("key comparison", () => {
  it('json formats compare key values as JSON: 1 and "1" are different keys', async () => {
    const file = path.join(dir, "items.jsonl");
    const writer = await runWriter(
      "jsonl",
      "merge",
      file,
      [
        { id: 1, v: "n" },
        { id: "1", v: "s" },
      ],
      PK,
    );
    expect(writer.duplicates?.()).toBe(0);
    await runWriter("jsonl", "merge", file, [{ id: "1", v: "S" }], PK);
    expect(readJsonl(file)).toEqual([
      { id: 1, v: "n" },
      { id: "1", v: "S" },
    ]);
  });

  it('csv compares cell text: 1 and "1" are the same key', async () => {
    const file = path.join(dir, "items.csv");
    const writer = await runWriter(
      "csv",
      "merge",
      file,
      [
        { id: 1, v: "n" },
        { id: "1", v: "s" },
      ],
      PK,
    );
    expect(writer.duplicates?.()).toBe(1);
    expect(readCsvFile(file).rows).toEqual([{ id: "1", v: "s" }]);
  });

  it("keys that look alike in other ways stay apart", async () => {
    const file = path.join(dir, "items.jsonl");
    const records = [
      { id: "\u0000[1]", v: 1 },
      { id: [1], v: 2 },
      { id: 1, v: 3 },
      { id: "[1]", v: 4 },
      { id: { a: 1 }, v: 5 },
      { id: '{"a":1}', v: 6 },
      { id: true, v: 7 },
      { id: "true", v: 8 },
      { id: "", v: 9 },
    ];
    const writer = await runWriter("jsonl", "replace", file, [...records, ...records], PK);
    expect(writer.duplicates?.()).toBe(records.length);
    expect(readJsonl(file)).toEqual(records);
  });
});
