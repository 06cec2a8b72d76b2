import { isUtf8 } from "node:buffer";
import type { StreamPlan } from "../compile/plan.js";
import { isStreamed, shapingKeepsRecords } from "../records/decoders/index.js";
import type { StreamQuality } from "../records/quality.js";
import { canonicalLineEnd, lineMembers } from "../shared/canonical-line.js";
import { T_STRING } from "../shared/json-types.js";
import type { LinesChunk } from "./record-workers/streamed-types.js";

/** Records taken as raw lines in this process (tests check that the path was taken). */
let taken = 0;
export const rawLinesTaken = (): number => taken;

/** Lines taken as they came, and the first and last of them (the pagination guards compare pages by those). */
export interface RawChunk extends LinesChunk {
  first: string;
  last: string;
}

/** Where raw lines go: the stream's statistics and its writer (RecordSink). */
export interface RawSink {
  readonly quality: StreamQuality;
  acceptLines(u: LinesChunk): Promise<void> | undefined;
  takesLines(): boolean;
}

/**
 * Whether a JSON lines (or CSV) stream's records can go out as their lines came, unparsed (CSV:
 * plain rows made JSON lines by a replacement, csv.ts), without records: nothing reads
 * a value (no schema to validate, no `fields`, `exclude`, `flatten`, `filter`, `include_parent`,
 * no incremental cursor, no primary key), the output takes JSON lines (jsonl, no records kept for
 * child streams), and no `--limit` (it stops mid-body). PIPELINES_RAW_LINES=off: never (A/B, tests).
 */
export function rawLinesFit(stream: StreamPlan, limit: number | null, sink: RawSink): boolean {
  return (
    process.env.PIPELINES_RAW_LINES !== "off" &&
    isStreamed(stream.response) &&
    shapingKeepsRecords(stream) &&
    !stream.schema &&
    !stream.filter &&
    !stream.incremental &&
    !stream.primaryKey &&
    limit === null &&
    sink.takesLines()
  );
}

/**
 * A JSON lines body's complete lines, taken as they came when every one of them is a canonical
 * JSON object (canonical-line.ts: valid JSON that stringifyJson writes back the same, checked
 * without parsing): their bytes are the output, and each record is counted from its top-level
 * names and value types (StreamQuality.checkMembers) — the same statistics, output and report as
 * parsing them, at a fraction of the cost. Bytes with one line that is not (white space, CRLF, a
 * blank line, an escape the rule refuses, bytes that are not UTF-8 or not JSON) are left to the
 * decoder, which parses them as before (and names a malformed line).
 */
export class RawLines {
  private readonly m = lineMembers();
  /** Per member position: the name's bytes and text last seen there (names repeat line after line). */
  private readonly nameBytes: Uint8Array[] = [];
  private readonly nameTexts: string[] = [];
  /** The lines of the bytes being read: their members' names and types, and how many each. */
  private readonly names: string[] = [];
  private types = new Uint8Array(4096);
  private readonly counts: number[] = [];
  /** Taken, for the caller to write in order, with their first and last lines. */
  readonly chunks: RawChunk[] = [];

  constructor(private readonly quality: StreamQuality) {}

  /** Takes `bytes` (complete lines, each ending with `\n`): how many records, or -1 (left to the decoder). */
  take(bytes: Buffer): number {
    if (!isUtf8(bytes)) return -1;
    const { m, names, counts } = this;
    names.length = 0;
    counts.length = 0;
    let at = 0;
    let lastStart = 0;
    for (let start = 0; start < bytes.length; ) {
      // The line feed right after the object: no white space, no CR, no blank line.
      const nl = canonicalLineEnd(bytes, start, bytes.length, m);
      if (nl < 0 || bytes[nl] !== 10) return -1;
      if (at + m.count > this.types.length) {
        const grown = new Uint8Array(2 * (at + m.count));
        grown.set(this.types);
        this.types = grown;
      }
      for (let k = 0; k < m.count; k++) {
        names.push(this.name(bytes, k));
        this.types[at + k] = m.types[k];
      }
      at += m.count;
      counts.push(m.count);
      lastStart = start;
      start = nl + 1;
    }
    if (counts.length === 0) return 0;
    let from = 0;
    for (const n of counts) {
      this.quality.checkMembers(names, this.types, from, n);
      from += n;
    }
    const n = counts.length;
    this.push(
      bytes,
      n,
      bytes.toString("utf8", 0, bytes.indexOf(10)),
      bytes.toString("utf8", lastStart, bytes.length - 1),
    );
    return n;
  }

  /**
   * Takes `json`, the JSON lines of `rows` CSV rows of `columns` (every value a string: csv.ts made
   * them from plain rows).
   */
  takeRows(json: string, rows: number, columns: readonly string[]): void {
    if (this.rowTypes.length !== columns.length)
      this.rowTypes = new Uint8Array(columns.length).fill(T_STRING);
    this.quality.checkMembers(columns, this.rowTypes, 0, columns.length, rows);
    const lastStart = json.lastIndexOf("\n", json.length - 2) + 1;
    this.push(json, rows, json.slice(0, json.indexOf("\n")), json.slice(lastStart, json.length - 1));
  }

  /** A chunk of `n` records' JSON lines taken, its first and last line. */
  private push(text: string | Buffer, n: number, first: string, last: string): void {
    taken += n;
    this.chunks.push({
      first,
      last,
      text,
      written: n,
      keys: null,
      lengths: null,
      valid: n,
      invalid: 0,
      filtered: 0,
      quarantined: [],
      cursor: undefined,
    });
  }
  private rowTypes = new Uint8Array(0);

  /** The text of the line's `k`-th member name: the one last seen there when its bytes are the same. */
  private name(b: Buffer, k: number): string {
    const from = this.m.names[2 * k];
    const to = this.m.names[2 * k + 1];
    const known = this.nameBytes[k];
    if (known !== undefined && known.length === to - from) {
      let same = true;
      for (let j = 0; j < known.length; j++)
        if (known[j] !== b[from + j]) {
          same = false;
          break;
        }
      if (same) return this.nameTexts[k];
    }
    const raw = b.toString("utf8", from, to);
    // An escape the canonical rule lets through (`\"`, `\\`, `\n`…): its text is JSON's reading.
    const text = raw.includes("\\") ? (JSON.parse(`"${raw}"`) as string) : raw;
    this.nameBytes[k] = Uint8Array.prototype.slice.call(b, from, to);
    this.nameTexts[k] = text;
    return text;
  }
}
