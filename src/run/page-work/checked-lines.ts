import { isUtf8 } from "node:buffer";
import type { StreamPlan } from "../../compile/plan.js";
import { recordStringFormats } from "../../lang/ajv.js";
import type { Key } from "../../outputs/merge.js";
import { ByteChecker, compileByteSchema } from "../../records/byte-check.js";
import { shapingKeepsRecords } from "../../records/decoders/index.js";
import type { Row } from "../../records/shape.js";
import { canonicalLineEnd, lineMembers } from "../../shared/canonical-line.js";
import { escapesSurrogate, LINE_CANONICAL, LINE_UNTRIED, type PageScan } from "../../shared/json-spans.js";
import {
  mayHoldBigInteger,
  NOT_JSON,
  parseJson,
  parseJsonBytes,
  parseJsonWith,
  stringifyJson,
} from "../../shared/json-text.js";
import { CursorTracker } from "../incremental.js";
import {
  ByteLines,
  checkRow,
  LAST,
  type LineMaker,
  QUARANTINED,
  seeRow,
} from "../record-workers/record-lines.js";
import type { LinesChunk } from "../record-workers/streamed-types.js";
import { byteCursor, byteKey } from "./byte-keys.js";
import { type Compacted, compactInto } from "./compact-record.js";

/** Top-level members canonicalLineEnd reads (not used here: the byte check reads them). */
const members = lineMembers();

/**
 * A page's records checked from their bytes (records/byte-check.ts) instead of a parse, for
 * streams whose records are written as they came: JSON lines out (or staged by a writer that
 * reads a record's member types: LineMaker.seeMembers, DuckDB and Parquet), no shaping or
 * `filter`, a schema the byte check reads (or none). A primary key and an incremental cursor
 * are read from the bytes (byte-keys.ts). Off with PIPELINES_BYTE_CHECK=off.
 */
export function byteCheckFor(
  stream: Pick<
    StreamPlan,
    "fields" | "exclude" | "flatten" | "includeParent" | "filter" | "schema" | "primaryKey"
  >,
  maker: LineMaker,
): BytePath | null {
  if (process.env.PIPELINES_BYTE_CHECK === "off") return null;
  if (!shapingKeepsRecords(stream) || stream.filter) return null;
  if (maker.see && !maker.seeMembers) return null;
  const schema = compileByteSchema(
    stream.schema?.schema ?? true,
    stream.schema ? recordStringFormats(stream.schema.schema) : null,
  );
  if (!schema) return null;
  const quality = maker.quality;
  const checker = new ByteChecker(
    schema,
    quality.keepsExamples
      ? (name, value, start, end, type) => quality.takesExample(name, value, start, end, type)
      : null,
  );
  return { checker, primaryKey: stream.primaryKey?.length ? stream.primaryKey : null, compactSkip: 0 };
}

/** A stream's byte path (byteCheckFor), kept from page to page by its PageProcessor. */
export interface BytePath {
  readonly checker: ByteChecker;
  /** The primary key's fields (LineMaker.keyOf reads the same key from parsed records), or null. */
  readonly primaryKey: readonly string[] | null;
  /**
   * Pages left before compacting is tried again: a stream whose records are not canonical for
   * another reason (`\u` or `\/` escapes, `1.0`) skips COMPACT_SKIP_PAGES after a page where ten
   * or more tries made none.
   */
  compactSkip: number;
}

/**
 * The page's lines when most of its records are canonical JSON objects and the bytes around them
 * are JSON (the rest of the page parsed without its records: `body`, its records array empty);
 * else null (the page is parsed whole). A record that is not canonical, or that the byte check is
 * unsure of, is parsed alone and checked as recordLines would: the same statistics, quarantine,
 * counts and lines (a record that is not canonical is serialized), in record order.
 */
