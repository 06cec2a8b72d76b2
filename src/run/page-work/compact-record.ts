import { canonicalLineEnd, lineMembers } from "../../shared/canonical-line.js";
import { WHITE } from "../../shared/json-bytes.js";

/**
 * A record made canonical JSON without parsing it (checked-lines.ts readRecords): the JSON white
 * space between its tokens taken out, and the escapes stringifyJson does not write (`\\/`, a `\\u`
 * escape of a character it writes as it is) written as it does. Accepted only when the strict
 * reading (canonical-line.ts) accepts the copy, whose value is then the record's.
 */

/** Top-level members canonicalLineEnd reads (not used here). */
const members = lineMembers();

/** Bytes of numbers and words (`true`…): all but brackets, colon, comma, quote and white space. */
const SCALAR = new Uint8Array(256).fill(1);
for (const c of '{}[]:," \t\n\r') SCALAR[c.charCodeAt(0)] = 0;

/** Where unescapeInto's escape ends in its source. */
let escapeEnd = 0;
/** The short escapes stringifyJson writes for control characters (0: a `\u` one). */
const SHORT = new Uint8Array(32);
SHORT[8] = 0x62; // b
SHORT[9] = 0x74; // t
SHORT[10] = 0x6e; // n
SHORT[12] = 0x66; // f
SHORT[13] = 0x72; // r

/**
 * The `\u` escape whose four hex digits start at `i` (a surrogate pair's two), written into `out`
 * at `o` as stringifyJson writes its character: UTF-8, or `\"`, `\\`, a short escape; the index
 * after it in `out` (after it in `src`: escapeEnd). -1 when stringifyJson would keep a `\u`
 * escape (a control character without a short one, a lone surrogate) or the digits are not hex.
 */
function unescapeInto(src: Buffer, i: number, end: number, out: Buffer, o: number): number {
  let code = hex4(src, i, end);
  if (code < 0) return -1;
  i += 4;
  if (code >= 0xd800 && code <= 0xdfff) {
    if (code > 0xdbff || src[i] !== 0x5c || src[i + 1] !== 0x75) return -1;
    const low = hex4(src, i + 2, end);
    if (low < 0xdc00 || low > 0xdfff) return -1;
    code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
    i += 6;
  }
  escapeEnd = i;
  if (code < 0x20) {
    if (SHORT[code] === 0) return -1;
    out[o++] = 0x5c;
    out[o++] = SHORT[code];
  } else if (code === 0x22 || code === 0x5c) {
    out[o++] = 0x5c;
    out[o++] = code;
  } else if (code < 0x80) out[o++] = code;
  else if (code < 0x800) {
    out[o++] = 0xc0 | (code >> 6);
    out[o++] = 0x80 | (code & 0x3f);
  } else if (code < 0x10000) {
    out[o++] = 0xe0 | (code >> 12);
    out[o++] = 0x80 | ((code >> 6) & 0x3f);
    out[o++] = 0x80 | (code & 0x3f);
  } else {
    out[o++] = 0xf0 | (code >> 18);
    out[o++] = 0x80 | ((code >> 12) & 0x3f);
    out[o++] = 0x80 | ((code >> 6) & 0x3f);
    out[o++] = 0x80 | (code & 0x3f);
  }
  return o;
}

/** Four hex digits at `i` (before `end`) as a number, or -1. */
function hex4(src: Buffer, i: number, end: number): number {
  if (i + 4 > end) return -1;
  let v = 0;
  for (let k = i; k < i + 4; k++) {
    const b = src[k];
    const c = b | 0x20; // A–F folded to a–f
    const h = b >= 0x30 && b <= 0x39 ? b - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

/** compactInto of one record, for tests: its canonical bytes, or null. */
export function compactRecord(src: Buffer, start: number, end: number): Buffer | null {
  const c: Compacted = { buf: Buffer.allocUnsafe(end - start), used: 0, spans: new Int32Array(2) };
  return compactInto(c, src, start, end, 0) ? c.buf.subarray(c.spans[0], c.spans[1]) : null;
}

/** Records of a page with their white space taken out: each one's bytes in `buf` (spans by record). */
export interface Compacted {
  buf: Buffer;
  used: number;
  spans: Int32Array;
}

/**
 * Copies record `j` ([start, end) of `src`) into `c` without the JSON white space between its
 * tokens and with its strings' escapes as stringifyJson writes them; true when the copy is a
 * canonical JSON object (canonical-line.ts), whose value is the record's: neither changes it.
 */
export function compactInto(c: Compacted, src: Buffer, start: number, end: number, j: number): boolean {
  if (c.used + (end - start) > c.buf.length) {
    const next = Buffer.allocUnsafe(Math.max(2 * c.buf.length, c.used + (end - start)));
    c.buf.copy(next, 0, 0, c.used);
    c.buf = next;
  }
  const out = c.buf;
  const at = c.used;
  let o = at;
  let i = start;
  while (i < end) {
    const b = src[i++];
    if (WHITE[b] === 1) {
      // Taken out only beside a bracket, colon, comma or quote: between two bytes of numbers or
      // words (`1 2`, `tr ue`), which JSON.parse refuses, it would join them into one.
      while (i < end && WHITE[src[i]] === 1) i++;
      if (o > at && i < end && SCALAR[out[o - 1]] === 1 && SCALAR[src[i]] === 1) return false;
      continue;
    }
    out[o++] = b;
    if (b !== 0x22) continue;
    // A string, to its closing quote. An escape stringifyJson would not write is written as it
    // would: `\/` as `/`, `\u00e9` as `é` (a `\u` it would keep — a control character, a lone
    // surrogate — leaves the record to the parse).
    for (;;) {
      if (i >= end) return false;
      const d = src[i++];
      out[o++] = d;
      if (d === 0x22) break;
      if (d !== 0x5c) continue;
      if (i >= end) return false;
      const x = src[i++];
      if (x === 0x2f) out[o - 1] = 0x2f;
      else if (x === 0x75) {
        o = unescapeInto(src, i, end, out, o - 1);
        if (o < 0) return false;
        i = escapeEnd;
      } else out[o++] = x;
    }
  }
  if (o === at || canonicalLineEnd(out, at, o, members) !== o) return false;
  c.spans[2 * j] = at;
  c.spans[2 * j + 1] = o;
  c.used = o;
  return true;
}
