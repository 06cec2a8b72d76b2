import type { Key } from "../../outputs/merge.js";
import type { StreamQuality } from "../../records/quality.js";
import type { Row, Shaper } from "../../records/shape.js";
import { stringifyJson } from "../../shared/json-text.js";
import { CursorTracker } from "../incremental.js";
import type { LinesChunk } from "./streamed-types.js";

/** What turns a stream's records into a LinesChunk (built once per stream, in any thread). */
export interface LineMaker {
  shaper: Shaper;
  quality: StreamQuality;
  /** `invalid_records: skip`: invalid records go to the quarantine, not the output. */
  skip: boolean;
  keyOf: ((r: Row) => Key | null) | null;
  cursorField: string | null;
}

/**
 * RecordSink.accept and the JSON lines writer, for records serialized away from the sink (a page
 * or an export's unit): shaped, filtered, checked (the stream's statistics), quarantine entries
 * (not yet redacted: the sink masks them), the JSON lines with each record's key and byte length
 * for primary-key de-duplication, and the largest cursor value. `text` is a string. `texts`: a
 * JSON lines body's canonical lines (JsonlDecoder), written for the records shaping left as they were.
 */
export function recordLines(
  m: LineMaker,
  records: readonly unknown[],
  texts?: readonly (string | undefined)[],
): LinesChunk {
  const { shaper, quality, keyOf } = m;
  const cursor = m.cursorField ? new CursorTracker(m.cursorField) : null;
  const keys: (Key | null)[] | null = keyOf ? [] : null;
  const lengths: number[] | null = keyOf ? [] : null;
  const quarantined: string[] = [];
  let text = "";
  let written = 0;
  let valid = 0;
  let invalid = 0;
  let filtered = 0;
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    const row = shaper.shape(record);
    if (row === null) {
      filtered++;
      continue;
    }
    const errors = quality.check(row);
    if (errors.length) {
      invalid++;
      if (m.skip) {
        const id = quality.recordId(row, quality.seen);
        quarantined.push(stringifyJson({ record_id: id, errors, record: row }));
        continue;
      }
    } else valid++;
    const json = (row === record ? texts?.[i] : undefined) ?? stringifyJson(row);
    text += `${json}\n`;
    written++;
    if (keyOf) {
      keys!.push(keyOf(row));
      lengths!.push(Buffer.byteLength(json));
    }
    cursor?.see(row);
  }
  return {
    text,
    written,
    keys,
    lengths,
    valid,
    invalid,
    filtered,
    quarantined,
    cursor: cursor?.max ?? undefined,
  };
}
