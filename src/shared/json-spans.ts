import { isUtf8 } from "node:buffer";
import { canonicalObjectEnd } from "./canonical-json.js";
import { canonicalLineEnd, lineMembers } from "./canonical-line.js";
import {
  BACKSLASH,
  CLOSE_ARRAY,
  CLOSE_OBJECT,
  COLON,
  COMMA,
  OPEN_ARRAY,
  OPEN_OBJECT,
  QUOTE,
  WHITE,
} from "./json-bytes.js";

/**
 * Where the parts of a JSON page a runner reads lie in its bytes, found by one scan that does not
 * parse: each element of the records array (so that the next page can be asked for before the
 * page is parsed, and a canonical record copied as it came instead of serialized again), and the
 * value of each path the paginator reads.
 */
export interface PageScan {
  /** Start and end (exclusive) of each element of the records array, in order. */
  spans: number[];
  /**
   * Per element: 1 when it is a canonical object (canonical-json.ts), else 0; empty until read
   * (a scan for a page's head leaves it to `canonicalFlags`, after the next request left).
   */
  canonical: number[];
  /**
   * Per element, what the scan found out about it being a canonical JSON object by the strict
   * reading of canonical-line.ts (the byte check's): LINE_CANONICAL, LINE_NOT, or LINE_UNTRIED
   * (the scan stopped trying on that page). Read while the element's end is looked for: one walk
   * instead of two. Null when the scan was not asked to (ScanPaths.strict: a stream the byte check
   * does not read pays nothing for it).
   */
  lines: number[] | null;
  /** Per path asked for, in order: its value's start and end, or -1 and -1 when there is none. */
  values: number[];
}

export const LINE_NOT = 0;
export const LINE_CANONICAL = 1;
export const LINE_UNTRIED = 2;

/**
 * Elements in a row that are not canonical objects after which a scan stops trying the strict
 * reading on the rest of the page (an API that writes `", "`: each try costs a few bytes' read).
 */
const LINE_MISSES = 8;

/** Top-level members canonicalLineEnd reads (not used here). */
const members = lineMembers();

/**
 * Scans a page for the array at the records path and the values at the value paths (`paths`,
 * prepared by scanPaths from member names: `$.data` → ["data"], `$` → []). Null whenever the
 * bytes might not say what the parsed document would, and the caller parses instead:
 * - a member name written with an escape (`"d\u0061ta"` is `data` once parsed), or a name on a
 *   path written twice in its object (JSON.parse keeps the last one);
 * - a records path that does not reach an array, a path's member reached both as a value and
 *   as an object to walk into, a path that goes on into an array (an array has members too:
 *   `length`, `0`);
 * - bytes that end early or hold something else than JSON where the scan reads (the scan reads
 *   no further than the bytes, but does not check the syntax: only a parse says the bytes are JSON).
 */
export function scanPage(b: Uint8Array, paths: ScanPaths): PageScan | null {
  const scan: PageScan = {
    spans: [],
    canonical: [],
    lines: paths.strict ? [] : null,
    values: new Array<number>(2 * paths.values).fill(-1),
  };
  const i = documentStart(b);
  const end = paths.root ? splitArray(b, i, scan) : walk(b, i, paths.names, paths.active, 0, scan);
  if (end < 0) return null;
  return space(b, end) === b.length ? scan : null;
}

/** A stream's paths as scanPage reads them, prepared once (scanPaths). */
export interface ScanPaths {
  /** Per path (the records path first), its member names as UTF-8 bytes. */
  readonly names: readonly (readonly Uint8Array[])[];
  /** Every path's index: where the walk starts. */
  readonly active: readonly number[];
  /** How many value paths (after the records path). */
  readonly values: number;
  /** The records path is `$`: the document is the array. */
  readonly root: boolean;
  /** Whether the records are read strictly as the array is split (PageScan.lines). */
  readonly strict: boolean;
}

/**
 * The records path and the value paths (member names each) prepared for scanPage; null for paths
 * no scan reads: a value path of no member names (`$`: the whole document), or value paths beside
 * a records path of `$` (the body is the array: they find nothing in it).
 */
