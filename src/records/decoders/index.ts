import type { ResponsePlan, StreamPlan } from "../../compile/plan.js";
import { CsvDecoder } from "./csv.js";
import type { RecordDecoder } from "./decoder.js";
import { JsonlDecoder } from "./jsonl.js";

export type { RecordDecoder } from "./decoder.js";

/** The decoder of a streamed format (`jsonl`, `csv`); null for `json` (buffered, read whole). */
export function createDecoder(response: ResponsePlan | undefined): RecordDecoder | null {
  if (response?.format === "jsonl") return new JsonlDecoder();
  if (response?.format === "csv") return new CsvDecoder(response.csv);
  return null;
}

export function isStreamed(response: ResponsePlan | undefined): boolean {
  return response?.format === "jsonl" || response?.format === "csv";
}

/**
 * Whether a JSON lines stream's records may be written as their lines came (when these are
 * canonical: src/shared/canonical-json.ts): the output is JSON and no step of `fields`, `exclude`,
 * `flatten` or `include_parent` makes a new record (`filter` only drops records). The record a
 * line is passed with must still be the one written (pull.ts and record-lines.ts check that shaping returned it).
 */
export function passesLinesThrough(
  stream: Pick<StreamPlan, "response" | "fields" | "exclude" | "flatten" | "includeParent">,
  output: StreamPlan["output"] | null,
): boolean {
  return (
    stream.response?.format === "jsonl" &&
    (output === null || output.format === "jsonl" || output.format === "json") &&
    shapingKeepsRecords(stream)
  );
}

/** No step of `fields`, `exclude`, `flatten` or `include_parent`: shaping returns each record itself. */
export function shapingKeepsRecords(
  stream: Pick<StreamPlan, "fields" | "exclude" | "flatten" | "includeParent">,
): boolean {
  return !stream.fields && !stream.exclude && !stream.flatten && !stream.includeParent;
}
