import path from "node:path";
import type { OutputPlan } from "../compile/plan.js";
import type { RecordError } from "../records/quality.js";
import type { Row } from "../records/shape.js";

/** Writes one stream's records; nothing is visible under the real name before `commit`. */
export interface RecordWriter {
  /** May return a promise when the writer wants the producer to wait (backpressure). */
  write(record: Row): Promise<void> | undefined;
  commit(): Promise<void>;
  abort(): Promise<void>;
  /**
   * With a primary key: how many records so far repeated a key already written in this run
   * (each replaced the earlier record: the last one is kept).
   */
  duplicates?(): number;
  /**
   * The data-quality policy refused this run: keep its records beside the target under a name
   * that says so (`<name>.rejected-<run-id>.<ext>`), leave the target untouched, and return where
   * they went. Without it, a rejected run is aborted.
   */
  keepRejected?(): Promise<string>;
  /** What the commit did that the report should say (columns added, types kept). */
  warnings?(): string[];
  /**
   * Database outputs keep invalid records in a table (`<table>__invalid`) instead of the
   * quarantine file: written with the output, replaced when it commits.
   */
  writeInvalid?(entry: { record_id: string; errors: RecordError[]; record: Row }): Promise<void> | undefined;
  /** Where `writeInvalid` puts them, for the report. */
  quarantineName?(): string;
}

export interface WriterContext {
  runId: string;
  stream: string;
  /** Column order for tabular formats: the schema's properties, when there is a schema. */
  columns: string[] | null;
  primaryKey: string[] | null;
  /**
   * The stream's JSON Schema for records, when there is one: sqlite types its columns from the
   * properties' `type`. Optional; without it, types come from the values seen.
   */
  schema?: Record<string, unknown> | null;
  /** The stream's drift policy: a database output refuses a column type change under `fail`. */
  drift?: "warn" | "fail" | "ignore";
}

export type WriterFactory = (output: OutputPlan, ctx: WriterContext) => Promise<RecordWriter>;

/** `out/p/items.jsonl` → `out/p/items.rejected-<run-id>.jsonl`: beside the target, named for what it is. */
export function rejectedPath(target: string, runId: string): string {
  const ext = path.extname(target);
  return path.join(path.dirname(target), `${path.basename(target, ext)}.rejected-${runId}${ext}`);
}
