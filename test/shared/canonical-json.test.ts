/**
 * isCanonicalJsonObject (src/shared/canonical-json.ts): a JSON lines body's line is written as it
 * came only when it is exactly what stringifyJson writes for the record it parses to. Every text
 * said canonical must round-trip byte for byte; every spelling JSON.stringify changes must be
 * refused (a duplicate key, `1e3`, `1.0`, white space, `\u` escapes, integer-like keys, …).
 */
import { describe, expect, it } from "vitest";
import { isCanonicalJsonObject } from "../../src/shared/canonical-json.js";
import { parseJson, stringifyJson } from "../../src/shared/json-text.js";
import { seeded } from "../helpers/seeded.js";

const canonical = (text: string): boolean => {
  const b = Buffer.from(text, "utf8");
  return isCanonicalJsonObject(b, 0, b.length);
};
const roundTrips = (text: string): boolean => stringifyJson(parseJson(text)) === text;

describe("isCanonicalJsonObject", () => {
  const yes = [
    "{}",
    '{"a":1,"b":"x","c":true,"d":false,"e":null,"f":[],"g":{}}',
    '{"event":"click","distinct_id":"u1","time":1704067200,"properties":{"n":1,"price":12.3}}',
    '{"big":12345678901234567890,"neg":-98765432109876543210,"arr":[12345678901234567890]}',
    '{"d":-0.5,"e":0.000001,"f":123456789.123456,"g":-7}',
    '{"s":"a \\"quoted\\" \\\\ back\\nline\\ttab\\r\\b\\f","t":"é ü 日本 😀"}',
    '{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}',
    '{"__proto__":{"polluted":1},"constructor":2}',
    '{"key\\"q":1,"key\\\\":2}',
  ];
  for (const text of yes)
    it(`canonical, and it round-trips: ${text}`, () => {
      expect(roundTrips(text)).toBe(true);
      expect(canonical(text)).toBe(true);
    });

  const no: [string, string][] = [
    ["a duplicate key", '{"a":1,"a":2}'],
    ["a duplicate key in a nested object", '{"x":{"a":1,"b":2,"a":3}}'],
    ["an exponent", '{"a":1e3}'],
    ["a fraction ending in 0", '{"a":1.0}'],
    ["a fraction ending in 0 (2)", '{"a":1.50}'],
    ["-0", '{"a":-0}'],
    ["a small decimal JSON.stringify writes with an exponent", '{"a":0.0000001}'],
    ["a decimal of more than 15 digits", '{"a":1234567890.1234567}'],
    ["a space after the colon", '{"a": 1}'],
    ["a space after the comma", '{"a":1, "b":2}'],
    ["surrounding white space", ' {"a":1}'],
    ["a tab", '{"a":\t1}'],
    ["a \\u escape", '{"a":"\\u0041"}'],
    ["an escaped slash", '{"a":"http:\\/\\/x"}'],
    ["an integer-like key (V8 puts it first)", '{"b":1,"1":2}'],
    ["a key starting with a digit", '{"1a":1}'],
    ["a BOM", '\uFEFF{"a":1}'],
    ["not an object", "[1,2]"],
    ["not an object (a number)", "5"],
  ];
  for (const [what, text] of no)
    it(`not canonical: ${what}`, () => {
      expect(canonical(text)).toBe(false);
    });

  it("two keys that differ only in an escape are not a duplicate", () => {
    expect(canonical('{"a\\n":1,"a\\t":2}')).toBe(true);
    expect(roundTrips('{"a\\n":1,"a\\t":2}')).toBe(true);
  });

  it("more than 256 keys in an object, or 65 levels of nesting, is left to the serializer", () => {
    const wide = `{${Array.from({ length: 257 }, (_, i) => `"k${i}":${i}`).join(",")}}`;
    expect(canonical(wide)).toBe(false);
    const fine = `{${Array.from({ length: 256 }, (_, i) => `"k${i}":${i}`).join(",")}}`;
    expect(canonical(fine)).toBe(true);
    const deep = `{"a":${"[".repeat(64)}${"]".repeat(64)}}`;
    expect(canonical(deep)).toBe(false);
  });

  it("reads only its range of the bytes", () => {
    const b = Buffer.from('xx{"a":1}\r\n{"a": 2}\n');
    expect(isCanonicalJsonObject(b, 2, 9)).toBe(true);
    expect(isCanonicalJsonObject(b, 11, 19)).toBe(false);
  });

  it("random texts: whatever is said canonical round-trips byte for byte", () => {
    const random = seeded(42);
    const rand = (n: number) => Math.floor(random() * n);
    const pick = <T>(a: readonly T[]): T => a[rand(a.length)];
    const keys = ['"a"', '"b"', '"c"', '"1"', '"01"', '"é"', '"a\\n"', '"\\u0061"', '"__proto__"'];
    const numbers = [
      "0",
      "-0",
      "1",
      "-12",
      "1.5",
      "1.50",
      "2.0",
      "1e3",
      "1E-2",
      "0.000001",
      "0.0000001",
      "123456789012345",
      "1234567890123456",
      "12345678901234567890",
      "-0.25",
      "0.1",
      "123456789.123456",
      "1234567890.12345678",
      "9007199254740993",
      "100",
      "1.25e+2",
    ];
    const strings = [
      '""',
      '"x"',
      '"a\\"b"',
      '"\\\\"',
      '"\\/"',
      '"\\u00e9"',
      '"é"',
      '"\\ud83d\\ude00"',
      '"😀"',
      '"a b"',
    ];
    const value = (depth: number): string => {
      const r = rand(depth > 3 ? 4 : 7);
      if (r === 0) return pick(numbers);
      if (r === 1) return pick(strings);
      if (r === 2) return pick(["true", "false", "null"]);
      if (r === 3) return pick(numbers);
      if (r === 4) return object(depth + 1);
      if (r === 5)
        return `[${Array.from({ length: rand(4) }, () => value(depth + 1)).join(pick([",", ",", ", "]))}]`;
      return object(depth + 1);
    };
    const object = (depth: number): string =>
      `{${Array.from({ length: rand(5) }, () => `${pick(keys)}${pick([":", ":", ":", ": "])}${value(depth)}`).join(",")}}`;
    let yes = 0;
    let noButSame = 0;
    for (let i = 0; i < 20_000; i++) {
      const text = object(0);
      const same = roundTrips(text);
      if (canonical(text)) {
        yes++;
        expect(same, text).toBe(true);
      } else if (same) noButSame++;
    }
    // Not vacuous: many texts are canonical, and the rule is not far from exact.
    expect(yes).toBeGreaterThan(2000);
    expect(noButSame).toBeLessThan(yes);
  });
});
