import { isUtf8 } from "node:buffer";
import { canonicalObjectEnd } from "./canonical-json.js";

/**
 * Where each element of a JSON document's records array lies in its bytes, so that a writer of
 * JSON lines can copy an element that is already canonical (canonical-json.ts) instead of
 * serializing its parsed value again: the same bytes, without the cost.
 *
 * `keys` is the records path as member names (`$.data` → ["data"], `$` → []): the array is the
 * value reached by them. The answer holds two numbers per element, in order: its start and end
 * (exclusive) when the element is a canonical object, -1 and -1 otherwise. It is null whenever the
 * bytes might not say what the parsed document says, and the caller serializes as before:
 * - bytes that are not valid UTF-8 (the parsed text has U+FFFD where the bytes do not), a BOM;
 * - a member name on the path written with an escape (`"d\u0061ta"` is `data` once parsed), or
 *   written twice in its object (JSON.parse keeps the last one);
 * - a path that does not reach an array.
 *
 * The bytes MUST be a document parseJson accepted: the syntax is not checked again (the scan only
 * guards against reading past the end).
 */
export function recordSpans(b: Uint8Array, keys: readonly string[]): number[] | null {
  if (!isUtf8(b)) return null;
  const spans: number[] = [];
  const names = keys.map((k) => Buffer.from(k, "utf8"));
  const end = valueAt(b, space(b, 0), names, 0, spans);
  return end < 0 ? null : spans;
}

/** The end of the value at `i` after walking `names[k..]` into it (the array's spans to `out`); -1: unsure. */
function valueAt(b: Uint8Array, i: number, names: readonly Uint8Array[], k: number, out: number[]): number {
  if (k === names.length) return splitArray(b, i, out);
  if (b[i] !== OPEN_OBJECT) return -1;
  i = space(b, i + 1);
  if (b[i] === CLOSE_OBJECT) return -1;
  let found = false;
  for (;;) {
    if (b[i] !== QUOTE) return -1;
    const nameEnd = plainStringEnd(b, i);
    if (nameEnd < 0) return -1; // an escape in a member name
    const match = sameBytes(b, i + 1, nameEnd - 1, names[k]);
    i = space(b, nameEnd);
    if (b[i] !== COLON) return -1;
    i = space(b, i + 1);
    if (match) {
      if (found) return -1; // the name twice: the parsed value is the last one
      found = true;
      i = valueAt(b, i, names, k + 1, out);
    } else i = valueEnd(b, i);
    if (i < 0) return -1;
    i = space(b, i);
    if (b[i] === COMMA) i = space(b, i + 1);
    else if (b[i] === CLOSE_OBJECT) return found ? i + 1 : -1;
    else return -1;
  }
}

/** The array at `i`: each element's span (canonical objects) or -1, -1; its end, or -1. */
function splitArray(b: Uint8Array, i: number, out: number[]): number {
  if (b[i] !== OPEN_ARRAY) return -1;
  i = space(b, i + 1);
  if (b[i] === CLOSE_ARRAY) return i + 1;
  const n = b.length;
  for (;;) {
    const start = i;
    let end = canonicalObjectEnd(b, i, n);
    if (end >= 0) out.push(start, end);
    else {
      end = valueEnd(b, i);
      if (end < 0) return -1;
      out.push(-1, -1);
    }
    i = space(b, end);
    if (b[i] === COMMA) i = space(b, i + 1);
    else if (b[i] === CLOSE_ARRAY) return i + 1;
    else return -1;
  }
}

/** The end of the JSON value at `i` (valid JSON), or -1 past the bytes. */
function valueEnd(b: Uint8Array, i: number): number {
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
function plainStringEnd(b: Uint8Array, i: number): number {
  const n = b.length;
  for (i++; i < n; i++) {
    const c = b[i];
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) return -1;
  }
  return -1;
}

function sameBytes(b: Uint8Array, from: number, to: number, name: Uint8Array): boolean {
  if (to - from !== name.length) return false;
  for (let j = 0; j < name.length; j++) if (b[from + j] !== name[j]) return false;
  return true;
}

/** The index of the first byte at or after `i` that is not JSON white space. */
function space(b: Uint8Array, i: number): number {
  while (WHITE[b[i]] === 1) i++;
  return i;
}

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const OPEN_OBJECT = 123;
const CLOSE_OBJECT = 125;
const OPEN_ARRAY = 91;
const CLOSE_ARRAY = 93;

const WHITE = new Uint8Array(256);
for (const c of [32, 9, 10, 13]) WHITE[c] = 1;
const DELIMITER = new Uint8Array(256);
for (const c of [32, 9, 10, 13, COMMA, CLOSE_OBJECT, CLOSE_ARRAY]) DELIMITER[c] = 1;
