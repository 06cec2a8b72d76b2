import { describe, expect, it } from "vitest";
import { CsvBytes } from "../../src/outputs/csv-bytes.js";
import { CsvColumns, cellTextFunction } from "../../src/outputs/csv-format.js";
import { ByteChecker, compileByteSchema } from "../../src/records/byte-check.js";
import type { Row } from "../../src/records/shape.js";
import { seeded } from "../helpers/seeded.js";

/**
 * CSV rows made from a checked record's bytes (CsvColumns.placeMembers + memberRow, csv-bytes.ts)
 * against rows made from the parsed record (CsvColumns.row): byte for byte the same row, and the
 * same columns in the same order, record after record.
 */

/** Characters that make CSV quote, JSON escape, formulas start, or UTF-8 take several bytes. */
const CHARS = [
  "a",
  "b",
  "Z",
  "0",
  "5",
  ",",
  '"',
  "\n",
  "\r",
  "\t",
  "=",
  "+",
  "-",
  "@",
  " ",
  "é",
  "😀",
  "\\",
  "/",
  "\u2028",
  "\u0000",
  "'",
  ".",
  "e",
];
const NAMES = [
  "id",
  "name",
  "a,b",
  'q"t',
  "constructor",
  "__proto__",
  "toString",
  "1",
  "20",
  "é",
  "😀",
  "sp ace",
  "=f",
  "",
  "x",
];

function randomString(rnd: () => number): string {
  if (rnd() < 0.1) return "";
  // Strings a spreadsheet could read as numbers, or formulas.
  if (rnd() < 0.1) return ["-5", "+1.5e3", "=1+2", "@sum", "-", "+x", ".5", "-.5"][Math.floor(rnd() * 8)];
  let s = "";
  const n = 1 + Math.floor(rnd() * 8);
  for (let i = 0; i < n; i++) s += CHARS[Math.floor(rnd() * CHARS.length)];
  return s;
}

function randomValue(rnd: () => number, depth: number): unknown {
  const r = rnd();
  if (r < 0.3) return randomString(rnd);
  if (r < 0.45) {
    const nums = [0, -0, 1, -7, 2.5, -0.125, 1e21, 1.5e-7, 123456789012345, 0.1, 1e300, -1e-300];
    return rnd() < 0.5 ? nums[Math.floor(rnd() * nums.length)] : Math.round((rnd() - 0.5) * 1e6) / 100;
  }
  if (r < 0.55) return rnd() < 0.5;
  if (r < 0.65) return null;
  if (depth > 1) return "deep";
  if (r < 0.8) {
    const a: unknown[] = [];
    const n = Math.floor(rnd() * 3);
    for (let i = 0; i < n; i++) a.push(randomValue(rnd, depth + 1));
    return a;
  }
  const o: Record<string, unknown> = {};
  const n = Math.floor(rnd() * 3);
  for (let i = 0; i < n; i++) o[NAMES[Math.floor(rnd() * NAMES.length)]] = randomValue(rnd, depth + 1);
  return o;
}

/** A record's canonical JSON: members in a random order, as JSON.stringify writes its parse. */
function randomRecord(rnd: () => number): string {
  const parts: string[] = [];
  const used = new Set<string>();
  const n = Math.floor(rnd() * 7);
  for (let i = 0; i < n; i++) {
    const name = NAMES[Math.floor(rnd() * NAMES.length)];
    if (used.has(name)) continue;
    used.add(name);
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(randomValue(rnd, 0))}`);
  }
  // Parsed and written again: canonical (index-like names first, in order).
  return JSON.stringify(JSON.parse(`{${parts.join(",")}}`));
}

function compare(seed: number, formulas: boolean, planned: string[]) {
  const rnd = seeded(seed);
  const cell = cellTextFunction(formulas);
  const parsed = new CsvColumns(planned, cell, formulas);
  const bytes = new CsvColumns(planned, cell, formulas);
  const checker = new ByteChecker(compileByteSchema(true)!, null);
  const out = new CsvBytes();
  let checked = 0;
  for (let i = 0; i < 4000; i++) {
    const text = randomRecord(rnd);
    const record = JSON.parse(text) as Row;
    const expected = parsed.row(record);
    const b = Buffer.from(text);
    if (!checker.check(b, 0, b.length)) {
      // The byte path parses records the checker does not take: their rows come from `row`.
      bytes.row(record);
      continue;
    }
    checked++;
    bytes.placeMembers(checker.names, checker.count);
    const start = out.used;
    const length = bytes.memberRow(out, b, checker.types, checker.values);
    const got = out.take().subarray(start).toString("utf8");
    expect({ text, row: got, length }).toEqual({ text, row: expected, length: Buffer.byteLength(expected) });
    expect(bytes.names).toEqual(parsed.names);
  }
  return checked;
}

describe("CSV rows from a checked record's bytes", () => {
  it("are the parsed record's rows, byte for byte (4,000 random records, no planned columns)", () => {
    expect(compare(1, false, [])).toBeGreaterThan(3000);
  });

  it("with escape_formulas", () => {
    expect(compare(2, true, [])).toBeGreaterThan(3000);
  });

  it("with planned columns (a schema's), some never present", () => {
    expect(compare(3, false, ["x", "id", "never", "a,b", "1"])).toBeGreaterThan(3000);
    expect(compare(4, true, ["x", "id", "never", "a,b", "1"])).toBeGreaterThan(3000);
  });

  it('a row of one empty cell is `""`, not a blank line', () => {
    const table = new CsvColumns(["only"], cellTextFunction(false));
    const checker = new ByteChecker(compileByteSchema(true)!, null);
    const out = new CsvBytes();
    for (const text of ['{"only":""}', '{"only":null}', "{}"]) {
      const b = Buffer.from(text);
      expect(checker.check(b, 0, b.length)).toBe(true);
      table.placeMembers(checker.names, checker.count);
      table.memberRow(out, b, checker.types, checker.values);
      out.byte(0x0a);
    }
    expect(out.take().toString()).toBe('""\n""\n""\n');
  });

  it("CsvBytes grows past its first buffer and hands each take() a buffer of its own", () => {
    const out = new CsvBytes();
    const long = Buffer.alloc(100_000, 0x61);
    out.copy(long, 0, long.length);
    out.quoted(Buffer.from('a"b'), 0, 3);
    const first = out.take();
    expect(first.length).toBe(100_006);
    expect(first.subarray(100_000).toString()).toBe('"a""b"');
    out.text("é");
    expect(out.take().toString()).toBe("é");
    expect(first.subarray(0, 3).toString()).toBe("aaa");
  });
});