export function checkedLines(
  m: LineMaker,
  path: BytePath,
  bytes: Uint8Array,
  scan: PageScan,
): { body: unknown; chunk: LinesChunk } | null {
  const { spans } = scan;
  const n = spans.length / 2;
  if (n === 0 || !isUtf8(bytes)) return null;
  // A writer that refuses lone surrogates checks the records of a page that may hold one.
  if (m.see && escapesSurrogate(bytes)) return null;
  const read = readRecords(bytes, spans, scan.lines, path);
  if (!read) return null;
  const { canonical, rows, buf, compact } = read;
  const body = pageWithoutRecords(bytes, spans);
  if (body === NOT_JSON) return null;
  const recordAt = (j: number): unknown => parseJson(buf.toString("utf8", spans[2 * j], spans[2 * j + 1]));
  const { quality } = m;
  const { checker } = path;
  const out = new Written(bytes, m, path.primaryKey);
  const { lines } = out;
  const quarantined: string[] = [];
  const counts = { valid: 0, invalid: 0 };
  let failure: unknown;
  for (let j = 0; j < n; j++) {
    const start = spans[2 * j];
    const end = spans[2 * j + 1];
    // A record canonical as it came (1), or once its white space is taken out (2: `compact`).
    const kind = canonical[j];
    const src = kind === 2 ? compact!.buf : buf;
    const s = kind === 2 ? compact!.spans[2 * j] : start;
    const e = kind === 2 ? compact!.spans[2 * j + 1] : end;
    const taken = kind !== 0 && checker.check(src, s, e) ? seeMembers(m, checker, src) : false;
    if (taken !== false) {
      quality.checkMembers(checker.names, checker.types, 0, checker.count);
      counts.valid++;
      // The writer refused it (sqlite: a batch it wrote failed): as record by record, the record
      // was checked and counted valid, then not written; the records before it are.
      if (taken !== true) {
        failure = taken.refused;
        break;
      }
      out.fromBytes(checker, src, kind === 1 ? lines.span(start, end) : lines.bytes(src, s, e));
      continue;
    }
    const row = rows.get(j) ?? (recordAt(j) as Row);
    const fate = checkRow(m, row, counts, quarantined);
    if (fate === LAST) break;
    if (fate === QUARANTINED) continue;
    // Not suspect: the page holds no `\ud` escape (above), and shaping adds nothing.
    failure = seeRow(m, row, false);
    if (failure !== undefined) break; // the records before it are written, as record by record
    const length =
      kind === 1
        ? lines.span(start, end)
        : kind === 2
          ? lines.bytes(src, s, e)
          : lines.text(stringifyJson(row));
    out.fromRow(row, length);
  }
  return { body, chunk: out.chunk(counts, quarantined, failure) };
}

/**
 * A record the checker read from `src`, shown to a writer that takes records by their members
 * (LineMaker.seeMembers; none: taken): true when it took it, false when it needs the record itself,
 * or what it refused the record with (as seeRow tells it).
 */
function seeMembers(m: LineMaker, checker: ByteChecker, src: Buffer): boolean | { refused: unknown } {
  if (!m.seeMembers) return true;
  try {
    return m.seeMembers(checker.names, checker.types, checker.count, checker.values, src);
  } catch (err) {
    return { refused: err ?? new Error("a writer refused a record") };
  }
}

/**
 * The written records' lines, and what recordLines also gives of them: with a primary key
 * (LineMaker.keyOf) each one's key and byte length, with a cursor field the largest cursor.
 */
class Written {
  readonly lines: ByteLines;
  private readonly keys: (Key | null)[] | null;
  private readonly lengths: number[] | null;
  private readonly cursor: CursorTracker | null;
  private count = 0;
  /** Of `count`, those checked from their bytes (LinesChunk.checked). */
  private checked = 0;

  constructor(
    bytes: Uint8Array,
    private readonly m: LineMaker,
    private readonly pk: readonly string[] | null,
  ) {
    this.lines = new ByteLines(bytes);
    this.keys = pk ? [] : null;
    this.lengths = pk ? [] : null;
    this.cursor = m.cursorField ? new CursorTracker(m.cursorField) : null;
  }

  /** A record the checker read from `src` (its key and cursor read there too), `length` bytes. */
  fromBytes(checker: ByteChecker, src: Buffer, length: number): void {
    this.count++;
    this.checked++;
    if (this.pk) {
      this.keys!.push(byteKey(checker, src, this.pk));
      this.lengths!.push(length);
    }
    if (this.cursor) this.cursor.offer(byteCursor(checker, src, this.m.cursorField!));
  }

  /** A parsed record, `length` bytes. */
  fromRow(row: Row, length: number): void {
    this.count++;
    if (this.pk) {
      this.keys!.push(this.m.keyOf!(row));
      this.lengths!.push(length);
    }
    this.cursor?.see(row);
  }

