import { describe, expect, it } from "vitest";
import type { StreamPlan, ValidationPlan } from "../../src/compile/plan.js";
import { recordStringFormats } from "../../src/lang/ajv.js";
import { ByteChecker, compileByteSchema } from "../../src/records/byte-check.js";
import { jsonType, StreamQuality } from "../../src/records/quality.js";
import type { Row } from "../../src/records/shape.js";
import { parseJson, stringifyJson } from "../../src/shared/json-text.js";
import { mutate } from "../helpers/mutate.js";
import { seeded } from "../helpers/seeded.js";

/**
 * The byte check (src/records/byte-check.ts) against the regular path: a record it passes is
 * valid for ajv and its members are the parsed record's keys and types; a stream's statistics
 * (counts, types, first records, examples, errors) are the same whether each record is parsed
 * and checked, or counted from its bytes when the check passes it.
 */
const POLICY = { drift: "warn", invalidRecords: "skip" } as unknown as ValidationPlan;

const SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  type: "object",
  title: "a record",
  required: ["id", "name", "when"],
  properties: {
    id: { type: "integer" },
    name: { type: "string", description: "any text" },
    email: { type: ["string", "null"], format: "email" },
    when: { type: "string", format: "date-time" },
    amount: { type: "number" },
    flag: { type: "boolean" },
    tags: { type: "array", items: { type: "string" } },
    owner: {
      type: "object",
      required: ["id"],
      properties: { id: { type: "integer" }, login: { type: "string" } },
    },
    any: true,
    nothing: {},
  },
};

const TYPES = ["null", "array", "object", "string", "boolean", "integer", "number"];

function quality(schema: unknown): StreamQuality {
  const stream = {
    schema: schema ? { file: null, schema } : null,
    primaryKey: null,
  } as unknown as StreamPlan;
  return new StreamQuality(stream, POLICY);
}

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)];
}

const STRINGS = [
  "a",
  "é ü",
  "😀",
  'quote " and \\ back',
  "tab\there",
  "line\nfeed",
  "\u0001",
  "\ud800",
  "x@example.com",
  "a.b@c.d",
  "not an email",
  "2024-01-02T03:04:05Z",
  "2024-02-30T00:00:00Z",
  "2024-01-02T03:04:05.123+02:00",
  "2024-01-02 03:04:05Z",
  "",
];
const NUMBERS = [0, 1, -1, 42, 2.5, -0.001, 1e21, 1e-7, 123456789012345, 1234567890123456, 2 ** 53 + 2];

function randomScalar(rnd: () => number): unknown {
  const r = rnd();
  if (r < 0.35) return pick(rnd, STRINGS);
  if (r < 0.7) return pick(rnd, NUMBERS);
  if (r < 0.8) return rnd() < 0.5;
  if (r < 0.88) return null;
  if (r < 0.94) return BigInt("123456789012345678901");
  return pick(rnd, [[], {}, ["a", 1], { id: 1 }]);
}

/** A record near the schema: most fields of their type, some of another, some missing or extra. */
function randomRecord(rnd: () => number): Row {
  const r: Row = {};
  const typed: [string, () => unknown][] = [
    ["id", () => (rnd() < 0.9 ? Math.floor(rnd() * 1000) : randomScalar(rnd))],
    ["name", () => (rnd() < 0.9 ? pick(rnd, STRINGS) : randomScalar(rnd))],
    ["email", () => (rnd() < 0.8 ? pick(rnd, ["x@example.com", "bad", null, "a.b@c.d"]) : randomScalar(rnd))],
    ["when", () => (rnd() < 0.85 ? pick(rnd, STRINGS.slice(11, 15)) : randomScalar(rnd))],
    ["amount", () => (rnd() < 0.85 ? pick(rnd, NUMBERS) : randomScalar(rnd))],
    ["flag", () => (rnd() < 0.9 ? rnd() < 0.5 : randomScalar(rnd))],
    ["tags", () => (rnd() < 0.8 ? ["a", pick(rnd, STRINGS)] : rnd() < 0.5 ? [1] : randomScalar(rnd))],
    [
      "owner",
      () =>
        rnd() < 0.8
          ? { id: Math.floor(rnd() * 9), login: pick(rnd, STRINGS) }
          : rnd() < 0.5
            ? { login: "x" }
            : randomScalar(rnd),
    ],
    ["any", () => randomScalar(rnd)],
    ["nothing", () => randomScalar(rnd)],
  ];
  for (const [k, make] of typed) if (rnd() < 0.93) r[k] = make();
  if (rnd() < 0.1) r[pick(rnd, ["extra", "other", "__proto__", "constructor"])] = randomScalar(rnd);
  return r;
}

