import {
  BACKSLASH,
  CLOSE_ARRAY,
  CLOSE_OBJECT,
  COMMA,
  DOT,
  MINUS,
  OPEN_ARRAY,
  OPEN_OBJECT,
  QUOTE,
  SHORT_ESCAPE,
} from "./json-bytes.js";

/**
 * Whether the UTF-8 bytes of a JSON object are already what stringifyJson writes for the value
 * they parse to: then a JSON lines export's line can be written as it came instead of being
 * serialized again (the same bytes, without the cost). The rule is conservative: `true` only
 * when `stringifyJson(parseJson(text)) === text` holds by construction; anything unsure is
 * `false` and the caller serializes the parsed value as before (the output never depends on it).
 *
 * The bytes MUST be valid UTF-8 (buffer.isUtf8) of a text that parseJson accepted: the syntax is
 * not checked again. Canonical means:
 * - an object (`{` first), with nothing outside strings but tokens (no white space, no BOM);
 * - no key twice in an object (JSON.parse keeps the last value), no key that starts with a digit
 *   (V8 puts integer-like keys first), at most 256 keys per object, at most 64 levels of nesting;
 * - no escape in strings but `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t` (JSON.stringify writes
 *   `\/` as `/`, `\u00e9` as `é`, and its own `\u` escapes in lower case: left to it);
 * - numbers: integers other than `-0`, of any length (parseJson keeps those beyond 2^53 exact as
 *   BigInt), and decimals without exponent, of at most 15 digits (a double keeps 15 significant
 *   digits exactly), whose fraction does not end in 0 and, below 1, has at most five leading
 *   zeros (JSON.stringify writes 0.0000001 as 1e-7).
 */
export function isCanonicalJsonObject(b: Uint8Array, start: number, end: number): boolean {
  return canonicalObjectEnd(b, start, end) === end;
}

/**
 * Where the canonical JSON object at `start` ends (the index after its `}`), reading no further
 * than `end`; -1 when the object is not canonical (isCanonicalJsonObject) or does not end there.
 * The same rules; bytes that are not JSON give some answer but never a read past `end`.
 */
export function canonicalObjectEnd(b: Uint8Array, start: number, end: number): number {
  if (b[start] !== OPEN_OBJECT) return -1;
  let depth = 0;
  let keyTop = 0;
  /** The next string is a key (after `{`, or after `,` in an object). */
  let key = false;
  let i = start;
  while (i < end) {
    const c = b[i];
    if (c === QUOTE) {
      i++;
      if (!key) {
        // A value: its end (bytes ≥ 0x80 are never a quote or a backslash).
        for (let d = b[i]; d !== QUOTE; d = b[i]) {
          if (i >= end) return -1;
          if (d !== BACKSLASH) i++;
          else if (SHORT_ESCAPE[b[i + 1]] === 1) i += 2;
          else return -1;
        }
        i++;
        continue;
      }
      // A key: no digit first, hashed on the way, not seen before in this object.
      const from = i;
      const first = b[i];
      if (first >= 48 && first <= 57) return -1;
      let h = 0;
      for (let d = first; d !== QUOTE; d = b[i]) {
        if (i >= end) return -1;
        if (d === BACKSLASH) {
          d = b[i + 1];
          if (SHORT_ESCAPE[d] !== 1) return -1;
          d += 256;
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
      i += 2; // the quote and the colon
      key = false;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (depth === MAX_DEPTH) return -1;
      objects[depth] = c === OPEN_OBJECT ? 1 : 0;
      frames[depth++] = keyTop;
      key = c === OPEN_OBJECT;
      i++;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      keyTop = frames[--depth];
      i++;
      if (depth === 0) return i;
    } else if (c === COMMA) {
      key = objects[depth - 1] === 1;
      i++;
    } else if (c === 116 || c === 110)
      i += 4; // true, null
    else if (c === 102)
      i += 5; // false
    else if (c === MINUS || (c >= 48 && c <= 57)) {
      i = canonicalNumber(b, i);
      if (i < 0) return -1;
    } else return -1; // white space, a BOM
  }
  return -1;
}

/** The end of the number token at `i`, or -1 when JSON.stringify may write it otherwise. */
function canonicalNumber(b: Uint8Array, i: number): number {
  let p = i;
  if (b[p] === MINUS) p++;
  const intStart = p;
  let c = b[p];
  while (c >= 48 && c <= 57) c = b[++p];
  const zero = p - intStart === 1 && b[intStart] === 48;
  if (c === 101 || c === 69) return -1; // an exponent
  if (c !== DOT) return zero && intStart > i ? -1 : p; // -0 is written 0
  const fracStart = p + 1;
  c = b[++p];
  while (c >= 48 && c <= 57) c = b[++p];
  if (c === 101 || c === 69) return -1;
  if (b[p - 1] === 48) return -1; // 1.50 is written 1.5, 2.0 as 2
  if (p - intStart - 1 > 15) return -1;
  if (zero) {
    let z = fracStart;
    while (b[z] === 48) z++;
    if (z - fracStart > 5) return -1;
  }
  return p;
}

const MAX_DEPTH = 64;
const MAX_KEYS = 256;

/** Per nesting level: where its object's key hashes start in `keys`; 1 for an object, 0 for an array. */
const frames = new Int32Array(MAX_DEPTH);
const objects = new Uint8Array(MAX_DEPTH);
/** Key hashes of the objects being read (reused: no allocation per text). */
const keys = new Int32Array(4096);
