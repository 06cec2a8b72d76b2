import { createReadStream } from "node:fs";
import type { Row } from "../records/shape.js";
import { COMMA, QUOTE } from "../shared/json-bytes.js";
import { isInheritedName, ownField, stringifyJson } from "../shared/json-text.js";
import { type CsvBytes, memberCell } from "./csv-bytes.js";
import { MemberColumns } from "./member-columns.js";

/** CSV text (RFC 4180): cells, rows, formula escaping, and a streaming parser. */

export const CRLF = "\r\n";
const NEEDS_QUOTES = /[",\r\n]/;

/**
 * A cell's text: null and undefined → empty (as is the empty string: CSV cannot tell them
 * apart); strings as they are, spaces included; numbers and booleans as text; arrays and
 * objects as JSON.
 */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "object") return stringifyJson(value);
  return String(value);
}

/**
 * `output.csv.escape_formulas`: a string cell that a spreadsheet would run as a formula (it
 * starts with `=`, `+`, `-`, `@`, tab or CR, as OWASP lists) gets a leading `'`. A string that
 * is a plain number (`-5`, `+1.5e3`) is left alone: a spreadsheet reads it as that number. Numbers
 * are never touched (only strings are given to this function).
 */
export function formulaSafe(text: string): string {
  const c = text.charCodeAt(0);
  if (c !== 0x3d && c !== 0x2b && c !== 0x2d && c !== 0x40 && c !== 0x09 && c !== 0x0d) return text;
  return PLAIN_NUMBER.test(text) ? text : `'${text}`;
}
const PLAIN_NUMBER = /^[+-](?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The cell text function of a writer: cellText, with formulaSafe on strings when asked. */
export function cellTextFunction(escapeFormulas: boolean): (value: unknown) => string {
  if (!escapeFormulas) return cellText;
  return (value) => (typeof value === "string" ? formulaSafe(value) : cellText(value));
}

/** RFC 4180: quoted (quotes doubled) when it holds `"`, `,`, CR or LF. */
export function csvField(text: string): string {
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One row without its line end. A row of one empty cell is `""`, so that it is not a blank line. */
export function csvRow(cells: string[]): string {
  if (cells.length === 1 && cells[0] === "") return '""';
  let row = "";
  for (let i = 0; i < cells.length; i++) row += (i ? "," : "") + csvField(cells[i]);
  return row;
}

/** A CSV output's columns: the planned ones, then fields in the order they first appear. */
export class CsvColumns {
  readonly names: string[];
  /** Column of each name. */
  private readonly index = new Map<string, number>();
  /** Per column: a name every object inherits (`constructor`…), read as an own field only. */
  private readonly inherited: boolean[];
  /** placeMembers: each member's column, by its position. */
  private readonly members = new MemberColumns<number>((name) => this.column(name));
  /** Each column's member in the record placeMembers placed (-1: none); memberRow clears it. */
  private member = new Int32Array(16).fill(-1);
  /** memberRow: a string's field as `row` writes it (its cell text, quoted as needed). */
  private readonly decoded = (text: string): string => csvField(this.cell(text));

  constructor(
    planned: string[],
    private readonly cell: (value: unknown) => string,
    /** `output.csv.escape_formulas` (memberRow: strings that may start a formula are decoded). */
    private readonly formulas = false,
  ) {
    this.names = [...new Set(planned)];
    for (let i = 0; i < this.names.length; i++) this.index.set(this.names[i], i);
    this.inherited = this.names.map(isInheritedName);
  }

  /** The column of `name`, a new one when it has none. */
  private column(name: string): number {
    let c = this.index.get(name);
    if (c === undefined) {
      c = this.names.length;
      this.index.set(name, c);
      this.names.push(name);
      this.inherited.push(isInheritedName(name));
    }
    return c;
  }

  /** The record's row without its line end; its new fields become columns first. */
  row(record: Row): string {
    const { names, inherited, cell } = this;
    for (const field in record) this.column(field);
    const cells = new Array<string>(names.length);
    for (let i = 0; i < names.length; i++)
      cells[i] = cell(inherited[i] ? ownField(record, names[i]) : record[names[i]]);
    return csvRow(cells);
  }

  /**
   * The columns of a checked record's members (`names`, the first `n`), new ones added as `row`
   * adds them: a canonical record's members come in the order `for…in` gives its parsed object.
   */
  placeMembers(names: readonly string[], n: number): void {
    for (let k = 0; k < n; k++) {
      const c = this.members.at(k, names[k])!;
      if (c >= this.member.length) {
        const member = new Int32Array(2 * Math.max(this.names.length, this.member.length)).fill(-1);
        member.set(this.member);
        this.member = member;
      }
      this.member[c] = k;
    }
  }

  /**
   * The row (csv-bytes.ts) of the record placeMembers placed last, from its bytes: `types` and
   * `values` as the byte checker gives them, for the record in `src`. Its length in bytes. Each
   * placeMembers is followed by one memberRow, which clears the placement for the next record.
   */
  memberRow(out: CsvBytes, src: Uint8Array, types: Uint8Array, values: Int32Array): number {
    const { member, decoded, formulas } = this;
    const start = out.used;
    const width = Math.min(this.names.length, member.length);
    for (let c = 0; c < this.names.length; c++) {
      if (c) out.byte(COMMA);
      const k = c < width ? member[c] : -1;
      if (k < 0) continue;
      member[c] = -1;
      memberCell(out, src, types[k], values[2 * k], values[2 * k + 1], formulas, decoded);
    }
    // A row of one empty cell is `""`, not a blank line (csvRow).
    if (this.names.length === 1 && out.used === start) {
      out.byte(QUOTE);
      out.byte(QUOTE);
    }
    return out.used - start;
  }
}

/** The one record in `text`. */
export function parseOne(text: string): string[] {
  const parser = new CsvParser();
  const rows = [...parser.push(text), ...parser.end()];
  return rows[0] ?? [];
}

/** The records of a CSV file, streamed; a leading BOM and blank lines are skipped. */
export async function* readCsv(file: string): AsyncGenerator<string[]> {
  const parser = new CsvParser();
  const input = createReadStream(file, { encoding: "utf8", highWaterMark: 64 * 1024 });
  try {
    let first = true;
    for await (const chunk of input as AsyncIterable<string>) {
      const text = first && chunk.charCodeAt(0) === 0xfeff ? chunk.slice(1) : chunk;
      first = false;
      yield* parser.push(text);
    }
  } finally {
    input.destroy();
  }
  yield* parser.end();
}

/**
 * An incremental RFC 4180 parser: fed text in pieces, it returns the records completed so far.
 * Lenient where the RFC is silent: a quote inside an unquoted field and text after a closing
 * quote are kept as text; an unterminated quoted field ends at the end of the input; CRLF, LF
 * and CR all end a record.
 */
export class CsvParser {
  private cells: string[] = [];
  private field = "";
  private inQuotes = false;
  /** Just saw a quote inside a quoted field: an escaped quote if another follows. */
  private quoteSeen = false;
  private fieldStart = true;
  /** Anything read in this record (a blank line has nothing). */
  private touched = false;
  private afterCR = false;

  push(text: string): string[][] {
    const records: string[][] = [];
    const n = text.length;
    let i = 0;
    while (i < n) {
      if (this.inQuotes) {
        const q = text.indexOf('"', i);
        if (q < 0) {
          this.field += text.slice(i);
          break;
        }
        this.field += text.slice(i, q);
        i = q + 1;
        this.inQuotes = false;
        this.quoteSeen = true;
        continue;
      }
      const c = text.charCodeAt(i);
      if (this.quoteSeen) {
        this.quoteSeen = false;
        if (c === 0x22) {
          this.field += '"';
          this.inQuotes = true;
          i++;
          continue;
        }
      }
      if (this.afterCR) {
        this.afterCR = false;
        if (c === 0x0a) {
          i++;
          continue;
        }
      }
      if (c === 0x2c) {
        this.cells.push(this.field);
        this.field = "";
        this.fieldStart = true;
        this.touched = true;
        i++;
      } else if (c === 0x0d || c === 0x0a) {
        const record = this.endRecord();
        if (record) records.push(record);
        this.afterCR = c === 0x0d;
        i++;
      } else if (c === 0x22 && this.fieldStart) {
        this.inQuotes = true;
        this.fieldStart = false;
        this.touched = true;
        i++;
      } else {
        let j = i + 1;
        while (j < n) {
          const d = text.charCodeAt(j);
          if (d === 0x2c || d === 0x0d || d === 0x0a) break;
          j++;
        }
        this.field += text.slice(i, j);
        this.fieldStart = false;
        this.touched = true;
        i = j;
      }
    }
    return records;
  }

  end(): string[][] {
    this.inQuotes = false;
    this.quoteSeen = false;
    const record = this.endRecord();
    return record ? [record] : [];
  }

  private endRecord(): string[] | null {
    if (!this.touched) return null;
    this.cells.push(this.field);
    const record = this.cells;
    this.cells = [];
    this.field = "";
    this.fieldStart = true;
    this.touched = false;
    return record;
  }
}
