import type { Key } from "../../outputs/merge.js";
import type { StreamQuality } from "../../records/quality.js";
import type { Row, Shaper } from "../../records/shape.js";
import { stringifyJson } from "../../shared/json-text.js";
import { CursorTracker } from "../incremental.js";
import type { LinesChunk, SeeMembers, SeeRow } from "./streamed-types.js";

/**
 * A page's bytes and where each selected record lies in them (shared/json-spans.ts canonicalSpans:
 * start and end per record, -1 and -1 for one that is not canonical JSON).
 */
export interface SpanSource {
  bytes: Uint8Array;
  spans: readonly number[];
}

/** What turns a stream's records into a LinesChunk (built once per stream, in any thread). */
export interface LineMaker {
  shaper: Shaper;
  quality: StreamQuality;
  /** `invalid_records: skip`: invalid records go to the quarantine, not the output. */
  skip: boolean;
  keyOf: ((r: Row) => Key | null) | null;
  cursorField: string | null;
  /**
   * Given each record to write, in order, before its line is made (RecordSink.writerHooks); `suspect`
   * (the record's JSON may escape a lone surrogate) comes with the records (recordLines).
   */
  see?: SeeRow | null;
  /** With `see`: a record known by its members' names and types, when the writer can tell it so (checked-lines.ts). */
  seeMembers?: SeeMembers | null;
  /** With `see`: whether the writer will refuse a quarantine entry (WriterHooks.refusesInvalid). */
  refusesInvalid?: ((entryJson: string) => boolean) | null;
}

/**
 * RecordSink.accept and the JSON lines writer, for records serialized away from the sink (a page
 * or an export's unit): shaped, filtered, checked (the stream's statistics), quarantine entries
 * (not yet redacted: the sink masks them), the JSON lines with each record's key and byte length
 * for primary-key de-duplication, and the largest cursor value. `text` is a string. `texts`: a
 * JSON lines body's canonical lines (JsonlDecoder), written for the records shaping left as they were.
 * `source`: a page's bytes, whose canonical records shaping left as they were are copied from there
 * (the text is then UTF-8 bytes).
 */
export function recordLines(
  m: LineMaker,
  records: readonly unknown[],
  texts?: readonly (string | undefined)[],
  source?: SpanSource,
  suspect = true,
): LinesChunk {
  const { shaper, keyOf } = m;
  const cursor = m.cursorField ? new CursorTracker(m.cursorField) : null;
  const keys: (Key | null)[] | null = keyOf ? [] : null;
  const lengths: number[] | null = keyOf ? [] : null;
  const quarantined: string[] = [];
  const spans = source?.spans;
  const bytes = source ? new ByteLines(source.bytes) : null;
  let text = "";
  let written = 0;
  const counts = { valid: 0, invalid: 0 };
  let filtered = 0;
  let failure: unknown;
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    const row = shaper.shape(record);
    if (row === null) {
      filtered++;
      continue;
    }
    const fate = checkRow(m, row, counts, quarantined);
    if (fate === LAST) break;
    if (fate === QUARANTINED) continue;
    failure = seeRow(m, row, suspect);
    if (failure !== undefined) break; // the records before it are written, as record by record
    let length: number;
    const start = row === record && spans ? spans[2 * i] : -1;
    if (start >= 0) length = bytes!.span(start, spans![2 * i + 1]);
    else {
      const json = (row === record ? texts?.[i] : undefined) ?? stringifyJson(row);
      if (bytes) length = bytes.text(json);
      else {
        text += `${json}\n`;
        length = keyOf ? Buffer.byteLength(json) : 0;
      }
    }
    written++;
    if (keyOf) {
      keys!.push(keyOf(row));
      lengths!.push(length);
    }
    cursor?.see(row);
  }
  return {
    text: bytes ? bytes.finish() : text,
    written,
    keys,
    lengths,
    valid: counts.valid,
    invalid: counts.invalid,
    filtered,
    quarantined,
    cursor: cursor?.max ?? undefined,
    ...(failure === undefined ? {} : { failure }),
  };
}

