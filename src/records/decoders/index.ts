import type { ResponsePlan } from "../../compile/plan.js";
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
