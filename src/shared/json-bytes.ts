/**
 * JSON's bytes as numbers, for the code that reads JSON from its bytes without parsing it
 * (json-spans.ts, json-tail.ts, canonical-json.ts, canonical-line.ts; outputs/csv-bytes.ts).
 * Imports nothing.
 */
export const QUOTE = 34;
export const BACKSLASH = 92;
export const COMMA = 44;
export const COLON = 58;
export const MINUS = 45;
export const DOT = 46;
export const OPEN_OBJECT = 123;
export const CLOSE_OBJECT = 125;
export const OPEN_ARRAY = 91;
export const CLOSE_ARRAY = 93;

/** JSON white space (space, tab, line feed, carriage return): 1, else 0. */
export const WHITE = new Uint8Array(256);
for (const c of [32, 9, 10, 13]) WHITE[c] = 1;

/** Escapes JSON.stringify writes as they are: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`: 1, else 0. */
export const SHORT_ESCAPE = new Uint8Array(256);
for (const ch of '"\\bfnrt') SHORT_ESCAPE[ch.charCodeAt(0)] = 1;
