/**
 * readCanonicalLine says a line is a JSON object AND canonical without JSON.parse: checked here
 * against parseJson + stringifyJson (the regular path) on random records and on mutations of
 * them. It must never say yes where they disagree (the raw path would write a line the regular
 * path would not), and must say yes for the ordinary canonical lines (or the raw path is useless).
 */
import { describe, expect, it } from "vitest";
import { lineMembers, readCanonicalLine } from "../../src/shared/canonical-line.js";
import { parseJson, stringifyJson } from "../../src/shared/json-text.js";
import { mutate } from "../helpers/mutate.js";
import { seeded } from "../helpers/seeded.js";

const TYPES = ["null", "array", "object", "string", "boolean", "integer", "number"];
const typeOf = (v: unknown): string =>
  v === null
    ? "null"
    : Array.isArray(v)
      ? "array"
      : typeof v === "bigint"
        ? "integer"
        : typeof v === "number"
          ? Number.isInteger(v)
            ? "integer"
            : "number"
          : typeof v;

/** What the regular path says of `text`: its members when it is a canonical object, else null. */
function reference(text: string): [string, string][] | null {
  let v: unknown;
  try {
    v = parseJson(text);
  } catch {
    return null;
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
  if (stringifyJson(v) !== text) return null;
  return Object.keys(v).map((k) => [k, typeOf((v as Record<string, unknown>)[k])]);
}

/** What readCanonicalLine says of `text`, read inside other bytes (it must not read past them). */
function read(text: string): [string, string][] | null {
  const line = Buffer.from(text, "utf8");
  const b = Buffer.concat([Buffer.from('"],}1'), line, Buffer.from('1"}]\n{"a":1}')]);
  const m = lineMembers();
  if (!readCanonicalLine(b, 5, 5 + line.length, m)) return null;
  const out: [string, string][] = [];
  for (let k = 0; k < m.count; k++) {
    const raw = b.toString("utf8", m.names[2 * k], m.names[2 * k + 1]);
    out.push([m.escaped ? JSON.parse(`"${raw}"`) : raw, TYPES[m.types[k]]]);
  }
  return out;
}

function randomValue(rnd: () => number, depth: number): unknown {
  const r = rnd();
  if (depth > 3 || r < 0.45) {
    const s = rnd();
    if (s < 0.15) return null;
    if (s < 0.25) return rnd() < 0.5;
    if (s < 0.45) return Math.floor(rnd() * 2e6) - 1e6;
    if (s < 0.6) return Math.round(rnd() * 1e6) / 100;
    if (s < 0.65) return [0, -0, 1e21, 1.5e-7, 0.000123, 123456789.123456, 2 ** 60][Math.floor(rnd() * 7)];
    const chars = ["a", "é", "😀", '"', "\\", "\n", "\t", "\u0001", "\u2028", "/", " ", "{", "}"];
    let t = "";
    for (let i = Math.floor(rnd() * 6); i > 0; i--) t += chars[Math.floor(rnd() * chars.length)];
    return t;
  }
  if (r < 0.7) return Array.from({ length: Math.floor(rnd() * 4) }, () => randomValue(rnd, depth + 1));
  return randomObject(rnd, depth + 1);
}

function randomObject(rnd: () => number, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const names = ["id", "name", "a", "b_c", "é", "__proto__", "2x", "10", 'k"q', "x y", ""];
  for (let i = Math.floor(rnd() * 6); i > 0; i--)
    Object.defineProperty(o, names[Math.floor(rnd() * names.length)], {
      value: randomValue(rnd, depth),
      enumerable: true,
      configurable: true,
      writable: true,
    });
  return o;
}

describe("readCanonicalLine", () => {
  it.each([
    ['{"id":1,"name":"x","tags":["a",{"b":null}],"ok":true,"f":false,"p":1.5,"o":{}}', true],
    ['{"a":-0}', false],
    ['{"a":01}', false],
    ['{"a":1.}', false],
    ['{"a":1.50}', false],
    ['{"a":1e5}', false],
    ['{"a":-}', false],
    ['{"a" :1}', false],
    ['{"a":1,}', false],
    ['{"a":1}x', false],
    ['{"a":1', false],
    ['{"a":tru}', false],
    ['{"a":nul}', false],
    ['{"a":[1,]}', false],
    ['{"a":[,1]}', false],
    ['{"a":"\\u0041"}', false],
    ['{"a":"x\ty"}', false],
    ['{"a":1,"a":2}', false],
    ['{"1":1}', false],
    ['{"a":{"b":1,"b":1}}', false],
    ['{"a":"\\"q\\\\"}', true],
    ['{"\\"":1}', true],
    ["[1]", false],
    ['"a"', false],
    ["{}", true],
    ['{"a":12345678901234567890}', true],
  ])("%s → %s", (text, expected) => {
    expect(read(text) !== null).toBe(expected);
    if (expected) expect(read(text)).toEqual(reference(text));
  });

  it("agrees with parse + stringify on 20,000 random records and 60,000 mutations", () => {
    const rnd = seeded(5);
    const alphabet = [
      '"',
      "\\",
      ",",
      ":",
      "{",
      "}",
      "[",
      "]",
      "0",
      "1",
      "-",
      ".",
      "e",
      " ",
      "n",
      "t",
      "a",
      "\u0001",
    ];
    const wrong: string[] = [];
    let accepted = 0;
    let canonical = 0;
    for (let k = 0; k < 20_000; k++) {
      const text = stringifyJson(randomObject(rnd, 0));
      const ref = reference(text);
      const got = read(text);
      if (ref !== null) canonical++;
      if (got !== null) accepted++;
      if (got !== null && JSON.stringify(got) !== JSON.stringify(ref)) wrong.push(text);
      for (let j = 0; j < 3; j++) {
        const m = mutate(rnd, text, alphabet, 1);
        const g = read(m);
        if (g !== null && JSON.stringify(g) !== JSON.stringify(reference(m))) wrong.push(m);
      }
    }
    expect(wrong).toEqual([]);
    // Canonical lines are accepted but for its conservative refusals (names that start with a
    // digit, `\u` escapes: JSON.stringify writes some, and the generator makes many of both).
    expect(accepted / canonical).toBeGreaterThan(0.3);
  });

  it("accepts ordinary export lines and gives their members", () => {
    const line =
      '{"event":"click","distinct_id":"u1","time":1704067201,"properties":{"n":1,"price":0.1},"x":null}';
    expect(read(line)).toEqual([
      ["event", "string"],
      ["distinct_id", "string"],
      ["time", "integer"],
      ["properties", "object"],
      ["x", "null"],
    ]);
  });

  it("agrees with parse + stringify at the edges of JSON.stringify's decimal form (five zeros after `0.`)", () => {
    // 0.000001 is written as it is, 0.0000001 as 1e-7: only the first is canonical.
    for (const text of ['{"a":0.000001}', '{"a":0.0000001}', '{"a":-0.000005}', '{"a":-0.0000005}'])
      expect(read(text), text).toEqual(reference(text));
    expect(read('{"a":0.000001}')).toEqual([["a", "number"]]);
  });
});
