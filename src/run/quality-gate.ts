import type { ValidationPlan } from "../compile/plan.js";
import type { StreamQuality } from "../records/quality.js";
import type { DriftReport } from "../records/quality-types.js";

/** Why the data-quality policy refuses to commit a stream: the invalid ratio, `drift: fail`. */
export interface Rejection {
  kind: "validation" | "drift";
  message: string;
}

export function qualityGate(
  quality: StreamQuality,
  validation: ValidationPlan,
  drift: DriftReport | null,
): Rejection | null {
  const ratio = quality.seen ? quality.invalid / quality.seen : 0;
  const reasons: string[] = [];
  const tooMany = ratio > validation.maxInvalidRatio;
  if (tooMany) {
    reasons.push(
      `${quality.invalid} of ${quality.seen} records invalid (${(ratio * 100).toFixed(1)}%), above max_invalid_ratio ${(validation.maxInvalidRatio * 100).toFixed(1)}%`,
    );
  }
  if (drift?.breached) {
    const parts = [
      drift.new_fields.length ? `new fields ${drift.new_fields.map((f) => f.field).join(", ")}` : "",
      drift.type_changes.length ? `type changes in ${drift.type_changes.map((f) => f.field).join(", ")}` : "",
    ].filter(Boolean);
    reasons.push(`schema drift (drift: fail): ${parts.join("; ")}`);
  }
  if (!reasons.length) return null;
  return { kind: tooMany ? "validation" : "drift", message: reasons.join("; ") };
}
