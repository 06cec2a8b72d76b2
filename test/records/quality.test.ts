/**
 * Validation and drift statistics of one stream (records/quality.ts) on their own: the counts the
 * quality gate and the report are built from.
 */
import { describe, expect, it } from "vitest";
import type { StreamPlan, ValidationPlan } from "../../src/compile/plan.js";
import { FIELD_ERRORS } from "../../src/records/field-specs.js";
import { MAX_TRACKED_FIELDS, StreamQuality } from "../../src/records/quality.js";
import type { Row } from "../../src/records/shape.js";

const policy = (drift: ValidationPlan["drift"] = "warn"): ValidationPlan => ({
  invalidRecords: "skip",
  maxInvalidRatio: 0,
  drift,
});

function quality(
  schema: Record<string, unknown> | null,
  primaryKey: string[] | null = null,
  drift: ValidationPlan["drift"] = "warn",
): StreamQuality {
  const stream = { name: "s", schema: schema && { file: null, schema }, primaryKey } as unknown as StreamPlan;
  return new StreamQuality(stream, policy(drift));
}

const people = {
  type: "object",
  properties: { id: { type: "integer" }, name: { type: "string" }, score: { type: "number" } },
  required: ["id"],
};

describe("StreamQuality.check", () => {
  it("counts records seen, valid and invalid, and returns the errors of an invalid one", () => {
    const q = quality(people, ["id"]);
    expect(q.hasSchema).toBe(true);
    expect(q.check({ id: 1, name: "a" })).toEqual([]);
    const errors = q.check({ id: 2, name: 5 });
    expect(errors).toEqual([expect.objectContaining({ path: "/name", keyword: "type", expected: "string" })]);
    expect(q.check({ name: "c" })).toEqual([expect.objectContaining({ keyword: "required" })]);
    expect([q.seen, q.valid, q.invalid]).toEqual([3, 1, 2]);
    expect(q.errorGroups().map((g) => [g.field, g.keyword, g.count, g.examples[0]?.record_id])).toEqual([
      ["/id", "required", 1, "#3"],
      ["/name", "type", 1, "2"],
    ]);
  });

  it("without a schema every record is valid and there is no drift", () => {
    const q = quality(null);
    expect(q.hasSchema).toBe(false);
    expect(q.draft).toBeNull();
    expect(q.check({ id: "x" })).toEqual([]);
    expect([q.seen, q.valid, q.invalid]).toEqual([1, 1, 0]);
    expect(q.drift()).toBeNull();
  });

  it("names the schema's draft", () => {
    expect(quality(people).draft).toBe("draft-07");
    expect(quality({ ...people, $schema: "https://json-schema.org/draft/2020-12/schema" }).draft).toBe(
      "2020-12",
    );
  });

  it("a big integer (BigInt) is an integer; a record with one that is invalid otherwise stays invalid", () => {
    const q = quality(people);
    expect(q.check({ id: 12345678901234567890n })).toEqual([]);
    expect(q.check({ id: 12345678901234567890n, name: 1 })).toHaveLength(1);
    expect([q.valid, q.invalid]).toEqual([1, 1]);
  });

  it("`if` errors are not reported, only the `then` that failed", () => {
    // Built from JSON: an object literal with a `then` key would look like a promise to the linter.
    const q = quality(
      JSON.parse('{"type":"object","if":{"properties":{"kind":{"const":"a"}}},"then":{"required":["a"]}}'),
    );
    expect(q.check({ kind: "a" }).map((e) => e.keyword)).toEqual(["required"]);
  });

  it("a field whose type did not convert makes the record invalid, grouped under field/<name>", () => {
    const q = quality(null, ["id"]);
    const row = { id: 7, at: "soon" } as Row;
    (row as Record<symbol, unknown>)[FIELD_ERRORS] = [
      { field: "at", type: "date-time", value: "soon", message: "not a date" },
    ];
    expect(q.check(row)).toEqual([expect.objectContaining({ path: "field/at", keyword: "convert" })]);
    expect([q.seen, q.valid, q.invalid]).toEqual([1, 0, 1]);
    expect(q.errorGroups()[0]).toMatchObject({ field: "field/at", count: 1, examples: [{ record_id: "7" }] });
  });
});

describe("StreamQuality.recordId", () => {
  it("the primary key's values joined by /, objects as JSON; a missing or null part falls back to the position", () => {
    const q = quality(null, ["a", "b"]);
    expect(q.recordId({ a: 1, b: "x" }, 4)).toBe("1/x");
    expect(q.recordId({ a: { k: 1 }, b: 2 }, 4)).toBe('{"k":1}/2');
    expect(q.recordId({ a: 1 }, 4)).toBe("#4");
    expect(q.recordId({ a: 1, b: null }, 5)).toBe("#5");
    expect(quality(null).recordId({ a: 1 }, 6)).toBe("#6");
  });

  it("the first record with a value of a new field is named by its id", () => {
    const q = quality(people, ["id"]);
    q.check({ id: 1, extra: null });
    q.check({ id: 2, extra: "v" });
    q.check({ id: 3, extra: "w" });
    expect(q.drift()?.new_fields[0]).toMatchObject({ field: "extra", first_record: "2" });
  });
});