export function scanPaths(
  records: readonly string[],
  paths: readonly (readonly string[])[],
  strict = false,
): ScanPaths | null {
  if (paths.some((keys) => keys.length === 0)) return null;
  if (records.length === 0 && paths.length > 0) return null;
  const names = [records, ...paths].map((keys) => keys.map((k) => Buffer.from(k, "utf8")));
  return {
    names,
    active: names.map((_, p) => p),
    values: paths.length,
    root: records.length === 0,
    strict,
  };
}

/** Whether each element of the scanned array is a canonical object (PageScan.canonical), read once. */
export function canonicalFlags(b: Uint8Array, scan: PageScan): number[] {
  const { spans, canonical } = scan;
  if (canonical.length === 0)
    for (let j = 0; j < spans.length; j += 2)
      canonical.push(canonicalObjectEnd(b, spans[j], spans[j + 1]) === spans[j + 1] ? 1 : 0);
  return canonical;
}

/**
 * The spans of `scan` as recordLines takes them (record-lines.ts SpanSource): each canonical
 * object's start and end, -1 and -1 for an element that is not one; null when none is, or the
 * bytes are not valid UTF-8 (the parsed text would hold U+FFFD where the bytes do not).
 */
export function canonicalSpans(b: Uint8Array, scan: PageScan): number[] | null {
  const canonical = canonicalFlags(b, scan);
  if (!canonical.includes(1) || !isUtf8(b)) return null;
  const { spans } = scan;
  const out = spans.slice();
  for (let j = 0; j < canonical.length; j++) if (canonical[j] === 0) out[2 * j] = out[2 * j + 1] = -1;
  return out;
}

/**
 * The value at `i`, into which the paths in `active` go on with their member `k`: its end, or -1
 * when unsure. Path 0 is the records path (its array's elements into `scan.spans`), path p > 0
 * a value (into `scan.values`).
 */
function walk(
  b: Uint8Array,
  i: number,
  names: readonly (readonly Uint8Array[])[],
  active: readonly number[],
  k: number,
  scan: PageScan,
): number {
  const records = active.includes(0);
  // A path goes on into an object only; an array has members too (`length`, `0`): left to the parse.
  if (b[i] !== OPEN_OBJECT) return records || b[i] === OPEN_ARRAY ? -1 : valueEnd(b, i); // values: none
  i = space(b, i + 1);
  const found: number[] = [];
  if (b[i] === CLOSE_OBJECT) return records ? -1 : i + 1;
  for (;;) {
    if (b[i] !== QUOTE) return -1;
    const nameEnd = plainStringEnd(b, i);
    if (nameEnd < 0) return -1; // an escape in a member name
    let ending: number[] | null = null;
    let deeper: number[] | null = null;
    for (const p of active) {
      if (!sameBytes(b, i + 1, nameEnd - 1, names[p][k])) continue;
      if (found.includes(p)) return -1; // twice: the parsed value is the last one
      found.push(p);
      if (names[p].length === k + 1) (ending ??= []).push(p);
      else (deeper ??= []).push(p);
    }
    if (ending && deeper) return -1;
    i = space(b, nameEnd);
    if (b[i] !== COLON) return -1;
    const at = space(b, i + 1);
    if (deeper) i = walk(b, at, names, deeper, k + 1, scan);
    else if (ending) i = ended(b, at, ending, scan);
    else i = valueEnd(b, at);
    if (i < 0) return -1;
    i = space(b, i);
    if (b[i] === COMMA) i = space(b, i + 1);
    else if (b[i] === CLOSE_OBJECT) return !records || found.includes(0) ? i + 1 : -1;
    else return -1;
  }
}

/** The value at `at`, where the paths `ending` end: the records' array, or a value; its end. */
function ended(b: Uint8Array, at: number, ending: readonly number[], scan: PageScan): number {
  const end = ending.includes(0) ? splitArray(b, at, scan) : valueEnd(b, at);
  if (end < 0) return -1;
  for (const p of ending) {
    if (p === 0) continue;
    scan.values[2 * (p - 1)] = at;
    scan.values[2 * (p - 1) + 1] = end;
  }
  return end;
}