/** Feeds `texts` to two statistics: all parsed and checked, or counted from bytes where the check passes. */
function both(schema: unknown, texts: string[]) {
  const parsed = quality(schema);
  const counted = quality(schema);
  const byteSchema = compileByteSchema(schema ?? true, schema ? recordStringFormats(schema) : null);
  if (!byteSchema) throw new Error("the schema is not read by the byte check");
  const checker = new ByteChecker(
    byteSchema,
    counted.keepsExamples
      ? (name, value, start, end, type) => counted.takesExample(name, value, start, end, type)
      : null,
  );
  let passed = 0;
  for (const text of texts) {
    const row = parseJson(text) as Row;
    const errors = parsed.check(structuredClone(row));
    const b = Buffer.from(text);
    if (checker.check(b, 0, b.length)) {
      passed++;
      expect(errors, text).toEqual([]);
      const keys = Object.keys(row);
      expect(checker.names.slice(0, checker.count), text).toEqual(keys);
      expect(
        [...checker.types.slice(0, checker.count)].map((t) => TYPES[t]),
        text,
      ).toEqual(keys.map((k) => jsonType(row[k])));
      counted.checkMembers(checker.names, checker.types, 0, checker.count);
    } else counted.check(row);
  }
  // Without a schema, no report shows examples (they are drift's: quality.ts takesExample).
  const shown = (q: StreamQuality) => {
    const state = q.exportState();
    if (schema) return state;
    expect(q.drift()).toBeNull();
    return { ...state, fields: state.fields.map((f) => ({ ...f, examples: [] })) };
  };
  return { parsed: shown(parsed), counted: shown(counted), passed };
}

/**
 * `count` texts made by 1 to 3 mutations of `make()`'s (bytes of `alphabet`) that are still
 * canonical JSON objects: only those reach the check (json-spans.ts canonicalSpans).
 */
function canonicalMutations(
  rnd: () => number,
  make: () => string,
  alphabet: string,
  count: number,
): string[] {
  const texts: string[] = [];
  for (let i = 0; texts.length < count; i++) {
    const m = mutate(rnd, make(), alphabet, 1 + (i % 3));
    let v: unknown;
    try {
      v = parseJson(m);
    } catch {
      continue;
    }
    if (v && typeof v === "object" && !Array.isArray(v) && stringifyJson(v) === m) texts.push(m);
  }
  return texts;
}

