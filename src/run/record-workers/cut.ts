const LF = 10;
const CR = 13;
const QUOTE = 34;
const BOM = [0xef, 0xbb, 0xbf];

/**
 * Where a body's bytes can be cut into units that hold only complete records: after a line feed
 * (JSONL), after a line feed or a `\r` outside a quoted cell (CSV: the same rules as
 * decoders/csv.ts, whose lone `\r` ends a row too; a `\r\n` cut between its two bytes is one
 * break there — the decoder keeps that across units —; a
 * quote opens a quoted cell only at the start of a cell, `""` inside one is a quote, a BOM at the
 * body's start is skipped). Bytes are compared, never decoded: UTF-8 never puts a byte below 0x80
 * inside a multi-byte character, and the delimiter is ASCII (else the stream is not eligible).
 */
export class RowCutter {
  private quoted = false;
  /** A quote inside a quoted cell was the last byte: `""` (a quote) or the cell's end. */
  private quotePending = false;
  private cellStart = true;
  /** Bytes of the body scanned (the BOM is skipped only at its start). */
  private offset = 0;

  constructor(private readonly csvDelimiter: number | null) {}

  /** The index after the last row end in `b` (scanned after every byte before it), or 0. */
  scan(b: Buffer): number {
    const at = this.offset;
    this.offset += b.length;
    if (this.csvDelimiter === null) return b.lastIndexOf(LF) + 1;
    if (!this.quoted && !this.quotePending && at >= 3 && b.indexOf(QUOTE) < 0) {
      if (b.length) {
        const c = b[b.length - 1];
        this.cellStart = c === LF || c === CR || c === this.csvDelimiter;
      }
      const lf = b.lastIndexOf(LF);
      return (lf >= 0 ? lf : b.lastIndexOf(CR)) + 1;
    }
    return this.slow(b, at);
  }

  /** The body is read again from a row's end (a retry after a transport fault). */
  reset(offset: number): void {
    this.quoted = false;
    this.quotePending = false;
    this.cellStart = true;
    this.offset = offset;
  }

  private slow(b: Buffer, at: number): number {
    const d = this.csvDelimiter;
    let end = 0;
    for (let i = 0; i < b.length; i++) {
      const c = b[i];
      if (at + i < 3 && c === BOM[at + i]) continue;
      if (this.quoted) {
        if (this.quotePending) {
          this.quotePending = false;
          if (c === QUOTE) continue;
          this.quoted = false;
        } else {
          if (c === QUOTE) this.quotePending = true;
          continue;
        }
      }
      if (c === QUOTE && this.cellStart) {
        this.quoted = true;
        this.cellStart = false;
      } else if (c === LF || c === CR) {
        end = i + 1;
        this.cellStart = true;
      } else this.cellStart = c === d;
    }
    return end;
  }
}
