import { RunError } from "../../shared/errors.js";
import { setOwn } from "../../shared/json-text.js";
import { type ConversionError, FIELD_ERRORS } from "../field-specs.js";
import { lastNewline, type RecordDecoder } from "./decoder.js";

const QUOTE = 34;
const LF = 10;
const CR = 13;

/**
 * CSV (RFC 4180): cells separated by `delimiter`, rows by `\n`, `\r\n` or a lone `\r` (classic Mac
 * line endings, as Excel and Python's csv read them); a cell in double quotes
 * may hold the delimiter, line breaks and doubled quotes (`""` is one `"`); a BOM before the
 * header is skipped; blank lines are skipped. The header row names the fields (`header: false`:
 * `c1`, `c2`, …); values are strings. A row with more or fewer cells than the header is still a
 * record, made invalid with an error naming its line (extra cells as `c<n>`). A quote that does
 * not close before the body ends, or text after a closing quote, is a malformed body naming its line.
 *
 * `raw` (src/run/raw-lines.ts, for a stream whose records nothing reads): a text of plain rows
 * (no quote, backslash or control character; every row of the header's width) is offered there
 * as its records' JSON lines, made by one regular-expression replacement (rowPattern), instead of
 * records; a text it does not take, or that is not plain, is decoded as usual.
 */
export class CsvDecoder implements RecordDecoder {
  private carry: Buffer | null = null;
  /** Text of the unfinished row (after the last complete row of the text decoded so far). */
  private text = "";
  private columns: string[] | null;
  private first = true;
  /** The bytes so far end with a row's `\r`, which a `\n` may complete (lone `\r` line endings). */
  private afterCr = false;
  /** A row ended with a lone `\r`: quoted cells count theirs as line breaks too (for line numbers). */
  private loneCr = false;
  private readonly delim: number;
  /** The header's pattern and JSON (rowPattern), when its rows can be made JSON lines by replacement. */
  private rowJson: RowJson | null = null;
  completeBytes = 0;
  lines = 0;

  constructor(
    opts: { delimiter: string; header: boolean },
    private readonly raw: ((lines: string, rows: number, columns: readonly string[]) => void) | null = null,
  ) {
    this.delim = opts.delimiter.charCodeAt(0);
    this.columns = opts.header ? null : [];
  }

  get held(): number {
    return (this.carry?.length ?? 0) + this.text.length * 3;
  }

