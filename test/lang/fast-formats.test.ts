import { fullFormats } from "ajv-formats/dist/formats.js";
import { describe, expect, it } from "vitest";
import { isDateTime, isDateTimeBytes, isEmail, isEmailBytes } from "../../src/lang/fast-formats.js";
import { mutate } from "../helpers/mutate.js";
import { seeded } from "../helpers/seeded.js";

const ajvDateTime = (fullFormats as unknown as Record<string, { validate: (s: string) => boolean }>)[
  "date-time"
].validate;

const CASES = [
  "2024-01-01T00:00:00Z",
  "2024-02-29T10:00:00+01:00",
  "2023-02-29T10:00:00Z",
  "2024-01-01t00:00:00z",
  "2024-01-01 00:00:00.123Z",
  "2024-01-01T00:00:00",
  "2024-13-01T00:00:00Z",
  "2024-01-01T24:00:00Z",
  "2016-12-31T23:59:60Z",
  "2016-12-31T15:59:60-08:00",
  "2016-12-31T23:59:60.5Z",
  "2016-12-31T23:59:61Z",
  "2017-01-01T00:59:60+01:00",
  "2024-01-01T00:00:00+0100",
  "2024-01-01T00:00:00+01",
  "2024-01-01T00:00:00+25:00",
  "2024-01-01T10:00Z",
  "2024-01-01\t10:00:00Z",
  "2024-01-01T00:00:00.Z",
  "1900-02-29T00:00:00Z",
  "2000-02-29T00:00:00Z",
  "+2024-01-01T00:00:00Z",
  "2024-01-01T00:00:00ZZ",
  "x",
  "",
];

describe("isDateTime has exactly ajv-formats' date-time semantics", () => {
  it.each(CASES)("%j", (c) => {
    expect(isDateTime(c)).toBe(ajvDateTime(c));
  });

  it("agrees on 50,000 mutations of valid date-times", () => {
    const rnd = seeded(42);
    const chars = "0123456789-:TtZz+. xa";
    const seeds = ["2016-12-31T23:59:60.25+01:30", "2024-02-29T10:00:00Z", "1999-12-31 23:59:59-05:00"];
    const disagreements: string[] = [];
    for (let k = 0; k < 50_000; k++) {
      const c = mutate(rnd, seeds[k % seeds.length], chars, 1 + (k % 3));
      if (isDateTime(c) !== ajvDateTime(c)) disagreements.push(c);
    }
    expect(disagreements).toEqual([]);
  });
});

const ajvEmail = (fullFormats as unknown as Record<string, RegExp>).email;

const EMAILS = [
  "user1@example.com",
  "First.Last+tag@Sub.Example.CO",
  "a@b",
  "a@b.c",
  ".a@b.c",
  "a.@b.c",
  "a..b@c.d",
  "a@-b.c",
  "a@b-.c",
  "a@b..c",
  "a@b.c.",
  "a@b.c\n",
  "\na@b.c",
  "a b@c.d",
  "a@b_c.d",
  "!#$%&'*+/=?^_`{|}~-@x-y.z9",
  "ü@b.c",
  "a@ü.c",
  "\u017f@b.c", // long s folds to S only with the u flag
  "\u212a@b.c", // the Kelvin sign, likewise
  "@b.c",
  "a@",
  "",
  "a@@b.c",
  "a@b.c@d.e",
];

describe("isEmail has exactly ajv-formats' email semantics", () => {
  it.each(EMAILS)("%j", (c) => {
    expect(isEmail(c)).toBe(ajvEmail.test(c));
  });

  it("agrees on 100,000 mutations of valid addresses", () => {
    const rnd = seeded(7);
    const chars = "aZ09.-@_!+~ \u00e9\n\u017f";
    const seeds = ["first.last+tag@mail.example.co.uk", "u@x-y.z", "A1@B2.C3"];
    const disagreements: string[] = [];
    for (let k = 0; k < 100_000; k++) {
      const c = mutate(rnd, seeds[k % seeds.length], chars, 1 + (k % 4));
      if (isEmail(c) !== ajvEmail.test(c)) disagreements.push(c);
    }
    expect(disagreements).toEqual([]);
  });

  it("is the format records are checked with", async () => {
    const { compileRecordSchema } = await import("../../src/lang/ajv.js");
    const v = compileRecordSchema({ type: "object", properties: { e: { type: "string", format: "email" } } });
    expect(v({ e: "a@b.c" })).toBe(true);
    expect(v({ e: "a@b" })).toBe(false);
    expect(v({ e: "a..b@c.d" })).toBe(false);
  });
});

/**
 * The byte checks (isDateTimeBytes, isEmailBytes: records checked from their bytes,
 * records/byte-check.ts) read a string's JSON text in place: the same answer as the string's own
 * check (a null from isDateTimeBytes asks it), whatever follows the closing quote.
 */
function fromBytes(
  c: string,
  check: (b: Uint8Array, s: number, e: number) => boolean | null,
): boolean | null {
  const before = '{"x":';
  const text = `${before}${JSON.stringify(c)},"y":"2024-01-01T00:00:00Z@b.c+01:00"}`;
  const b = Buffer.from(text);
  const s = Buffer.byteLength(before) + 1;
  return check(b, s, s + Buffer.byteLength(JSON.stringify(c)) - 2);
}

describe("isDateTimeBytes and isEmailBytes say what the string's check says", () => {
  it("date-times: the cases and 50,000 mutations (escapes, non-ASCII and white space among them)", () => {
    const rnd = seeded(43);
    const chars = '0123456789-:TtZz+. xa\t\n"\\\u00a0\u2028é😀\u000b';
    const seeds = ["2016-12-31T23:59:60.25+01:30", "2024-02-29T10:00:00Z", "1999-12-31 23:59:59-05:00"];
    const all = [...CASES, "2024-01-01\u00a010:00:00Z", "2024-01-01\u202810:00:00Z"];
    for (let k = 0; k < 50_000; k++) all.push(mutate(rnd, seeds[k % seeds.length], chars, 1 + (k % 3)));
    const wrong = all.filter((c) => (fromBytes(c, isDateTimeBytes) ?? isDateTime(c)) !== ajvDateTime(c));
    expect(wrong).toEqual([]);
    // Unsure only when a character up to the separator is not plain ASCII (its bytes shift).
    const unsure = all.filter((c) => fromBytes(c, isDateTimeBytes) === null);
    expect(unsure.length).toBeGreaterThan(100);
    expect(unsure.filter((c) => /^[\x20-\x7f]{11}/.test(c) && !/^[^"\\]{0,10}["\\]/.test(c))).toEqual([]);
    expect(all.filter((c) => fromBytes(c, isDateTimeBytes) === true).length).toBeGreaterThan(200);
  });

  it("emails: the cases and 100,000 mutations", () => {
    const rnd = seeded(8);
    const chars = 'aZ09.-@_!+~ \u00e9\n\u017f"\\😀';
    const seeds = ["first.last+tag@mail.example.co.uk", "u@x-y.z", "A1@B2.C3"];
    const all = [...EMAILS];
    for (let k = 0; k < 100_000; k++) all.push(mutate(rnd, seeds[k % seeds.length], chars, 1 + (k % 4)));
    const wrong = all.filter((c) => fromBytes(c, isEmailBytes) !== ajvEmail.test(c));
    expect(wrong).toEqual([]);
    expect(all.filter((c) => fromBytes(c, isEmailBytes)).length).toBeGreaterThan(1000);
  });
});
