/**
 * A record decoder for bodies read as they arrive (`response.format: jsonl | csv`): fed the
 * decompressed bytes chunk by chunk, it appends the records complete so far to `out`, and keeps
 * only the unfinished one (memory stays flat whatever the body's size). A malformed line is a
 * RunError (`bad_body`) that names its line number.
 */
export interface RecordDecoder {
  /**
   * `texts` (JSON lines only): for each record appended to `out`, its line when that is already
   * the JSON stringifyJson writes for the record (src/shared/canonical-json.ts), else undefined.
   */
  push(chunk: Buffer, out: unknown[], texts?: (string | undefined)[]): void;
  /** The body ended: the last record, when it had no line break after it. */
  end(out: unknown[], texts?: (string | undefined)[]): void;
  /** Bytes of the body read into complete records so far (where a resumed read starts). */
  readonly completeBytes: number;
  /** Lines read into complete records so far. */
  readonly lines: number;
  /**
   * Continue a body at `completeBytes` after a retry: the next bytes pushed are those after it.
   * (Lines and a CSV header are kept; the unfinished record is dropped.)
   */
  resume(): void;
  /** Bytes held for an unfinished record (bounded by one record). */
  readonly held: number;
}

/** The last line feed in `b`, or -1. */
export function lastNewline(b: Buffer): number {
  return b.lastIndexOf(10);
}