  push(chunk: Buffer, out: unknown[]): void {
    if (this.afterCr) {
      // The last chunk ended a row with a `\r`: a `\n` now is the rest of that row's `\r\n`.
      this.afterCr = false;
      if (chunk[0] === LF) {
        this.completeBytes++;
        if (chunk.length === 1) return;
        chunk = chunk.subarray(1);
      }
    }
    const nl = lastBreak(chunk);
    if (nl < 0) {
      this.carry = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
      return;
    }
    const head = this.carry
      ? Buffer.concat([this.carry, chunk.subarray(0, nl + 1)])
      : chunk.subarray(0, nl + 1);
    this.carry = nl + 1 < chunk.length ? chunk.subarray(nl + 1) : null;
    let text = this.text + head.toString("utf8");
    if (this.first) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // its bytes are in `head`
    }
    const before = Buffer.byteLength(this.text);
    if (this.plainRows(text)) {
      this.text = "";
      this.completeBytes += before + head.length;
      return;
    }
    const used = this.rows(text, out, false);
    this.text = text.slice(used);
    this.completeBytes += before + head.length - Buffer.byteLength(this.text);
    this.afterCr = this.text === "" && this.carry === null && chunk[nl] === CR;
  }

  end(out: unknown[]): void {
    let text = this.text + (this.carry ? this.carry.toString("utf8") : "");
    const bytes = Buffer.byteLength(text);
    if (this.first && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    this.carry = null;
    this.text = "";
    if (text === "") return;
    const rows = text.endsWith("\n") ? text : `${text}\n`;
    if (!this.plainRows(rows)) this.rows(rows, out, true);
    this.completeBytes += bytes;
  }

  /**
   * The body is read again after a transport fault, from the first byte not yet decoded into a
   * complete row. When nothing was (the cut came before the header's line feed), that is byte 0:
   * its BOM must be stripped again.
   */
  resume(): void {
    this.carry = null;
    this.text = "";
    this.first = this.completeBytes === 0;
  }

  /**
   * Offers `text` (complete rows) to `raw` as JSON lines when every row is plain and of the
   * header's width; true when it took them. Each row replaced grows by the same number of
   * characters (the JSON around its cells, less its delimiters and CR): the rows all matched
   * exactly when the growth is that many times the row count.
   */
  private plainRows(text: string): boolean {
    const rj = this.rowJson;
    // U+2028, U+2029 and a CR not before LF end lines for a multiline `^`: a match could start
    // inside a row. (Quotes, backslashes and control characters are not in the cells' class.)
    // A quoted cell or a backslash: not plain, known before the scans and the replacement.
    if (!this.raw || !rj || text.includes('"') || text.includes("\\")) return false;
    if (text.includes("\u2028") || text.includes("\u2029")) return false;
    const rows = count(text, "\n");
    const crs = crlfCount(text);
    if (rows === 0 || crs < 0) return false;
    const json = text.replace(rj.pattern, rj.replacement);
    if (json.length - text.length + crs !== rows * rj.growth) return false;
    this.raw(json, rows, this.columns!);
    this.lines += rows;
    return true;
  }

  /** Complete rows of `text`; returns where the unfinished one starts. */
  private rows(text: string, out: unknown[], final: boolean): number {
    const n = text.length;
    const d = this.delim;
    let pos = 0;
    const cells: string[] = [];
    for (;;) {
      if (pos >= n) return pos;
      const rowStart = pos;
      const rowLine = this.lines + 1;
      let lines = 0;
      cells.length = 0;
      for (;;) {
        if (text.charCodeAt(pos) === QUOTE) {
          let value = "";
          let from = pos + 1;
          for (;;) {
            const q = text.indexOf('"', from);
            if (q < 0) {
              if (final) throw malformed(rowLine, "a quoted cell is not closed before the body ends");
              return rowStart; // the row goes on in the next chunk
            }
            value += text.slice(from, q);
            if (text.charCodeAt(q + 1) === QUOTE) {
              value += '"';
              from = q + 2;
              continue;
            }
            pos = q + 1;
            break;
          }
          for (let i = value.indexOf("\n"); i !== -1; i = value.indexOf("\n", i + 1)) lines++;
          if (this.loneCr)
            for (let i = value.indexOf("\r"); i !== -1; i = value.indexOf("\r", i + 1))
              if (value.charCodeAt(i + 1) !== LF) lines++;
          cells.push(value);
          const c = text.charCodeAt(pos);
          if (c === d) {
            pos++;
            continue;
          }
          if (c === CR) {
            if (text.charCodeAt(pos + 1) === LF) pos++;
            else this.loneCr = true;
          } else if (c !== LF)
            throw malformed(rowLine + lines, `text after a closing quote in cell ${cells.length}`);
          pos++;
          break;
        }
        let i = pos;
        let c = text.charCodeAt(i);
        // (Most characters are above `\r`: one comparison besides the delimiter's.)
        while (c !== d && (c > CR || (c !== LF && c !== CR))) c = text.charCodeAt(++i);
        cells.push(text.slice(pos, i));
        pos = i + 1;
        if (c === d) continue;
        if (c === CR) {
          if (text.charCodeAt(pos) === LF) pos++;
          else this.loneCr = true;
        }
        break;
      }
      this.lines += lines + 1;
      if (cells.length === 1 && cells[0] === "" && text.charCodeAt(rowStart) !== QUOTE) continue; // blank line
      this.emit(cells, rowLine, out);
    }
  }

  private emit(cells: string[], line: number, out: unknown[]): void {
    if (this.columns === null) {
      const names = new Set<string>();
      for (const name of cells) {
        // Two cells of a row under one field name: one of them would be lost.
        if (names.has(name))
          throw malformed(
            line,
            `the header names the column ${JSON.stringify(name)} twice, so a row's cells could not all be kept (use \`header: false\` for fields c1, c2, …)`,
          );
        names.add(name);
      }
      this.columns = cells.slice();
      if (this.raw) this.rowJson = rowPattern(this.columns, String.fromCharCode(this.delim));
      return;
    }
    const cols = this.columns;
    const named = cols.length ? cols : null;
    const rec: Record<string, unknown> = {};
    if (!named) {
      for (let i = 0; i < cells.length; i++) rec[`c${i + 1}`] = cells[i];
      out.push(rec);
      return;
    }
    const width = Math.min(cols.length, cells.length);
    for (let i = 0; i < width; i++) setOwn(rec, cols[i], cells[i]);
    if (cells.length !== cols.length) {
      for (let i = cols.length; i < cells.length; i++) setOwn(rec, `c${i + 1}`, cells[i]);
      const err: ConversionError = {
        field: "csv_row",
        type: "csv",
        value: line,
        message: `line ${line}: ${cells.length} cells, the header has ${cols.length}`,
      };
      (rec as Record<symbol, unknown>)[FIELD_ERRORS] = [err];
    }
    out.push(rec);
  }
}

