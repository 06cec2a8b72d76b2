import type { OutputPlan } from "../compile/plan.js";
import type { Row } from "../records/shape.js";

/** Writes one stream's records; nothing is visible under the real name before `commit`. */
export interface RecordWriter {
  /** May return a promise when the writer wants the producer to wait (backpressure). */
  write(record: Row): Promise<void> | undefined;
  commit(): Promise<void>;
  abort(): Promise<void>;
  /** Records dropped in this run because a later one had the same primary key. */
  duplicates?(): number;
  /**
   * The data-quality policy refused this run: keep its records beside the target under a name
   * that says so, leave the target untouched, and return where they went.
   */
  keepRejected?(): Promise<string>;
}

export interface WriterContext {
  runId: string;
  stream: string;
  /** Column order for tabular formats: the schema's properties, when there is a schema. */
  columns: string[] | null;
  primaryKey: string[] | null;
}

export type WriterFactory = (output: OutputPlan, ctx: WriterContext) => Promise<RecordWriter>;