describe("StreamQuality.fieldStats", () => {
  it("schema fields first (in schema order, absent ones at 0), then others as first seen; types as first seen", () => {
    const q = quality(people);
    q.check({ zeta: true, id: 1, name: null });
    q.check({ id: 2.5, alpha: [1], name: "b" });
    q.check({ name: "c", id: 3n, zeta: { x: 1 } });
    expect(q.fieldStats()).toEqual([
      { name: "id", in_schema: true, present: 3, nulls: 0, types: { integer: 2, number: 1 } },
      { name: "name", in_schema: true, present: 3, nulls: 1, types: { null: 1, string: 2 } },
      { name: "score", in_schema: true, present: 0, nulls: 0, types: {} },
      { name: "zeta", in_schema: false, present: 2, nulls: 0, types: { boolean: 1, object: 1 } },
      { name: "alpha", in_schema: false, present: 1, nulls: 0, types: { array: 1 } },
    ]);
  });

  it("records whose keys come in another order, or with fewer keys, are counted to the right fields", () => {
    const q = quality(null);
    q.check({ a: 1, b: "x", c: true });
    q.check({ b: "y", a: 2 });
    q.check({ c: false, a: null, b: "z" });
    q.check({ a: 3, b: "w", c: true });
    const stats = Object.fromEntries(q.fieldStats().map((f) => [f.name, [f.present, f.nulls, f.types]]));
    expect(stats).toEqual({
      a: [4, 1, { integer: 3, null: 1 }],
      b: [4, 0, { string: 4 }],
      c: [3, 0, { boolean: 3 }],
    });
  });

  it(`past ${MAX_TRACKED_FIELDS} names, new fields are counted but not tracked`, () => {
    const q = quality(null);
    const row: Row = {};
    for (let i = 0; i < MAX_TRACKED_FIELDS + 2; i++) row[`k${i}`] = i;
    q.check(row);
    expect(q.untrackedFields).toBe(2);
    expect(q.fieldStats()).toHaveLength(MAX_TRACKED_FIELDS);
    // The untracked names do not shift the tracked ones: the next record counts k0 and k1 again.
    q.check({ k0: 1, k1: 2, [`k${MAX_TRACKED_FIELDS}`]: 3 });
    expect(q.untrackedFields).toBe(3);
    expect(
      q
        .fieldStats()
        .slice(0, 2)
        .map((f) => f.present),
    ).toEqual([2, 2]);
  });
});

