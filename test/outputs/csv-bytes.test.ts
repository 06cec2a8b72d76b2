import { describe, expect, it } from "vitest";
import { CsvBytes } from "../../src/outputs/csv-bytes.js";
import { CsvColumns, cellTextFunction } from "../../src/outputs/csv-format.js";
import { ByteChecker, compileByteSchema } from "../../src/records/byte-check.js";
import type { Row } from "../../src/records/shape.js";
import { randomRecords } from "../helpers/random-records.js";

/**
 * CSV rows made from a checked record's bytes (CsvColumns.placeMembers + memberRow, csv-bytes.ts)
 * against rows made from the parsed record (CsvColumns.row): byte for byte the same row, and the
 * same columns in the same order, record after record.
 */

function compare(seed: number, formulas: boolean, planned: string[]) {
  const next = randomRecords(seed);
  const cell = cellTextFunction(formulas);
  const parsed = new CsvColumns(planned, cell, formulas);
  const bytes = new CsvColumns(planned, cell, formulas);
  const checker = new ByteChecker(compileByteSchema(true)!, null);
  const out = new CsvBytes();
  let checked = 0;
  for (let i = 0; i < 4000; i++) {
    const text = next();
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
