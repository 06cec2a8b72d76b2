import type { StreamPlan, ValidationPlan } from "../../compile/plan.js";
import type { Key } from "../../outputs/merge.js";
import type { RecordContext } from "../../records/field-specs.js";
import type { QualityState } from "../../records/quality.js";
import type { Row } from "../../records/shape.js";

/**
 * What a streamed-export session's worker gets (never headers, tokens or the redactor's
 * secrets): the stream's record plan (select/shape/filter, record schema, primary key, response
 * format), the record context of `{ value }` fields, the validation policy, the statistics so far.
 */
export interface StreamedInit {
  plan: StreamedPlan;
  context: RecordContext;
  validation: ValidationPlan;
  quality: QualityState;
}

export type StreamedPlan = Pick<
  StreamPlan,
  | "name"
  | "records"
  | "fields"
  | "exclude"
  | "flatten"
  | "includeParent"
  | "filter"
  | "schema"
  | "primaryKey"
  | "response"
  | "incremental"
>;

/** One unit: complete lines (JSONL) or rows (CSV) of body number `body`, its bytes transferred. */
export interface StreamedUnit {
  body: number;
  bytes: Uint8Array;
  /** The body's last bytes (a last line without a line feed is a record too). */
  end: boolean;
  /** The body is read again after a transport fault: these bytes follow the last complete row. */
  resume: boolean;
}

/** RecordSink.writerHooks: given each record to write before its line is made (RecordWriter.seeRow). */
export type SeeRow = (row: Row, suspect: boolean) => void;

/** RecordWriter.seeMembers: a record known by its top-level members' names and JSON types. */
export type SeeMembers = (
  names: readonly string[],
  types: Uint8Array,
  n: number,
  values: Int32Array,
  src: Buffer,
) => boolean;

/**
 * What a writer that sees each record gives the making of its lines (RecordSink.writerHooks), on
 * the writer's thread: `see` (RecordWriter.seeRow), `seeMembers`, and `refusesInvalid`
 * (RecordWriter.refusesInvalid: a quarantine entry its invalid-record table will refuse ends the
 * page's lines there, as record by record).
 */
export interface WriterHooks {
  see: SeeRow;
  seeMembers: SeeMembers | null;
  refusesInvalid: ((entryJson: string) => boolean) | null;
}

/** A unit's records as the stream's record sink takes them (RecordSink.acceptLines). */
export interface LinesChunk {
  /**
   * The JSON lines of the records to write: UTF-8 bytes when a streamed export's worker made them
   * (transferred, not copied), a string when pages were processed (on the main thread, or cloned).
   */
  text: Uint8Array | string;
  written: number;
  /** With a primary key: each written record's key and the byte length of its JSON. */
  keys: (Key | null)[] | null;
  lengths: number[] | null;
  valid: number;
  invalid: number;
  filtered: number;
  /** `invalid_records: skip`: each invalid record's quarantine entry as JSON, not yet redacted. */
  quarantined: string[];
  /** The largest cursor value among the written records (undefined: none). */
  cursor: unknown;
  /** A scanned page whose body turned out not to be JSON (page-processor.ts): no records. */
  unparsed?: true;
  /** Records checked from their bytes, not parsed (checked-lines.ts), on whichever thread. */
  checked?: number;
  /**
   * The writer refused a record (LineMaker.see threw): the chunk holds the records before it (that
   * one counted as valid, not written), and the sink throws this once they are written.
   */
  failure?: unknown;
}

export interface StreamedResult extends LinesChunk {
  /** Records decoded (before shaping and `filter`). */
  decoded: number;
  /** JSON of the body's first decoded record (in the unit that decoded it) and of this unit's last. */
  first: string | null;
  last: string | null;
}
