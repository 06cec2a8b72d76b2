import {
  BACKSLASH,
  CLOSE_ARRAY,
  CLOSE_OBJECT,
  COLON,
  COMMA,
  DOT,
  MINUS,
  OPEN_ARRAY,
  OPEN_OBJECT,
  QUOTE,
  SHORT_ESCAPE,
} from "./json-bytes.js";
import { T_ARRAY, T_BOOLEAN, T_INTEGER, T_NULL, T_NUMBER, T_OBJECT, T_STRING } from "./json-types.js";

/**
 * A strict reading of one JSON line that is ALSO the check JSON.parse would make: true only when
 * the bytes are a valid JSON object AND canonical (what stringifyJson writes for the value they
 * parse to: the rules of canonical-json.ts, checked here without a parse before). Its top-level
 * members' names and value types go to `members`, so that a JSON lines body whose records nothing
 * reads (no schema, no shaping: src/run/raw-lines.ts) can be counted and written without parsing.
 *
 * Grammar, all of it: an object first; no white space; strings of bytes ≥ 0x20 with only the
 * escapes `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t` (no `\u`: JSON.stringify writes `é` for
 * `\u00e9`); numbers `-?(0|[1-9][0-9]*)` with an optional fraction of digits and no exponent;
 * `true`, `false`, `null`; members `"name":value` apart by commas; arrays of values. Canonical:
 * no name that starts with a digit (V8 lists integer names first), no name twice in an object (or
 * two whose hashes clash), at most 256 names per object and 64 levels, no `-0`, a fraction that
 * does not end in 0, at most 15 digits in a decimal, at most five zeros after `0.`. The bytes must
 * be valid UTF-8 (the caller checks it: buffer.isUtf8). Reads nothing outside [start, end).
 */
export interface LineMembers {
  /** Top-level members read. */
  count: number;
  /** Per member: its name's first byte and the byte after it (inside the quotes). */
  readonly names: Int32Array;
  /** Per member: its value's type, as quality.ts counts them (TYPE_NAMES order). */
  readonly types: Uint8Array;
  /** Whether a member name holds an escape (`\"`…): its text is not its bytes. */
  escaped: boolean;
}

export const MAX_LINE_MEMBERS = 256;

export function lineMembers(): LineMembers {
  return {
    count: 0,
    names: new Int32Array(2 * MAX_LINE_MEMBERS),
    types: new Uint8Array(MAX_LINE_MEMBERS),
    escaped: false,
  };
}

export function readCanonicalLine(b: Uint8Array, start: number, end: number, m: LineMembers): boolean {
  return canonicalLineEnd(b, start, end, m) === end;
}

/**
 * Where the canonical JSON object at `start` ends (the index after its `}`), reading no further
 * than `end`; -1 when the bytes there are not one (readCanonicalLine's rules). A line feed is never
 * inside one (a string holds no control character), so `end` may be the end of many lines.
 */
export function canonicalLineEnd(b: Uint8Array, start: number, end: number, m: LineMembers): number {
  m.count = 0;
  m.escaped = false;
  if (start >= end || b[start] !== OPEN_OBJECT) return -1;
  let depth = 0;
  keyTop = 0;
  let i = start;
  // Each turn reads a value at `i`, then what follows it up to the next value (a comma, a name
  // and its colon, closing brackets).
  for (;;) {
    if (i >= end) return -1;
    const c = b[i];
    let type: number;
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (depth === MAX_DEPTH) return -1;
      if (depth === 1) m.types[m.count - 1] = c === OPEN_OBJECT ? T_OBJECT : T_ARRAY;
      objects[depth] = c === OPEN_OBJECT ? 1 : 0;
      frames[depth++] = keyTop;
      i++;
      if (i >= end) return -1;
      if (b[i] === (c === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) {
        keyTop = frames[--depth];
        i++;
      } else if (c === OPEN_OBJECT) {
        i = name(b, i, end, depth, m);
        if (i < 0) return -1;
        continue;
      } else continue; // an array's first value
    } else {
      if (c === QUOTE) {
        i = stringEnd(b, i + 1, end);
        type = T_STRING;
      } else if (c === 116) {
        i = literal(b, i, end, TRUE);
        type = T_BOOLEAN;
      } else if (c === 102) {
        i = literal(b, i, end, FALSE);
        type = T_BOOLEAN;
      } else if (c === 110) {
        i = literal(b, i, end, NULL);
        type = T_NULL;
      } else {
        i = numberEnd(b, i, end);
        type = numberType;
      }
      if (i < 0) return -1;
      if (depth === 1) m.types[m.count - 1] = type;
    }
    // After a value: commas and closing brackets, until the next value (or the end).
    for (;;) {
      if (depth === 0) return i;
      if (i >= end) return -1;
      const d = b[i];
      if (d === COMMA) {
        i++;
        if (objects[depth - 1] === 1) {
          i = name(b, i, end, depth, m);
          if (i < 0) return -1;
        }
        break;
      }
      if (d !== (objects[depth - 1] === 1 ? CLOSE_OBJECT : CLOSE_ARRAY)) return -1;
      keyTop = frames[--depth];
      i++;
    }
  }
}

