import { describe, expect, it } from "vitest";
import type { StreamPlan, ValidationPlan } from "../../src/compile/plan.js";
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
  const byteSchema = compileByteSchema(schema ?? true);
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

describe("byte check", () => {
  it("reads the common part of JSON Schema and refuses the rest (the stream is then parsed)", () => {
    expect(compileByteSchema(SCHEMA)).not.toBeNull();
    expect(compileByteSchema(true)).not.toBeNull();
    for (const extra of [
      { pattern: "^a" },
      { enum: [1] },
      { $ref: "#/x" },
      { additionalProperties: false },
      { minimum: 0 },
      { items: [{ type: "string" }] },
      { format: "uri" },
      { type: "integer", const: 1 },
      { type: "strange" },
      { anyOf: [] },
      { properties: { a: { type: "string", maxLength: 3 } } },
    ])
      expect(compileByteSchema({ ...SCHEMA, ...extra }), JSON.stringify(extra)).toBeNull();
    expect(
      compileByteSchema({ ...SCHEMA, properties: { ...SCHEMA.properties, x: { pattern: "a" } } }),
    ).toBeNull();
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
    const texts: string[] = [];
    for (let i = 0; texts.length < 30_000; i++) {
      const m = mutate(
        rnd,
        stringifyJson(randomRecord(rnd)),
        '0123456789.-e"{}[],:\\ atnufl@TZ',
        1 + (i % 3),
      );
      let v: unknown;
      try {
        v = parseJson(m);
      } catch {
        continue;
      }
      // Only canonical objects reach the check (json-spans.ts canonicalSpans).
      if (v && typeof v === "object" && !Array.isArray(v) && stringifyJson(v) === m) texts.push(m);
    }
    const r = both(SCHEMA, texts);
    expect(r.counted).toEqual(r.parsed);
    expect(r.passed).toBeGreaterThan(1000);
  });
});