/**
 * Where `b`'s complete rows may end: its last line break, a `\r` after the last line feed included
 * (lone `\r` line endings). A record worker's unit ends at a row's end (record-workers/cut.ts):
 * the decoder must take it whole, or a retry (resume) would drop the rows it kept back.
 */
function lastBreak(b: Buffer): number {
  let at = lastNewline(b);
  for (let cr = b.indexOf(CR, at + 1); cr !== -1; cr = b.indexOf(CR, cr + 1)) at = cr;
  return at;
}

/** How many CRs `text` holds, each before a LF; -1 when one is not. */
function crlfCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf("\r"); i !== -1; i = text.indexOf("\r", i + 1)) {
    if (text.charCodeAt(i + 1) !== LF) return -1;
    n++;
  }
  return n;
}

/** How many times `ch` occurs in `text`. */
function count(text: string, ch: string): number {
  let n = 0;
  for (let i = text.indexOf(ch); i !== -1; i = text.indexOf(ch, i + 1)) n++;
  return n;
}

interface RowJson {
  /** A row of the header's width, in plain cells (a CR before its LF taken with it). */
  pattern: RegExp;
  /** The record's JSON: each cell a string as it is, in the header's order. */
  replacement: string;
  /** Characters a row gains when replaced (the JSON around its cells less its delimiters). */
  growth: number;
}

/**
 * The RowJson of a header, or null when a replacement cannot give the records' JSON: fewer than
 * two columns (one column's pattern would also match the empty place between a CR and its LF) or
 * more than 99 (`$100` is not a group reference), a
 * column named like an array index (an object lists those first, not in the header's order), a
 * delimiter that is a quote, a line end or not ASCII.
 */
function rowPattern(columns: string[], delimiter: string): RowJson | null {
  if (columns.length < 2 || columns.length > 99 || columns.some((name) => ARRAY_INDEX.test(name)))
    return null;
  const c = delimiter.charCodeAt(0);
  if (c === QUOTE || c === LF || c === CR || c > 0x7f) return null;
  const d = `\\x${c.toString(16).padStart(2, "0")}`;
  // A cell: no delimiter, line end, quote, backslash or control character (JSON escapes those).
  const cells = columns.map(() => `([^${d}\\x00-\\x1f"\\\\]*)`);
  // `$1`…`$n` (`$10` is the tenth group when there are ten), `$` in a name written `$$`.
  const members = columns.map((name, i) => `${JSON.stringify(name).replaceAll("$", "$$$$")}:"$${i + 1}"`);
  const json = `{${columns.map((name) => `${JSON.stringify(name)}:""`).join(",")}}`;
  return {
    pattern: new RegExp(`^${cells.join(d)}\\r?$`, "gm"),
    replacement: `{${members.join(",")}}`,
    growth: json.length - (columns.length - 1),
  };
}

/** A column name an object would list before the others (an array index, as V8 orders keys). */
const ARRAY_INDEX = /^(?:0|[1-9]\d{0,9})$/;

function malformed(line: number, what: string): RunError {
  return new RunError("bad_body", `line ${line} of the CSV body is malformed: ${what}`, { line });
}
