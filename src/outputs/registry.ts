import type { OutputPlan } from "../compile/plan.js";
import { openJsonlWriter, openJsonWriter } from "./json-writers.js";
import { loadSqliteWriter } from "./load-sqlite.js";
import type { RecordWriter, WriterContext, WriterFactory } from "./writer.js";

/**
 * Output formats: `format` → writer factory. Every factory handles the three modes
 * (`replace`, `append`, `merge`; see merge.ts for their semantics) and commits atomically.
 */
export const writers: Record<OutputPlan["format"], WriterFactory> = {
  jsonl: openJsonlWriter,
  json: openJsonWriter,
  // Loaded when used: better-sqlite3 is a native module and costs start-up time for every run.
  csv: async (output, ctx) => (await import("./csv-writer.js")).openCsvWriter(output, ctx),
  sqlite: async (output, ctx) => (await loadSqliteWriter()).openSqliteWriter(output, ctx),
  // pg is loaded only by the pipelines that write PostgreSQL.
  postgres: async (output, ctx) => (await import("./postgres-writer.js")).openPostgresWriter(output, ctx),
  singer: async (output, ctx) => (await import("./singer-writer.js")).openSingerWriter(output, ctx),
  // DuckDB (a native module too) is loaded only by runs that write it.
  duckdb: async (output, ctx) => (await import("./duckdb-writer.js")).openDuckdbWriter(output, ctx),
  parquet: async (output, ctx) => (await import("./parquet-writer.js")).openParquetWriter(output, ctx),
};

const MODES: readonly OutputPlan["mode"][] = ["replace", "append", "merge"];

export function openWriter(output: OutputPlan, ctx: WriterContext): Promise<RecordWriter> {
  const factory = Object.hasOwn(writers, output.format) ? writers[output.format] : undefined;
  if (!factory) {
    return Promise.reject(
      new Error(`unknown output format \`${output.format}\`; use one of ${Object.keys(writers).join(", ")}`),
    );
  }
  if (!MODES.includes(output.mode)) {
    return Promise.reject(
      new Error(`unknown output mode \`${output.mode}\`; use one of ${MODES.join(", ")}`),
    );
  }
  return factory(output, ctx);
}
