import type { OutputPlan } from "../compile/plan.js";
import { AtomicFile } from "./atomic-file.js";
import type { RecordWriter, WriterContext } from "./writer.js";

/** One JSON object per line. */
export async function openJsonlWriter(output: OutputPlan, ctx: WriterContext): Promise<RecordWriter> {
  const file = await AtomicFile.create(output.path, ctx.runId);
  return {
    write: (record) => file.write(`${JSON.stringify(record)}\n`),
    commit: () => file.commit(),
    abort: () => file.abort(),
  };
}

/** One JSON array, one record per line inside it. */
export async function openJsonWriter(output: OutputPlan, ctx: WriterContext): Promise<RecordWriter> {
  const file = await AtomicFile.create(output.path, ctx.runId);
  let first = true;
  return {
    write: (record) => {
      const text = `${first ? "[\n" : ",\n"}${JSON.stringify(record)}`;
      first = false;
      return file.write(text);
    },
    commit: async () => {
      await file.write(first ? "[]\n" : "\n]\n");
      await file.commit();
    },
    abort: () => file.abort(),
  };
}
