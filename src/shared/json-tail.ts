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
import { documentStart, plainStringEnd, sameBytes, space, valueEnd } from "./json-spans.js";

/**
 * What a cursor paginator needs of a page, read from the two ends of its bytes without scanning
 * the records between: the top-level members before the records array (read forwards) and the
 * plain members after it (read backwards from the document's closing brace), so that the next
 * page can be asked for before the page is scanned. A guess, checked afterwards against the
 * paginator's own answer (read-pages.ts): a page whose guess was wrong costs one request more,
 * never a wrong page. Null whenever unsure: the page is then read as before.
 */
export interface TailValues {
  /** Per name asked for: its value's start and end in the bytes. */
  spans: number[];
}

/**
 * Reads the document `b` (a JSON object) for the top-level members `names` and checks that its
 * member `records` is a non-empty array (`records` null: the document is that array, and no
 * names are read). Each name must be found: among the members before the
 * records array, or among the scalar members after the last array or object of the document
 * (read backwards: the last member of a name is the one a parse keeps). Null when a name is not
 * found, the records array is empty or missing, a member name has an escape, or the bytes are
 * not shaped as expected. Wrong answers come only from pages that write a member name twice (a
 * parse keeps the last): a name before the records and again between them and a later object is
 * read from before; a second records array after a later object is not seen (its emptiness
 * neither). The bytes between the ends are not read: a page broken in the middle is found not to
 * be JSON by its full read, after its guess left. Each costs the request of a guess, dropped.
 */
export function tailValues(
  b: Uint8Array,
  records: Uint8Array | null,
  names: readonly Uint8Array[],
): TailValues | null {
  const spans = new Array<number>(2 * names.length).fill(-1);
  // Forwards, up to the records array (usually its first member).
  let i = documentStart(b);
  if (records === null) {
    // The document is the records array (`records: $`): a first element in it, and no names.
    if (names.length || b[back(b, b.length - 1)] !== CLOSE_ARRAY) return null;
    return nonEmptyArrayAt(b, i) ? { spans } : null;
  }
  if (b[i] !== OPEN_OBJECT) return null;
  i = space(b, i + 1);
  for (;;) {
    if (b[i] !== QUOTE) return null;
    const nameFrom = i + 1;
    const nameEnd = plainStringEnd(b, i);
    if (nameEnd < 0) return null;
    i = space(b, nameEnd);
    if (b[i] !== COLON) return null;
    const at = space(b, i + 1);
    if (sameBytes(b, nameFrom, nameEnd - 1, records)) {
      if (!nonEmptyArrayAt(b, at)) return null;
      break;
    }
    const end = valueEnd(b, at);
    if (end <= at) return null;
    const k = nameIndex(b, nameFrom, nameEnd - 1, names);
    if (k >= 0) {
      spans[2 * k] = at;
      spans[2 * k + 1] = end;
    }
    i = space(b, end);
    if (b[i] !== COMMA) return null; // the object ends before its records array
    i = space(b, i + 1);
  }
  // Backwards from the closing brace, over plain members, to the first array or object.
  const seen = new Array<boolean>(names.length).fill(false);
  let j = back(b, b.length - 1);
  if (b[j] !== CLOSE_OBJECT) return null;
  j = back(b, j - 1);
  for (;;) {
    const c = b[j];
    if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) break;
    const end = j + 1;
    const start = c === QUOTE ? stringStart(b, j) : scalarStart(b, j);
    if (start < 0 || start >= end) return null;
    j = back(b, start - 1);
    if (b[j] !== COLON) return null;
    j = back(b, j - 1);
    if (b[j] !== QUOTE) return null;
    const nameEnd = j; // the closing quote
    const open = plainStringStart(b, nameEnd);
    if (open < 0) return null;
    const k = nameIndex(b, open + 1, nameEnd, names);
    if (k >= 0 && !seen[k]) {
      seen[k] = true;
      spans[2 * k] = start;
      spans[2 * k + 1] = end;
    }
    j = back(b, open - 1);
    if (b[j] !== COMMA) return null; // the object's start, with no records array: not a page
    j = back(b, j - 1);
  }
  return spans.includes(-1) ? null : { spans };
}

/** Whether an array with a first element in it starts at `i`. */
function nonEmptyArrayAt(b: Uint8Array, i: number): boolean {
  if (b[i] !== OPEN_ARRAY) return false;
  const first = space(b, i + 1);
  return first < b.length && b[first] !== CLOSE_ARRAY;
}

function nameIndex(b: Uint8Array, from: number, to: number, names: readonly Uint8Array[]): number {
  for (let k = 0; k < names.length; k++) if (sameBytes(b, from, to, names[k])) return k;
  return -1;
}

/** The opening quote of the string whose closing quote is at `j`; -1 for one with an escape. */
function plainStringStart(b: Uint8Array, j: number): number {
  for (j--; j >= 0; j--) {
    const c = b[j];
    if (c === QUOTE) return j;
    if (c === BACKSLASH) return -1;
  }
  return -1;
}

/**
 * The opening quote of the string whose closing quote is at `j`: the first quote before it that
 * is not escaped (preceded by an even number of backslashes); -1 when none.
 */
function stringStart(b: Uint8Array, j: number): number {
  for (j--; j >= 0; j--) {
    if (b[j] !== QUOTE) continue;
    let k = j - 1;
    while (k >= 0 && b[k] === BACKSLASH) k--;
    if ((j - 1 - k) % 2 === 0) return j;
  }
  return -1;
}

/** The first byte of the number, true, false or null ending at `j`. */
function scalarStart(b: Uint8Array, j: number): number {
  while (j >= 0 && SCALAR[b[j]] === 1) j--;
  return j + 1;
}

/** The index of the last byte at or before `j` that is not JSON white space (-1: none). */
function back(b: Uint8Array, j: number): number {
  while (j >= 0 && WHITE[b[j]] === 1) j--;
  return j;
}

/** Bytes of a JSON number, true, false or null. */
const SCALAR = new Uint8Array(256);
for (const c of "0123456789+-.eEtruefalsn") SCALAR[c.charCodeAt(0)] = 1;
