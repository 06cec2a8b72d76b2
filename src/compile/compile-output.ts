import path from "node:path";
import { DEFAULTS } from "../config/defaults.gen.js";
import type { Output, Validation } from "../config/pipeline-types.gen.js";
import { fillTemplate, parseTemplate } from "../config/templates.js";
import { defaultOutputPath, defaultQuarantinePath } from "./layout.js";
import type { OutputPlan, ValidationPlan } from "./plan.js";

const EXTENSIONS = {
  jsonl: "jsonl",
  json: "json",
  csv: "csv",
  sqlite: "db",
  postgres: "",
  duckdb: "duckdb",
  parquet: "parquet",
  singer: "singer",
} as const;

export function compileOutput(
  output: Output | undefined,
  ctx: { pipeline: string; stream: string; root: string; outDir: string },
): OutputPlan {
  const format = output?.format ?? DEFAULTS.output.format;
  const mode = output?.mode ?? DEFAULTS.output.mode;
  const fill = (template: string) =>
    fillTemplate(parseTemplate(template).parts, (ns) =>
      ns === "stream" ? ctx.stream : ns === "pipeline" ? ctx.pipeline : "",
    );
  let file: string;
  if (output?.path && format !== "postgres") {
    file = path.resolve(ctx.root, fill(output.path));
  } else {
    // postgres has no file: the path names the default output folder (where `--singer` quarantines).
    file = defaultOutputPath(ctx.outDir, ctx.pipeline, ctx.stream, format, EXTENSIONS[format]);
  }
  const plan: OutputPlan = { format, mode, path: file };
  plan.guard = {
    allowEmpty: output?.allow_empty ?? DEFAULTS.output.allow_empty,
    maxVolumeDrop: output?.max_volume_drop ?? DEFAULTS.output.max_volume_drop,
  };
  if (format === "csv")
    plan.csv = { escapeFormulas: output?.csv?.escape_formulas ?? DEFAULTS.output_csv.escape_formulas };
  if (format === "postgres" || format === "duckdb" || format === "parquet") {
    plan.table = {
      name: format === "parquet" ? ctx.stream : fill(output?.table ?? DEFAULTS.output.table),
      metadataColumns: output?.metadata_columns ?? DEFAULTS.output.metadata_columns,
      nested: format === "parquet" ? "json" : (output?.nested ?? DEFAULTS.output.nested),
    };
  }
  if (format === "postgres" || format === "duckdb" || format === "sqlite") plan.stateKey = ctx.pipeline;
  if (format === "postgres") {
    const schema = output?.schema ?? DEFAULTS.output.schema;
    const url = output?.url ?? "";
    plan.postgres = { url, schema };
    plan.where = `${describeDatabaseUrl(url)} table "${schema}"."${plan.table!.name}"`;
  }
  if (format === "singer") {
    plan.singer = { stdout: !output?.path };
    if (!output?.path) plan.where = "standard output (Singer)";
    plan.quarantine = defaultQuarantinePath(ctx.outDir, ctx.pipeline, ctx.stream);
  }
  return plan;
}

export function compileValidation(v: Validation | undefined): ValidationPlan {
  return {
    invalidRecords: v?.invalid_records ?? DEFAULTS.validation.invalid_records,
    maxInvalidRatio: v?.max_invalid_ratio ?? DEFAULTS.validation.max_invalid_ratio,
    drift: v?.drift ?? DEFAULTS.validation.drift,
  };
}

/**
 * A database URL as it may be shown: scheme, user, host, port and database, never the password
 * or the query (which may carry one); `(no url)` or `(a url that does not parse)` otherwise.
 */
export function describeDatabaseUrl(url: string): string {
  if (!url) return "(no url)";
  try {
    const u = new URL(url);
    const user = u.username ? `${decodeURIComponent(u.username)}@` : "";
    return `${u.protocol}//${user}${u.host}${u.pathname}`;
  } catch {
    return "(a url that does not parse)";
  }
}