/** Name hashes in `keys` of the objects being read: the next free place. */
let keyTop = 0;

/** A member name at `i` and its colon: the index of its value, or -1. */
function name(b: Uint8Array, at: number, end: number, depth: number, m: LineMembers): number {
  let i = at;
  if (i >= end || b[i] !== QUOTE) return -1;
  i++;
  if (i >= end) return -1;
  const from = i;
  const first = b[i];
  if (first >= 48 && first <= 57) return -1;
  let h = 0;
  let escaped = false;
  for (;;) {
    if (i >= end) return -1;
    let d = b[i];
    if (d === QUOTE) break;
    if (d < 0x20) return -1;
    if (d === BACKSLASH) {
      if (i + 1 >= end) return -1;
      d = b[i + 1];
      if (SHORT_ESCAPE[d] !== 1) return -1;
      d += 256;
      escaped = true;
      i++;
    }
    h = (Math.imul(h, 31) + d) | 0;
    i++;
  }
  h = (Math.imul(h, 31) + i - from) | 0;
  const base = frames[depth - 1];
  if (keyTop - base >= MAX_KEYS || keyTop >= keys.length) return -1;
  for (let k = base; k < keyTop; k++) if (keys[k] === h) return -1; // twice (or a hash clash)
  keys[keyTop++] = h;
  if (depth === 1) {
    if (m.count === MAX_LINE_MEMBERS) return -1;
    m.names[2 * m.count] = from;
    m.names[2 * m.count + 1] = i;
    m.count++;
    if (escaped) m.escaped = true;
  }
  i++; // the closing quote
  if (i >= end || b[i] !== COLON) return -1;
  i++;
  return i < end ? i : -1;
}

/** The index after a string whose first character is at `i`, or -1 (not canonical, or past `end`). */
function stringEnd(b: Uint8Array, from: number, end: number): number {
  let i = from;
  for (;;) {
    if (i >= end) return -1;
    const d = b[i];
    if (d === QUOTE) return i + 1;
    if (d < 0x20) return -1;
    if (d === BACKSLASH) {
      if (i + 1 >= end || SHORT_ESCAPE[b[i + 1]] !== 1) return -1;
      i += 2;
    } else i++;
  }
}

function literal(b: Uint8Array, i: number, end: number, word: Uint8Array): number {
  if (i + word.length > end) return -1;
  for (let k = 1; k < word.length; k++) if (b[i + k] !== word[k]) return -1;
  return i + word.length;
}

/** The type of the number numberEnd read last (integer or number). */
let numberType = T_INTEGER;

/** The end of the canonical number at `i`, or -1; sets numberType. */
function numberEnd(b: Uint8Array, i: number, end: number): number {
  let p = i;
  if (b[p] === MINUS) p++;
  if (p >= end) return -1;
  const intStart = p;
  let c = b[p];
  if (c === 48) p++;
  else if (c >= 49 && c <= 57) {
    p++;
    while (p < end && isDigit(b[p])) p++;
  } else return -1;
  const zero = p - intStart === 1 && b[intStart] === 48;
  c = p < end ? b[p] : 0;
  if (c === 101 || c === 69) return -1; // an exponent
  if (c !== DOT) {
    if (zero && intStart > i) return -1; // -0 is written 0
    numberType = T_INTEGER;
    return p;
  }
  const fracStart = ++p;
  while (p < end && isDigit(b[p])) p++;
  if (p === fracStart) return -1; // `1.`
  c = p < end ? b[p] : 0;
  if (c === 101 || c === 69) return -1;
  if (b[p - 1] === 48) return -1; // 1.50 is written 1.5
  if (p - intStart - 1 > 15) return -1;
  if (zero) {
    let z = fracStart;
    while (b[z] === 48) z++;
    if (z - fracStart > 5) return -1; // 0.0000001 is written 1e-7
  }
  numberType = T_NUMBER;
  return p;
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;

const MAX_DEPTH = 64;
const MAX_KEYS = 256;
const TRUE = Buffer.from("true");
const FALSE = Buffer.from("false");
const NULL = Buffer.from("null");

/** Per nesting level: where its object's name hashes start in `keys`; 1 for an object, 0 for an array. */
const frames = new Int32Array(MAX_DEPTH);
const objects = new Uint8Array(MAX_DEPTH);
/** Name hashes of the objects being read (reused: no allocation per line). */
const keys = new Int32Array(4096);
