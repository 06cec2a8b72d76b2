import { describe, expect, it } from "vitest";
import { jsonKeyFunction } from "../../src/outputs/merge.js";
import { ByteChecker, compileByteSchema } from "../../src/records/byte-check.js";
import type { Row } from "../../src/records/shape.js";
import { byteCursor, byteKey } from "../../src/run/page-work/byte-keys.js";
import { parseJson, stringifyJson } from "../../src/shared/json-text.js";
import { seeded } from "../helpers/seeded.js";

/**
 * A checked record's primary key read from its bytes (src/run/page-work/byte-keys.ts) is the key
 * merge.ts's jsonKeyFunction reads from the parsed record — the JSON lines, DuckDB and Parquet
 * writers compare them within a run, whichever path each record took.
 */
const VALUES: unknown[] = [
  0,
  7,
  -12,
  2.5,
  -0.001,
  123456789012345,
  "",
  "a",
  "é ü 😀",
  'quote " and \\ back',
  "tab\there\nand\bmore\f",
  "\u0001",
  "0",
  "7",
  true,
  false,
  null,
  [],
  ["a", 1],
  {},
  { id: 1, login: 'x"y' },
  BigInt("123456789012345678901"),
  1e21,
];

function randomRecord(rnd: () => number): Row {
  const r: Row = {};
  for (const name of ["id", "name", "owner", "other", "constructor"])
    if (rnd() < 0.85) r[name] = VALUES[Math.floor(rnd() * VALUES.length)];
  return r;
}

const KEYS = [["id"], ["name"], ["owner"], ["constructor"], ["id", "name"], ["name", "owner", "id"]];

describe("byteKey and byteCursor", () => {
  it("equal jsonKeyFunction and the cursor value of the parsed record (20,000 random records)", () => {
    const rnd = seeded(20);
    const checker = new ByteChecker(compileByteSchema(true)!, null);
    const texts = Array.from({ length: 20000 }, () => stringifyJson(randomRecord(rnd)));
    // The records one comma apart in one buffer, as on a page: each read within its span.
    const page = Buffer.from(`[${texts.join(",")}]`);
    let at = 1;
    let checked = 0;
    const kinds = new Set<string>();
    for (const text of texts) {
      const end = at + Buffer.byteLength(text);
      // Numbers beyond 15 digits or with an exponent are left to the parse (not read from bytes).
      if (checker.check(page, at, end)) {
        checked++;
        const row = parseJson(text) as Row;
        // The cursor the parsed record offers incremental.ts's CursorTracker: a string or number.
        for (const field of ["id", "name", "owner", "constructor", "missing"]) {
          const v = Object.hasOwn(row, field) ? row[field] : undefined;
          const want = typeof v === "string" || typeof v === "number" ? v : undefined;
          expect(byteCursor(checker, page, field), `cursor ${field} of ${text}`).toEqual(want);
        }
        for (const pk of KEYS) {
          const want = jsonKeyFunction(pk)(row);
          expect(byteKey(checker, page, pk), `${pk.join("+")} of ${text}`).toEqual(want);
          kinds.add(want === null ? "null" : typeof want);
        }
      }
      at = end + 1;
    }
    expect(checked).toBeGreaterThan(12000);
    expect([...kinds].sort()).toEqual(["null", "number", "string"]);
  });
});
