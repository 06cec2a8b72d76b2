/**
 * recordLines (src/run/record-workers/record-lines.ts) writes a JSON lines body's canonical line
 * as it came only for a record that shaping returned unchanged; a record that `fields`, `exclude`
 * or `flatten` made anew is serialized.
 */
import { describe, expect, it } from "vitest";
import type { StreamPlan, ValidationPlan } from "../../src/compile/plan.js";
import { StreamQuality } from "../../src/records/quality.js";
import { compileShaper, type ShapePlan } from "../../src/records/shape.js";
import { recordLines } from "../../src/run/record-workers/record-lines.js";

const validation: ValidationPlan = { invalidRecords: "skip", maxInvalidRatio: 1, drift: "warn" };
function maker(plan: Partial<ShapePlan>) {
  const p = {
    name: "s",
    records: "$",
    fields: null,
    flatten: null,
    includeParent: null,
    ...plan,
  } as ShapePlan;
  const quality = new StreamQuality({ schema: null, primaryKey: null } as unknown as StreamPlan, validation);
  return { shaper: compileShaper(p), quality, skip: true, keyOf: null, cursorField: null };
}

describe("recordLines with a body's lines", () => {
  // A stand-in line that is not the record's JSON shows which of the two was written.
  const records = [
    { a: 1, b: { c: 2 } },
    { a: 3, b: { c: 4 } },
  ];
  const texts = ["LINE-0", undefined];

  it("writes the line of a record shaping left as it was; a record without one is serialized", () => {
    expect(recordLines(maker({}), records, texts).text).toBe('LINE-0\n{"a":3,"b":{"c":4}}\n');
  });

  it("a filter only drops: the records it keeps still get their own lines", () => {
    const out = recordLines(maker({ filter: "@.a > 1" }), records, ["LINE-0", "LINE-1"]);
    expect(out.text).toBe("LINE-1\n");
    expect(out.filtered).toBe(1);
  });

  it("serializes a record that shaping made anew", () => {
    expect(recordLines(maker({ exclude: [["b"]] }), records, texts).text).toBe('{"a":1}\n{"a":3}\n');
    expect(recordLines(maker({ flatten: { separator: "_" } }), records, texts).text).toBe(
      '{"a":1,"b_c":2}\n{"a":3,"b_c":4}\n',
    );
  });
});