describe("byte check", () => {
  it("reads the common part of JSON Schema and refuses the rest (the stream is then parsed)", () => {
    expect(compileByteSchema(SCHEMA)).not.toBeNull();
    expect(compileByteSchema(true)).not.toBeNull();
    for (const extra of [
      { $ref: "#/x" },
      { items: [{ type: "string" }] },
      { format: "uri" }, // no string formats given: only date-time and email
      { type: "strange" },
      { anyOf: [] },
      { multipleOf: 2 },
      { patternProperties: { "^a": {} } },
      { minProperties: 1 },
      { uniqueItems: true },
      { not: {} },
      { enum: [{ id: 1 }] }, // the root's enum (of objects)
      { properties: { a: { type: "string", maxLength: 1.5 } } },
      { properties: { a: { pattern: "(" } } },
      { properties: { a: { minimum: "1" } } },
      { additionalProperties: { $ref: "#" } },
    ])
      expect(compileByteSchema({ ...SCHEMA, ...extra }), JSON.stringify(extra)).toBeNull();
    const formats = recordStringFormats(SCHEMA);
    expect(compileByteSchema({ ...SCHEMA, format: "uri" }, formats)).not.toBeNull();
    // A number format is not checked on strings alone; an unknown one is not known.
    for (const format of ["int32", "no-such-format"])
      expect(compileByteSchema({ ...SCHEMA, properties: { a: { format } } }, formats), format).toBeNull();
    for (const extra of [
      { pattern: "^a" },
      { enum: [1, "a", null, true, 1e300, { o: 1 }] },
      { additionalProperties: false },
      { additionalProperties: { type: "string" } },
      { minimum: 0, exclusiveMaximum: 5 },
      { type: "integer", const: 1 },
      { maxLength: 3, minItems: 1, maxItems: 2 },
    ])
      expect(
        compileByteSchema({ ...SCHEMA, properties: { ...SCHEMA.properties, x: extra } }),
        JSON.stringify(extra),
      ).not.toBeNull();
    expect(compileByteSchema(false)).toBeNull();
  });

  it("passes only valid records, with their members; statistics equal to checking every record parsed (10,000 records)", () => {
    const rnd = seeded(17);
    const texts = Array.from({ length: 10_000 }, () => stringifyJson(randomRecord(rnd)));
    for (const schema of [SCHEMA, null, { type: "object", properties: { id: { type: "integer" } } }]) {
      const r = both(schema, texts);
      expect(r.counted).toEqual(r.parsed);
      // The check is taken (most records), and refuses some (invalid ones, big numbers, examples).
      expect(r.passed).toBeGreaterThan(500);
      expect(r.passed).toBeLessThan(texts.length);
    }
  });

  // A field the schema does not list is counted from bytes once its value is one of its examples
  // (quality.ts takesExample); an example kept whole though longer than the report cuts strings
  // (a big integer's digits) is not one for a string of the same text, which the report cuts.
  it("report examples: a value that is an example is counted from bytes; a long one is looked at", () => {
    const digits = "1".repeat(81);
    const schema = { type: "object", properties: { id: { type: "integer" } } };
    const texts = [
      `{"id":1,"x":${digits}}`,
      `{"id":2,"x":"${digits}"}`,
      `{"id":3,"x":true}`,
      `{"id":4,"x":true}`,
      `{"id":5,"x":"${digits}"}`,
    ];
    const r = both(schema, texts);
    expect(r.counted).toEqual(r.parsed);
    expect(r.parsed.fields.find((f) => f.name === "x")?.examples).toEqual([
      digits,
      `${"1".repeat(77)}...`,
      true,
    ]);
    // Record 4 repeats an example and record 5 comes after the third: both counted from bytes.
    expect(r.passed).toBe(2);
  });

  it("a record schema whose root allows no object is left to ajv (which refuses every record)", () => {
    for (const type of ["array", ["string", "null"], "integer"])
      expect(compileByteSchema({ type }), JSON.stringify(type)).toBeNull();
    const checker = new ByteChecker(compileByteSchema({ type: ["object", "null"] })!, null);
    expect(checker.check(Buffer.from('{"id":1}'), 0, 8)).toBe(true);
  });

  it("agrees on near-misses of valid records (30,000 mutations of canonical records)", () => {
    const rnd = seeded(23);
    const texts = canonicalMutations(
      rnd,
      () => stringifyJson(randomRecord(rnd)),
      '0123456789.-e"{}[],:\\ atnufl@TZ',
      30_000,
    );
    const r = both(SCHEMA, texts);
    expect(r.counted).toEqual(r.parsed);
    expect(r.passed).toBeGreaterThan(1000);
  });
});