/**
 * The array at `i`: each element's span into `scan` (whether it is canonical is read later:
 * canonicalFlags); the array's end, or -1.
 */
function splitArray(b: Uint8Array, i: number, scan: PageScan): number {
  if (b[i] !== OPEN_ARRAY) return -1;
  i = space(b, i + 1);
  if (b[i] === CLOSE_ARRAY) return i + 1;
  const lines = scan.lines;
  let misses = lines ? 0 : LINE_MISSES;
  for (;;) {
    const start = i;
    // A canonical object's strict reading finds its end too (and reads no further).
    let end = misses < LINE_MISSES && b[i] === OPEN_OBJECT ? canonicalLineEnd(b, i, b.length, members) : -1;
    if (end > start) {
      lines!.push(LINE_CANONICAL);
      misses = 0;
    } else {
      lines?.push(misses < LINE_MISSES ? LINE_NOT : LINE_UNTRIED);
      misses++;
      end = valueEnd(b, i);
    }
    if (end <= start) return -1;
    scan.spans.push(start, end);
    i = space(b, end);
    if (b[i] === COMMA) i = space(b, i + 1);
    else if (b[i] === CLOSE_ARRAY) return i + 1;
    else return -1;
  }
}

/** The end of the JSON value at `i` (valid JSON), or -1 past the bytes. */
export function valueEnd(b: Uint8Array, i: number): number {
  const n = b.length;
  const c = b[i];
  if (c === QUOTE) return stringEnd(b, i);
  if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
    let depth = 0;
    while (i < n) {
      const d = b[i];
      if (d === QUOTE) {
        i = stringEnd(b, i);
        if (i < 0) return -1;
        continue;
      }
      if (d === OPEN_OBJECT || d === OPEN_ARRAY) depth++;
      else if ((d === CLOSE_OBJECT || d === CLOSE_ARRAY) && --depth === 0) return i + 1;
      i++;
    }
    return -1;
  }
  // A number, true, false or null: up to the next delimiter.
  while (i < n && DELIMITER[b[i]] !== 1) i++;
  return i;
}

/** The index after the string starting at `i` (a quote), or -1 past the bytes. */
function stringEnd(b: Uint8Array, i: number): number {
  const n = b.length;
  for (i++; i < n; i++) {
    const c = b[i];
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) i++;
  }
  return -1;
}

/** As stringEnd, but -1 for a string with an escape in it. */
export function plainStringEnd(b: Uint8Array, i: number): number {
  const n = b.length;
  for (i++; i < n; i++) {
    const c = b[i];
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) return -1;
  }
  return -1;
}

/** Whether bytes [from, to) of `b` are `name`'s bytes. */
export function sameBytes(b: Uint8Array, from: number, to: number, name: Uint8Array): boolean {
  if (to - from !== name.length) return false;
  for (let j = 0; j < name.length; j++) if (b[from + j] !== name[j]) return false;
  return true;
}

/** Where a document's first value starts: after a BOM (parseJson skips it) and white space. */
export function documentStart(b: Uint8Array): number {
  return space(b, b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0);
}

/** The index of the first byte at or after `i` that is not JSON white space. */
export function space(b: Uint8Array, i: number): number {
  while (WHITE[b[i]] === 1) i++;
  return i;
}

const DELIMITER = new Uint8Array(256);
for (const c of [32, 9, 10, 13, COMMA, CLOSE_OBJECT, CLOSE_ARRAY]) DELIMITER[c] = 1;

const SURROGATE_ESCAPES = [Buffer.from("\\ud"), Buffer.from("\\uD")];

/** Whether JSON bytes may escape a surrogate (`\ud800`, `\uDC00`: an escaped backslash counts too). */
export function escapesSurrogate(bytes: Uint8Array): boolean {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return SURROGATE_ESCAPES.some((e) => b.includes(e));
}