  chunk(counts: { valid: number; invalid: number }, quarantined: string[], failure: unknown): LinesChunk {
    return {
      text: this.lines.finish(),
      written: this.count,
      keys: this.keys,
      lengths: this.lengths,
      valid: counts.valid,
      invalid: counts.invalid,
      filtered: 0,
      quarantined,
      cursor: this.cursor?.max ?? undefined,
      checked: this.checked,
      ...(failure === undefined ? {} : { failure }),
    };
  }
}

/**
 * Which records are canonical JSON objects, by the strict reading that is also JSON.parse's syntax
 * check (canonical-line.ts: the page is not parsed, so nothing else checks their syntax), and the
 * others parsed — first, so that one that is not a JSON object (or not JSON) sends the page to the
 * whole parse, which tells it as it does, before anything is counted. A record that is canonical
 * once the white space between its tokens is taken out (an API that writes `", "` and `": "`, or
 * indents) is kept so (`compact`: kind 2): the same value, as stringifyJson writes it. Null: parse
 * the page (a record that is not one, or fewer than half canonical).
 */
function readRecords(
  bytes: Uint8Array,
  spans: readonly number[],
  lines: readonly number[] | null,
  path: BytePath,
): { canonical: Uint8Array; rows: Map<number, Row>; buf: Buffer; compact: Compacted | null } | null {
  const n = spans.length / 2;
  const canonical = new Uint8Array(n);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // One flag per record, or none (a scan not asked to read them: each record is read here).
  const known = lines !== null && lines.length === n;
  const tryCompact = path.compactSkip === 0;
  if (!tryCompact) path.compactSkip--;
  let compact: Compacted | null = null;
  let copied = 0;
  let tried = 0;
  let compacted = 0;
  for (let j = 0; j < n; j++) {
    const start = spans[2 * j];
    const end = spans[2 * j + 1];
    // The scan read it already (json-spans.ts PageScan.lines), or left it to be read here.
    const line = known ? lines[j] : LINE_UNTRIED;
    if (
      line === LINE_CANONICAL ||
      (line === LINE_UNTRIED && canonicalLineEnd(bytes, start, end, members) === end)
    ) {
      canonical[j] = 1;
      copied++;
      continue;
    }
    if (!tryCompact) continue;
    compact ??= { buf: Buffer.allocUnsafe(end - start), used: 0, spans: new Int32Array(2 * n) };
    tried++;
    if (compactInto(compact, buf, start, end, j)) {
      canonical[j] = 2;
      copied++;
      compacted++;
    }
  }
  if (tried >= 10 && compacted === 0) path.compactSkip = COMPACT_SKIP_PAGES;
  if (copied < n / 2) return null;
  const rows = new Map<number, Row>();
  // Parsed by the parser the whole page would get (the lossless one refuses records nested too deep).
  let lossless: boolean | null = null;
  for (let j = 0; j < n; j++) {
    if (canonical[j] !== 0) continue;
    lossless ??= mayHoldBigInteger(buf.toString("utf8"));
    let row: unknown;
    try {
      row = parseJsonWith(buf.toString("utf8", spans[2 * j], spans[2 * j + 1]), lossless);
    } catch {
      return null;
    }
    if (!row || typeof row !== "object" || Array.isArray(row)) return null;
    rows.set(j, row as Row);
  }
  return { canonical, rows, buf, compact };
}

/**
 * Pages a stream does not try compacting for (BytePath.compactSkip) after a page where ten tries
 * made nothing canonical: white space is not what keeps its records from it.
 */
const COMPACT_SKIP_PAGES = 16;

/**
 * The page parsed without its records (its records array empty), when the bytes between records
 * are commas and white space; NOT_JSON otherwise, or when the rest is not JSON.
 */
function pageWithoutRecords(bytes: Uint8Array, spans: readonly number[]): unknown {
  for (let k = 1; k + 1 < spans.length; k += 2) {
    let commas = 0;
    for (let i = spans[k]; i < spans[k + 1]; i++) {
      const c = bytes[i];
      if (c === 0x2c) commas++;
      else if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return NOT_JSON;
    }
    if (commas !== 1) return NOT_JSON;
  }
  const first = spans[0];
  const last = spans[spans.length - 1];
  const rest = new Uint8Array(first + bytes.length - last);
  rest.set(bytes.subarray(0, first));
  rest.set(bytes.subarray(last), first);
  return parseJsonBytes(rest);
}
