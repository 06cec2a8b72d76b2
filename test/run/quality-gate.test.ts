/** The data-quality gate (run/quality-gate.ts) on its own: when a stream is refused, and what it says. */
import { describe, expect, it } from "vitest";
import type { ValidationPlan } from "../../src/compile/plan.js";
import type { StreamQuality } from "../../src/records/quality.js";
import type { DriftReport } from "../../src/records/quality-types.js";
import { qualityGate } from "../../src/run/quality-gate.js";

const counts = (seen: number, invalid: number) => ({ seen, invalid }) as unknown as StreamQuality;
const validation = (maxInvalidRatio: number) => ({ maxInvalidRatio }) as ValidationPlan;
const drift = (over: Partial<DriftReport> = {}): DriftReport => ({
  policy: "fail",
  breached: true,
  new_fields: [],
  missing_fields: [],
  type_changes: [],
  always_null: [],
  ...over,
});

describe("qualityGate", () => {
  it("at the ratio passes; above it is a validation rejection saying the counts and both percentages", () => {
    expect(qualityGate(counts(20, 1), validation(0.05), null)).toBeNull();
    expect(qualityGate(counts(20, 2), validation(0.05), null)).toEqual({
      kind: "validation",
      message: "2 of 20 records invalid (10.0%), above max_invalid_ratio 5.0%",
    });
  });

  it("no records: nothing to refuse, whatever the ratio", () => {
    expect(qualityGate(counts(0, 0), validation(0), null)).toBeNull();
  });

  it("drift that breaches `fail` is a drift rejection naming the new fields and type changes", () => {
    const d = drift({
      new_fields: [
        { field: "a", count: 1, examples: [], first_record: "" },
        { field: "b", count: 1, examples: [], first_record: "" },
      ],
      type_changes: [{ field: "c", expected: ["string"], actual: { number: 1 } }],
    });
    expect(qualityGate(counts(10, 0), validation(0.5), d)).toEqual({
      kind: "drift",
      message: "schema drift (drift: fail): new fields a, b; type changes in c",
    });
    expect(
      qualityGate(
        counts(10, 0),
        validation(0.5),
        drift({ new_fields: [{ field: "a", count: 1, examples: [], first_record: "" }] }),
      )?.message,
    ).toBe("schema drift (drift: fail): new fields a");
    expect(
      qualityGate(
        counts(10, 0),
        validation(0.5),
        drift({ type_changes: [{ field: "c", expected: [], actual: {} }] }),
      )?.message,
    ).toBe("schema drift (drift: fail): type changes in c");
  });

  it("drift that does not breach is no rejection", () => {
    expect(qualityGate(counts(10, 0), validation(0.5), drift({ breached: false }))).toBeNull();
  });

  it("both: a validation rejection whose message says both", () => {
    const d = drift({ new_fields: [{ field: "a", count: 1, examples: [], first_record: "" }] });
    expect(qualityGate(counts(10, 9), validation(0.5), d)).toEqual({
      kind: "validation",
      message:
        "9 of 10 records invalid (90.0%), above max_invalid_ratio 50.0%; schema drift (drift: fail): new fields a",
    });
  });
});