/** Valid and invalid records counted by checkRow. */
export interface RowCounts {
  valid: number;
  invalid: number;
}

/**
 * A shaped record checked (the stream's statistics) and counted; an invalid one under
 * `invalid_records: skip` gets its quarantine entry (not yet redacted).
 */
export function checkRow(m: LineMaker, row: Row, counts: RowCounts, quarantined: string[]): RowFate {
  const { quality } = m;
  const errors = quality.check(row);
  if (!errors.length) {
    counts.valid++;
    return WRITE;
  }
  counts.invalid++;
  if (!m.skip) return WRITE;
  const id = quality.recordId(row, quality.seen);
  const entry = stringifyJson({ record_id: id, errors, record: row });
  quarantined.push(entry);
  // The writer refuses it when it comes: no record after it is counted or written.
  return m.refusesInvalid?.(entry) ? LAST : QUARANTINED;
}

/** What checkRow says of a record: to write, quarantined, or quarantined and the last of the lines. */
export type RowFate = 0 | 1 | 2;
export const WRITE = 0;
export const QUARANTINED = 1;
export const LAST = 2;

/** A record to write shown to the writer that sees each (LineMaker.see): what it refused with, if it did. */
export function seeRow(m: LineMaker, row: Row, suspect: boolean): unknown {
  if (!m.see) return undefined;
  try {
    m.see(row, suspect);
    return undefined;
  } catch (err) {
    return err ?? new Error("a writer refused a record");
  }
}

/**
 * JSON lines as UTF-8 bytes, made of records copied from a page's bytes (spans) and serialized ones
 * (texts), in order. Consecutive records of the page's array are one comma apart: a run of them is
 * copied at once and its commas become line feeds.
 */
export class ByteLines {
  /** In order: a run of the source as two numbers (start, end), or a serialized record. */
  private readonly parts: (number | string | Uint8Array)[] = [];
  /** Positions in the source of the commas inside runs (each becomes a line feed), in order. */
  private readonly commas: number[] = [];
  private size = 0;
  private runStart = -1;
  private runEnd = -1;

  constructor(private readonly source: Uint8Array) {}

  /** A record copied from the source; its length in bytes. */
  span(start: number, end: number): number {
    if (this.runStart >= 0 && start === this.runEnd + 1) this.commas.push(this.runEnd);
    else {
      this.flush();
      this.runStart = start;
    }
    this.runEnd = end;
    return end - start;
  }

  /** A record's JSON as bytes of its own (a view kept until `finish`); its length in bytes. */
  bytes(src: Uint8Array, start: number, end: number): number {
    this.flush();
    this.parts.push(src.subarray(start, end));
    this.size += end - start + 1;
    return end - start;
  }

  /** A serialized record; its length in bytes. */
  text(json: string): number {
    this.flush();
    const n = Buffer.byteLength(json);
    this.parts.push(json);
    this.size += n + 1;
    return n;
  }

  private flush(): void {
    if (this.runStart < 0) return;
    this.parts.push(this.runStart, this.runEnd);
    this.size += this.runEnd - this.runStart + 1;
    this.runStart = -1;
  }

  /** The lines, in a buffer of their own (a worker transfers it). */
  finish(): Uint8Array {
    this.flush();
    const { parts, commas, source } = this;
    const out = Buffer.allocUnsafeSlow(this.size);
    let o = 0;
    let c = 0;
    for (let p = 0; p < parts.length; ) {
      const part = parts[p];
      if (typeof part === "string") {
        o += out.write(part, o, "utf8");
        out[o++] = 10;
        p++;
        continue;
      }
      if (typeof part !== "number") {
        out.set(part, o);
        o += part.length;
        out[o++] = 10;
        p++;
        continue;
      }
      const end = parts[p + 1] as number;
      out.set(source.subarray(part, end), o);
      for (; c < commas.length && commas[c] < end; c++) out[o + commas[c] - part] = 10;
      o += end - part;
      out[o++] = 10;
      p += 2;
    }
    return out;
  }
}
