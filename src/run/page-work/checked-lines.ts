import { isUtf8 } from "node:buffer";
import type { StreamPlan } from "../../compile/plan.js";
import type { Key } from "../../outputs/merge.js";
import { ByteChecker, compileByteSchema } from "../../records/byte-check.js";
import { shapingKeepsRecords } from "../../records/decoders/index.js";
import type { Row } from "../../records/shape.js";
import { canonicalLineEnd, lineMembers } from "../../shared/canonical-line.js";
import type { PageScan } from "../../shared/json-spans.js";
import { escapesSurrogate } from "../../shared/json-spans.js";
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

/** Top-level members canonicalLineEnd reads (not used here: the byte check reads them). */
const members = lineMembers();

/** Records counted from their bytes in this process (tests check that the path was taken). */
let checkedRecords = 0;
export const bytesCheckedRecords = (): number => checkedRecords;

/**
 * A page's records checked from their bytes (records/byte-check.ts) instead of a parse, for
 * streams whose records are written as they came: JSON lines out (or staged by a writer that
 * reads a record's member types: LineMaker.seeMembers, DuckDB and Parquet), no shaping or
 * `filter`, a schema the byte check reads (or none). A primary key and an incremental cursor
 * are read from the bytes (byte-keys.ts). Off with PIPELINES_BYTE_CHECK=off.
 */
export function byteCheckFor(
  stream: Pick<StreamPlan, "fields" | "exclude" | "flatten" | "includeParent" | "filter" | "schema">,
  maker: LineMaker,
): ByteChecker | null {
  if (process.env.PIPELINES_BYTE_CHECK === "off") return null;
  if (!shapingKeepsRecords(stream) || stream.filter) return null;
  if (maker.see && !maker.seeMembers) return null;
  const schema = compileByteSchema(stream.schema?.schema ?? true);
  const quality = maker.quality;
  return (
    schema &&
    new ByteChecker(
      schema,
      quality.keepsExamples
        ? (name, value, start, end, type) => quality.takesExample(name, value, start, end, type)
        : null,
    )
  );
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
  checker: ByteChecker,
  bytes: Uint8Array,
  scan: PageScan,
  primaryKey: readonly string[] | null = null,
): { body: unknown; chunk: LinesChunk } | null {
  const { spans } = scan;
  const n = spans.length / 2;
  if (n === 0 || !isUtf8(bytes)) return null;
  // A writer that refuses lone surrogates checks the records of a page that may hold one.
  if (m.see && escapesSurrogate(bytes)) return null;
  const read = readRecords(bytes, spans);
  if (!read) return null;
  const { canonical, rows, buf } = read;
  const body = pageWithoutRecords(bytes, spans);
  if (body === NOT_JSON) return null;
  const recordAt = (j: number): unknown => parseJson(buf.toString("utf8", spans[2 * j], spans[2 * j + 1]));
  const { quality } = m;
  const lines = new ByteLines(bytes);
  const quarantined: string[] = [];
  const counts = { valid: 0, invalid: 0 };
  // With a primary key (LineMaker.keyOf): each written record's key and byte length, as recordLines.
  const pk = m.keyOf ? primaryKey : null;
  if (m.keyOf && !pk) throw new Error("checkedLines: a primary key without its fields");
  const keys: (Key | null)[] | null = pk ? [] : null;
  const lengths: number[] | null = pk ? [] : null;
  const cursorField = m.cursorField;
  const cursor = cursorField ? new CursorTracker(cursorField) : null;
  let written = 0;
  let failure: unknown;
  for (let j = 0; j < n; j++) {
    const start = spans[2 * j];
    const end = spans[2 * j + 1];
    if (
      canonical[j] === 1 &&
      checker.check(buf, start, end) &&
      (!m.seeMembers || m.seeMembers(checker.names, checker.types, checker.count))
    ) {
      quality.checkMembers(checker.names, checker.types, 0, checker.count);
      checkedRecords++;
      counts.valid++;
      written++;
      const length = lines.span(start, end);
      if (pk) {
        keys!.push(byteKey(checker, buf, pk));
        lengths!.push(length);
      }
      if (cursor) cursor.offer(byteCursor(checker, buf, cursorField!));
      continue;
    }
    const row = rows.get(j) ?? (recordAt(j) as Row);
    const fate = checkRow(m, row, counts, quarantined);
    if (fate === LAST) break;
    if (fate === QUARANTINED) continue;
    // Not suspect: the page holds no `\ud` escape (above), and shaping adds nothing.
    failure = seeRow(m, row, false);
    if (failure !== undefined) break; // the records before it are written, as record by record
    written++;
    const length = canonical[j] === 1 ? lines.span(start, end) : lines.text(stringifyJson(row));
    if (pk) {
      keys!.push(m.keyOf!(row));
      lengths!.push(length);
    }
    cursor?.see(row);
  }
  const chunk: LinesChunk = {
    text: lines.finish(),
    written,
    keys,
    lengths,
    valid: counts.valid,
    invalid: counts.invalid,
    filtered: 0,
    quarantined,
    cursor: cursor?.max ?? undefined,
    ...(failure === undefined ? {} : { failure }),
  };
  return { body, chunk };
}

/**
 * Which records are canonical JSON objects, by the strict reading that is also JSON.parse's syntax
 * check (canonical-line.ts: the page is not parsed, so nothing else checks their syntax), and the
 * others parsed — first, so that one that is not a JSON object (or not JSON) sends the page to the
 * whole parse, which tells it as it does, before anything is counted. Null: parse the page (a
 * record that is not one, or fewer than half canonical: a pretty-printed API).
 */
function readRecords(
  bytes: Uint8Array,
  spans: readonly number[],
): { canonical: Uint8Array; rows: Map<number, Row>; buf: Buffer } | null {
  const n = spans.length / 2;
  const canonical = new Uint8Array(n);
  let copied = 0;
  for (let j = 0; j < n; j++)
    if (canonicalLineEnd(bytes, spans[2 * j], spans[2 * j + 1], members) === spans[2 * j + 1]) {
      canonical[j] = 1;
      copied++;
    }
  if (copied < n / 2) return null;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const rows = new Map<number, Row>();
  // Parsed by the parser the whole page would get (the lossless one refuses records nested too deep).
  let lossless: boolean | null = null;
  for (let j = 0; j < n; j++) {
    if (canonical[j] === 1) continue;
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
  return { canonical, rows, buf };
}

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
