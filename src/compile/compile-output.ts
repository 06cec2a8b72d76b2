import path from "node:path";
import { DEFAULTS } from "../config/defaults.gen.js";
import type { Output, Validation } from "../config/pipeline-types.gen.js";
import { fillTemplate, parseTemplate } from "../config/templates.js";
import type { OutputPlan, ValidationPlan } from "./plan.js";

const EXTENSIONS = { jsonl: "jsonl", json: "json", csv: "csv", sqlite: "db" } as const;

export function compileOutput(
  output: Output | undefined,
  ctx: { pipeline: string; stream: string; root: string; outDir: string },
): OutputPlan {
  const format = output?.format ?? DEFAULTS.output.format;
  const mode = output?.mode ?? DEFAULTS.output.mode;
  let file: string;
  if (output?.path) {
    const filled = fillTemplate(parseTemplate(output.path).parts, (ns) =>
      ns === "stream" ? ctx.stream : ns === "pipeline" ? ctx.pipeline : "",
    );
    file = path.resolve(ctx.root, filled);
  } else if (format === "sqlite") {
    file = path.join(ctx.outDir, `${ctx.pipeline}.db`);
  } else {
    file = path.join(ctx.outDir, ctx.pipeline, `${ctx.stream}.${EXTENSIONS[format]}`);
  }
  const plan: OutputPlan = { format, mode, path: file };
  plan.guard = {
    allowEmpty: output?.allow_empty ?? DEFAULTS.output.allow_empty,
    maxVolumeDrop: output?.max_volume_drop ?? DEFAULTS.output.max_volume_drop,
  };
  if (format === "csv") plan.csv = { escapeFormulas: output?.csv?.escape_formulas ?? false };
  return plan;
}

export function compileValidation(v: Validation | undefined): ValidationPlan {
  return {
    invalidRecords: v?.invalid_records ?? DEFAULTS.validation.invalid_records,
    maxInvalidRatio: v?.max_invalid_ratio ?? DEFAULTS.validation.max_invalid_ratio,
    drift: v?.drift ?? DEFAULTS.validation.drift,
  };
}