/** A schema with the keywords that bound values: enum, const, lengths, patterns, ranges, formats, closed objects. */
const RICH = {
  $schema: "http://json-schema.org/draft-07/schema#",
  type: "object",
  required: ["id", "status"],
  properties: {
    id: { type: "integer", minimum: 1, maximum: 500 },
    status: { enum: ["open", "closed", "é", null, 3, 2.5, { o: 1 }] },
    code: { type: "string", minLength: 2, maxLength: 4, pattern: '^[a-zé😀"]+$' },
    score: { type: ["number", "string"], exclusiveMinimum: 0, exclusiveMaximum: 10, maxLength: 2 },
    kind: { const: "x", enum: ["x", "y"] },
    link: { type: "string", format: "uri" },
    day: { format: "date" },
    uid: { type: "string", format: "uuid" },
    tags: { type: "array", minItems: 1, maxItems: 3, items: { type: "string", maxLength: 2 } },
    meta: { type: "object", additionalProperties: { type: "integer", minimum: 0 } },
    strict: { type: "object", properties: { a: { type: "boolean" } }, additionalProperties: false },
    any: true,
  },
};

/** Per field of RICH: values within its bounds, and values just outside them (or of another type). */
const RICH_VALUES: Record<string, [unknown[], unknown[]]> = {
  id: [
    [1, 2, 250, 499, 500],
    [0, 501, -1, 2.5, "1", null],
  ],
  status: [
    ["open", "closed", "é", null, 3, 2.5],
    ["Open", "e", 4, true, { o: 1 }, ["open"]],
  ],
  code: [
    ["ab", "abc", "abcd", "éé", "😀😀", 'a"', 'é😀"a'],
    ["", "a", "abcde", "😀😀😀😀😀", "\u0001x", "\ud800a", "AB", 1],
  ],
  score: [
    [0.001, 5, 9.999, "5", "55", ""],
    [0, 10, 11, -3, "555", true],
  ],
  kind: [["x"], ["y", "z", null]],
  link: [
    ["http://example.com/a?b=1", "https://x.y/z#f"],
    ["not a uri", "http://a b", "", 7],
  ],
  day: [
    ["2024-02-29", 20240101, null],
    ["2023-02-29", "2024-13-01", "2024-1-01"],
  ],
  uid: [["123e4567-e89b-12d3-a456-426614174000"], ["123e4567-e89b-12d3-a456", "", null]],
  tags: [
    [["a"], ["a", "bb"], ["a", "b", "c"], ["é😀"]],
    [[], ["a", "b", "c", "d"], ["abc"], [1], "a"],
  ],
  meta: [
    [{}, { a: 1 }, { a: 0, b: 2 }],
    [{ a: -1 }, { a: "1" }, { a: 1.5 }, [], null],
  ],
  strict: [
    [{}, { a: true }, { a: false }],
    [{ a: 1 }, { b: true }, { a: false, b: 1 }, "x"],
  ],
};

/** A record near RICH: each field present most of the time, within its bounds most of the time. */
function richRecord(rnd: () => number): Row {
  const r: Row = {};
  for (const [k, [good, bad]] of Object.entries(RICH_VALUES))
    if (rnd() < 0.9) r[k] = structuredClone(pick(rnd, rnd() < 0.97 ? good : bad));
  if (rnd() < 0.3) r.any = randomScalar(rnd);
  if (rnd() < 0.05) r[pick(rnd, ["extra", "other"])] = randomScalar(rnd);
  return r;
}

