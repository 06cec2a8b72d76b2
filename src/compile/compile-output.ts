import path from "node:path";
import type { Output, Validation } from "../config/pipeline-types.gen.js";
import { fillTemplate, parseTemplate } from "../config/templates.js";
import type { OutputPlan, ValidationPlan } from "./plan.js";

const EXTENSIONS = {
  jsonl: "jsonl",
  json: "json",
  csv: "csv",
  sqlite: "db",
  duckdb: "duckdb",
  parquet: "parquet",
} as const;

export function compileOutput(
  output: Output | undefined,
  ctx: { pipeline: string; stream: string; root: string; outDir: string },
): OutputPlan {
  const format = output?.format ?? "jsonl";
  const mode = output?.mode ?? "replace";
  const fill = (text: string) =>
    fillTemplate(parseTemplate(text).parts, (ns) =>
      ns === "stream" ? ctx.stream : ns === "pipeline" ? ctx.pipeline : "",
    );
  let file: string;
  if (output?.path) {
    file = path.resolve(ctx.root, fill(output.path));
  } else if (format === "sqlite" || format === "duckdb") {
    file = path.join(ctx.outDir, `${ctx.pipeline}.${EXTENSIONS[format]}`);
  } else {
    file = path.join(ctx.outDir, ctx.pipeline, `${ctx.stream}.${EXTENSIONS[format]}`);
  }
  const plan: OutputPlan = { format, mode, path: file };
  if (format === "csv") plan.csv = { escapeFormulas: output?.csv?.escape_formulas ?? false };
  if (format === "duckdb") {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the schema's default, a template
    plan.table = fill(output?.table ?? "${stream}");
    plan.nested = output?.nested ?? "json";
  }
  if (format === "duckdb" || format === "parquet") plan.metadataColumns = output?.metadata_columns ?? true;
  return plan;
}

export function compileValidation(v: Validation | undefined): ValidationPlan {
  return {
    invalidRecords: v?.invalid_records ?? "skip",
    maxInvalidRatio: v?.max_invalid_ratio ?? 0.05,
    drift: v?.drift ?? "warn",
  };
}
