import type { OutputPlan } from "../compile/plan.js";
import type { Row } from "../records/shape.js";

/** Writes one stream's records; nothing is visible under the real name before `commit`. */
export interface RecordWriter {
  /** May return a promise when the writer wants the producer to wait (backpressure). */
  write(record: Row): Promise<void> | undefined;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface WriterContext {
  runId: string;
  stream: string;
  /** Column order for tabular formats: the schema's properties, when there is a schema. */
  columns: string[] | null;
  primaryKey: string[] | null;
}

export type WriterFactory = (output: OutputPlan, ctx: WriterContext) => Promise<RecordWriter>;
