import { describe, expect, it } from "vitest";
import { compactRecord } from "../../src/run/page-work/compact-record.js";
import { parseJson, stringifyJson } from "../../src/shared/json-text.js";
import { seeded } from "../helpers/seeded.js";

/**
 * A record written with white space between its tokens (`", "`, `": "`, indentation), or with
 * escapes stringifyJson does not write (`\/`, `\u00e9`), is copied without them and taken as
 * canonical JSON only when that copy is exactly what stringifyJson writes for the record JSON.parse
 * reads (src/run/page-work/compact-record.ts compactRecord): white space
 * inside strings stays, and white space between two bytes of a number or word (which JSON.parse
 * refuses) is never taken out.
 */
const VALUES: unknown[] = [
  "https://example.com/a/b",
  "café 😀 ∑",
  "\u0001",
  "\ud800",
  "\u2028\u007f",
  'a"b\\c',
  0,
  7,
  -12,
  2.5,
  "",
  "a b",
  " x ",
  "é 😀",
  'q " \\ \n\t',
  true,
  false,
  null,
  [],
  [1, "a"],
  {},
  { k: [{ z: 1 }] },
];

function randomRecord(rnd: () => number): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  for (const name of ["id", "a b", "name", "list", "obj"])
    if (rnd() < 0.8) r[name] = VALUES[Math.floor(rnd() * VALUES.length)];
  return r;
}

/** The text with white space put at `k` random places (between tokens or not). */
function spaced(rnd: () => number, text: string, k: number): string {
  let t = text;
  for (let i = 0; i < k; i++) {
    let at = 1 + Math.floor(rnd() * (t.length - 1));
    // Never between the two halves of an emoji (the text must stay valid UTF-16).
    if (/[\ud800-\udbff]/.test(t[at - 1])) at++;
    t = `${t.slice(0, at)}${[" ", "\n  ", "\t", "\r\n"][Math.floor(rnd() * 4)]}${t.slice(at)}`;
  }
  return t;
}

/**
 * The text as APIs that escape more than JSON.stringify write it: `/` as `\/` (PHP), characters
 * past ASCII as `\uXXXX` (Python's json.dumps: surrogate pairs for emoji), hex in either case.
 */
function escaped(rnd: () => number, text: string): string {
  const hex = (c: string) => {
    const h = c.charCodeAt(0).toString(16).padStart(4, "0");
    return `\\u${rnd() < 0.5 ? h : h.toUpperCase()}`;
  };
  return text.replaceAll("/", "\\/").replace(/[\u007f-\uffff]/g, hex);
}

function parsedCanonical(text: string): string | null {
  try {
    const v = parseJson(text);
    return v && typeof v === "object" && !Array.isArray(v) ? (stringifyJson(v) ?? null) : null;
  } catch {
    return null;
  }
}

/** compactRecord of a whole text: its canonical copy, or null. */
const one = (t: string) => compactRecord(Buffer.from(t), 0, Buffer.byteLength(t))?.toString() ?? null;

describe("compactRecord", () => {
  it("gives what stringifyJson writes for the parsed record, or null (30,000 spaced records)", () => {
    const rnd = seeded(5);
    let compacted = 0;
    let refused = 0;
    for (let n = 0; n < 30_000; n++) {
      const text = spaced(rnd, stringifyJson(randomRecord(rnd))!, 1 + (n % 6));
      const padded = Buffer.from(`[${text},{"next":1}]`);
      const got = compactRecord(padded, 1, 1 + Buffer.byteLength(text));
      const want = parsedCanonical(text);
      if (got === null) {
        refused++;
        continue;
      }
      compacted++;
      expect(got.toString("utf8"), text).toBe(want);
    }
    // Most are taken; those with white space inside a number or word (or that do not parse) are not.
    expect(compacted).toBeGreaterThan(3_000);
    expect(refused).toBeGreaterThan(1_000);
  });

  it("writes `\\/` and `\\u` escapes as stringifyJson does (20,000 escaped, spaced records)", () => {
    const rnd = seeded(6);
    let compacted = 0;
    for (let n = 0; n < 20_000; n++) {
      const plain = stringifyJson(randomRecord(rnd))!;
      const text = escaped(rnd, n % 2 ? spaced(rnd, plain, 1) : plain);
      const got = compactRecord(Buffer.from(text), 0, Buffer.byteLength(text));
      if (got === null) continue;
      compacted++;
      expect(got.toString("utf8"), text).toBe(parsedCanonical(text));
    }
    expect(compacted).toBeGreaterThan(8_000);
    expect(one('{"u":"a\\/b","e":"caf\\u00E9 \\ud83d\\ude00","q":"\\u0022\\u005c\\u000a"}')).toBe(
      '{"u":"a/b","e":"café 😀","q":"\\"\\\\\\n"}',
    );
    // Control characters with a short escape get it (`\\u000c` is `\\f`, not `\\b`).
    expect(one('{"a":"\\u0008\\u0009\\u000C\\u000d"}')).toBe('{"a":"\\b\\t\\f\\r"}');
    // Kept as `\\u` by stringifyJson (the canonical reading refuses them): left to the parse.
    for (const t of [
      '{"a":"\\u0001"}',
      '{"a":"\\ud800"}',
      '{"a":"\\udc00x"}',
      '{"a":"\\u00g0"}',
      '{"a":"\\u12"}',
    ])
      expect(one(t), t).toBeNull();
  });

  it("keeps white space inside strings and refuses to join tokens", () => {
    expect(one('{ "a b" : " x y ", "n" : [ 1 , 2 ] }')).toBe('{"a b":" x y ","n":[1,2]}');
    for (const t of ['{"a":1 2}', '{"a":tr ue}', '{"a":- 1}', '{"a":1 .5}', '{"a":"x" "y"}', '{"a":1.0 }'])
      expect(one(t), t).toBeNull();
  });
});
