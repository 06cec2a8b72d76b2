import type { OutputPlan } from "../compile/plan.js";
import { openJsonlWriter, openJsonWriter } from "./json-writers.js";
import type { RecordWriter, WriterContext, WriterFactory } from "./writer.js";

/** Output formats: `format` → writer factory. */
export const writers: Record<OutputPlan["format"], WriterFactory> = {
  jsonl: openJsonlWriter,
  json: openJsonWriter,
  csv: async () => {
    throw new Error("csv output is not available yet");
  },
  sqlite: async () => {
    throw new Error("sqlite output is not available yet");
  },
};

export function openWriter(output: OutputPlan, ctx: WriterContext): Promise<RecordWriter> {
  return writers[output.format](output, ctx);
}