describe("StreamQuality.drift", () => {
  it("null without a schema with properties", () => {
    const q = quality({ type: "object" });
    q.check({ a: 1 });
    expect(q.drift()).toBeNull();
  });

  it("new fields counted where they have a value, most frequent first, with up to 3 distinct examples", () => {
    const q = quality(people, ["id"]);
    const long = "x".repeat(100);
    q.check({ id: 1, rare: 1, often: "a" });
    q.check({ id: 2, often: "a", nulls: null });
    q.check({ id: 3, often: "b", nulls: null });
    q.check({ id: 4, often: long });
    q.check({ id: 5, often: "c" });
    q.check({ id: 6, often: null });
    q.check({ id: 7, edge: "y".repeat(80) }); // 80 characters: kept whole
    const d = q.drift()!;
    expect(d.new_fields).toEqual([
      { field: "often", count: 5, examples: ["a", "b", `${"x".repeat(77)}...`], first_record: "1" },
      { field: "rare", count: 1, examples: [1], first_record: "1" },
      { field: "edge", count: 1, examples: ["y".repeat(80)], first_record: "7" },
    ]);
    expect(d.always_null).toEqual(["nulls"]);
    expect(d.missing_fields).toEqual(["name", "score"]);
    expect(d.type_changes).toEqual([]);
  });

  it('examples are distinct as JSON: `1` and `"1"` are two, equal objects one, and a big integer\'s digits equal the string of them', () => {
    const q = quality(people);
    for (const v of [1, "1", 1, "1", true]) q.check({ id: 1, mixed: v });
    for (const v of [{ a: 1 }, { a: 1 }, [1], [1], "[1]"]) q.check({ id: 1, nested: v });
    for (const v of [12345678901234567890n, "12345678901234567890", 2]) q.check({ id: 1, digits: v });
    const examples = Object.fromEntries(q.drift()!.new_fields.map((f) => [f.field, f.examples]));
    expect(examples).toEqual({
      mixed: [1, "1", true],
      nested: [{ a: 1 }, [1], "[1]"],
      digits: ["12345678901234567890", 2],
    });
  });

  it("examples of big integers are their digits", () => {
    const q = quality(people);
    q.check({ id: 1, big: 12345678901234567890n });
    expect(q.drift()!.new_fields[0].examples).toEqual(["12345678901234567890"]);
  });

  it("type changes list the declared types and the counts found; an integer under `number` is a number", () => {
    const q = quality({
      type: "object",
      properties: {
        id: { type: "integer" },
        score: { type: "number" },
        tag: { type: ["string", "null"] },
        any: {},
      },
    });
    q.check({ id: 1, score: 1, tag: "a", any: 1 });
    q.check({ id: "2", score: 2.5, tag: null, any: "x" });
    q.check({ id: 3, score: "high", tag: 4, any: null });
    const d = q.drift()!;
    expect(d.type_changes).toEqual([
      { field: "id", expected: ["integer"], actual: { integer: 2, string: 1 } },
      { field: "score", expected: ["number"], actual: { number: 2, string: 1 } },
      { field: "tag", expected: ["string", "null"], actual: { string: 1, null: 1, integer: 1 } },
    ]);
  });

  it("a number field holding only integers and numbers is no change; integers are not folded under `integer`", () => {
    const q = quality({
      type: "object",
      properties: { score: { type: "number" }, n: { type: ["integer", "number"] } },
    });
    q.check({ score: 1, n: 1 });
    q.check({ score: 1.5, n: 1.5 });
    expect(q.drift()!.type_changes).toEqual([]);
    q.check({ score: true, n: "x" });
    expect(q.drift()!.type_changes).toEqual([
      { field: "score", expected: ["number"], actual: { number: 2, boolean: 1 } },
      { field: "n", expected: ["integer", "number"], actual: { integer: 1, number: 1, string: 1 } },
    ]);
  });

  it("a schema field null in every record is always_null; one null only sometimes is not", () => {
    const q = quality(people);
    q.check({ id: 1, name: null, score: null });
    q.check({ id: 2, name: null, score: 3 });
    expect(q.drift()!.always_null).toEqual(["name"]);
  });

  it("breached only under `fail` with new fields or type changes; missing or always-null fields do not breach", () => {
    const withNew = quality(people, null, "fail");
    withNew.check({ id: 1, extra: 1 });
    expect(withNew.drift()).toMatchObject({ policy: "fail", breached: true });

    const withChange = quality(people, null, "fail");
    withChange.check({ id: "1" });
    expect(withChange.drift()).toMatchObject({ policy: "fail", breached: true });

    const loose = {
      type: "object",
      properties: { id: { type: "integer" }, note: {}, score: { type: "number" } },
    };
    const onlyMissing = quality(loose, null, "fail");
    onlyMissing.check({ id: 1, note: null });
    expect(onlyMissing.drift()).toMatchObject({
      policy: "fail",
      breached: false,
      missing_fields: ["score"],
      always_null: ["note"],
    });

    const warned = quality(people, null, "warn");
    warned.check({ id: 1, extra: 1 });
    expect(warned.drift()).toMatchObject({ policy: "warn", breached: false });
  });
});

describe("StreamQuality.exportState / importState", () => {
  /** What a report is built from. */
  const summary = (q: StreamQuality) => ({
    seen: q.seen,
    valid: q.valid,
    invalid: q.invalid,
    untracked: q.untrackedFields,
    fields: q.fieldStats(),
    drift: q.drift(),
    errors: q.errorGroups(),
  });
  const wide: Row = { id: 3 };
  for (let i = 0; i < MAX_TRACKED_FIELDS + 1; i++) wide[`k${i}`] = i;
  const first: Row[] = [{ id: 1, name: "a", extra: "x" }, { id: "two", name: 2 }, wide];
  const rest: Row[] = [{ id: 4, name: "d", extra: "y" }, { id: "five" }, { id: 6, late: 1 }];

  it("a record worker continues from the statistics handed over, and hands back the same counts as one pass", () => {
    const one = quality(people, ["id"], "fail");
    for (const r of [...first, ...rest]) one.check(r);

    const main = quality(people, ["id"], "fail");
    for (const r of first) main.check(r);
    // The worker had counted other records before (its counts are replaced, its position cache too).
    const worker = quality(people, ["id"], "fail");
    worker.check({ id: "x", name: 9, extra: true, other: 1 });
    worker.importState(structuredClone(main.exportState()));
    for (const r of rest) worker.check(r);
    expect(summary(worker)).toEqual(summary(one));
    main.importState(structuredClone(worker.exportState()));

    expect(summary(main)).toEqual(summary(one));
    expect(main.untrackedFields).toBeGreaterThan(0);
    expect(main.errorGroups().length).toBeGreaterThan(0);
  });
});