describe("byte check: keywords that bound values", () => {
  it("agrees with ajv on 20,000 records near every bound, the root open and closed", () => {
    const rnd = seeded(41);
    const texts = Array.from({ length: 20_000 }, () => stringifyJson(richRecord(rnd)));
    for (const schema of [RICH, { ...RICH, additionalProperties: false }]) {
      const r = both(schema, texts);
      expect(r.counted).toEqual(r.parsed);
      // Most records pass; the ones with a value outside a bound (about a third) do not.
      expect(r.passed).toBeGreaterThan(texts.length / 2);
      expect(r.passed).toBeLessThan(texts.length - 2_000);
    }
  });

  it("passes records whose values are all within bounds (each keyword can say yes)", () => {
    const ok = [
      { id: 1, status: "open", code: "ab", score: 0.5, kind: "x", link: "http://e.com/", day: "2024-02-29" },
      { id: 500, status: null, code: 'é😀"a', score: "99", tags: ["a", "bb", "é"], meta: { a: 0, b: 9 } },
      { id: 2, status: 3, uid: "123e4567-e89b-12d3-a456-426614174000", strict: { a: true }, any: [1] },
      { id: 3, status: 2.5, code: "\u00e9\u00e9", strict: {} },
    ].map((r) => stringifyJson(r));
    const r = both({ ...RICH, additionalProperties: false }, ok);
    expect(r.passed).toBe(ok.length);
  });

  it("sends a value outside a bound to ajv, one keyword at a time", () => {
    const base = { id: 1, status: "open" };
    const bad: Row[] = [
      { id: 0 },
      { id: 501 },
      { status: "Open" },
      { status: { o: 1 } }, // valid (an enum value), but objects are not compared from bytes
      { code: "a" },
      { code: "abcde" },
      { code: "AB" },
      { code: "a\u0001" },
      { score: 0 },
      { score: 10 },
      { score: "abc" },
      { kind: "y" },
      { link: "not a uri" },
      { day: "2023-02-29" },
      { uid: "x" },
      { tags: [] },
      { tags: ["a", "b", "c", "d"] },
      { tags: ["abc"] },
      { meta: { a: -1 } },
      { strict: { b: true } },
      { extra: 1 },
    ];
    const schema = { ...RICH, additionalProperties: false };
    for (const extra of bad) {
      const text = stringifyJson({ ...base, ...extra });
      const r = both(schema, [text]);
      expect(r.passed, text).toBe(0);
      expect(r.counted).toEqual(r.parsed);
    }
  });

  it("agrees on near-misses (20,000 mutations of canonical records)", () => {
    const rnd = seeded(43);
    const texts = canonicalMutations(
      rnd,
      () => stringifyJson(richRecord(rnd)),
      '0123456789.-"{}[],:\\ abcdexyzé',
      20_000,
    );
    const r = both({ ...RICH, additionalProperties: false }, texts);
    expect(r.counted).toEqual(r.parsed);
    expect(r.passed).toBeGreaterThan(100);
  });
});

describe("byte check: a number's value read from its bytes", () => {
  it("is the value JSON.parse gives (5,000 random decimals of up to 15 digits at their own bounds)", () => {
    const rnd = seeded(5);
    for (let n = 0; n < 5_000; n++) {
      const digits = 1 + Math.floor(rnd() * 15);
      let text = String(Math.floor(rnd() * 9) + 1);
      for (let d = 1; d < digits; d++) text += String(Math.floor(rnd() * 10));
      const point = Math.floor(rnd() * digits);
      if (point > 0) text = `${text.slice(0, point)}.${text.slice(point)}`;
      if (point === 0 && rnd() < 0.5) text = `0.${text}`;
      if (rnd() < 0.3) text = `-${text}`;
      const x = Number(text);
      // Written as stringifyJson writes it (a trailing zero of a fraction is not: `1.50`).
      // More than 15 digits (a leading `0.` counts) is left to the parse.
      if (String(x) !== text || text.replace(/\D/g, "").length > 15) continue;
      const at = (schema: object) =>
        new ByteChecker(compileByteSchema({ properties: { x: schema } })!, null).check(
          Buffer.from(`{"x":${text}}`),
          0,
          text.length + 6,
        );
      expect(at({ minimum: x, maximum: x }), text).toBe(true);
      expect(at({ exclusiveMaximum: x }), text).toBe(false);
      expect(at({ exclusiveMinimum: x }), text).toBe(false);
    }
  });
});
