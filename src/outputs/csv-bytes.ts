import { stringAt } from "../records/byte-check.js";
import { BACKSLASH, COMMA, QUOTE } from "../shared/json-bytes.js";
import { T_ARRAY, T_NULL, T_OBJECT, T_STRING } from "../shared/json-types.js";

/**
 * CSV rows made from a checked record's bytes (records/byte-check.ts: canonical JSON, each
 * top-level member's name, JSON type and value span), byte for byte as csv-format.ts makes them
 * from the parsed record: a value's canonical bytes are what stringifyJson writes for it, so a
 * number's or a boolean's are its cell text (String(value)), an object's or an array's are its
 * JSON; a string is copied from between its quotes unless it holds an escape (then it is decoded).
 * Canonical JSON never holds a raw quote, CR or LF inside a string, so a string cell needs quotes
 * only for a comma; an object or array cell needs them for a quote or a comma, its quotes doubled.
 */

/** Longer copies go through Buffer.copy; shorter ones are a loop (a native call costs more). */
const COPY_LOOP_MAX = 48;

/** Bytes of CSV rows, in a buffer that grows; `take()` hands them over and starts a new one. */
export class CsvBytes {
  private buf = Buffer.allocUnsafe(64 * 1024);
  used = 0;
  /** Rows since the last `take()`. */
  rows = 0;

  /** Room for `n` more bytes. */
  room(n: number): void {
    if (this.used + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.used + n));
    this.buf.copy(grown, 0, 0, this.used);
    this.buf = grown;
  }

  byte(c: number): void {
    this.room(1);
    this.buf[this.used++] = c;
  }

  text(s: string): void {
    this.room(3 * s.length);
    this.used += this.buf.write(s, this.used, "utf8");
  }

  /** Bytes [s, e) of `src`. */
  copy(src: Uint8Array, s: number, e: number): void {
    const n = e - s;
    this.room(n);
    const { buf } = this;
    let o = this.used;
    if (n > COPY_LOOP_MAX) (src as Buffer).copy(buf, o, s, e);
    else for (let j = s; j < e; j++) buf[o++] = src[j];
    this.used += n;
  }

  /** Bytes [s, e) of `src` between quotes, each quote doubled. */
  quoted(src: Uint8Array, s: number, e: number): void {
    this.room(2 * (e - s) + 2);
    const { buf } = this;
    let o = this.used;
    buf[o++] = QUOTE;
    for (let j = s; j < e; j++) {
      const c = src[j];
      buf[o++] = c;
      if (c === QUOTE) buf[o++] = QUOTE;
    }
    buf[o++] = QUOTE;
    this.used = o;
  }

  /** The rows so far (a buffer of their own), and a new empty buffer. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(Math.max(64 * 1024, this.used));
    this.used = 0;
    this.rows = 0;
    return out;
  }
}

/**
 * One cell from member `k` of the record the checker read from `src`: `values` holds each member's
 * value span (2k, 2k + 1), `types` its JSON type. `field` makes the field of a string that holds an
 * escape or, with formula escaping (`formulas`), may start like a formula: its cell text, quoted as
 * csv-format.ts csvField quotes it.
 */
export function memberCell(
  out: CsvBytes,
  src: Uint8Array,
  type: number,
  s: number,
  e: number,
  formulas: boolean,
  field: (text: string) => string,
): void {
  if (type === T_NULL) return;
  if (type === T_STRING) {
    const from = s + 1;
    const to = e - 1;
    let comma = false;
    let plain = !(formulas && from < to && formulaStart(src[from]));
    if (plain)
      for (let j = from; j < to; j++) {
        const c = src[j];
        if (c === BACKSLASH) {
          plain = false;
          break;
        }
        if (c === COMMA) comma = true;
      }
    if (!plain) out.text(field(stringAt(src as Buffer, from, to)));
    else if (comma) {
      out.byte(QUOTE);
      out.copy(src, from, to);
      out.byte(QUOTE);
    } else out.copy(src, from, to);
    return;
  }
  if (type === T_OBJECT || type === T_ARRAY) {
    for (let j = s; j < e; j++) {
      const c = src[j];
      if (c === QUOTE || c === COMMA) {
        out.quoted(src, s, e);
        return;
      }
    }
  }
  // Numbers, booleans, and objects or arrays without a quote or a comma (`[]`, `[1]`, `{}`).
  out.copy(src, s, e);
}

/** A first byte csv-format.ts formulaSafe looks at (`=`, `+`, `-`, `@`; tab and CR come escaped). */
function formulaStart(c: number): boolean {
  return c === 0x3d || c === 0x2b || c === 0x2d || c === 0x40;
}
