import { createReadStream } from "node:fs";
import type { OutputPlan } from "../compile/plan.js";
import type { Row } from "../records/shape.js";
import { isInheritedName, ownField, stringifyJson } from "../shared/json-text.js";
import { AtomicFile, fileExists, SpanReader } from "./atomic-file.js";
import {
  combine,
  type Key,
  keyFunction,
  type Layout,
  type OldRecord,
  RunKeys,
  requireKeyForMerge,
} from "./merge.js";
import { type RecordWriter, rejectedPath, type WriterContext } from "./writer.js";

const CRLF = "\r\n";
const ROWS: Layout = { open: "", sep: "", term: CRLF, close: "", empty: "" };
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
function cellTextFunction(escapeFormulas: boolean): (value: unknown) => string {
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

/**
 * CSV (RFC 4180, CRLF line ends, a header row). Columns: the schema's properties in order when
 * there is a schema, then fields outside it in the order they first appear (extra columns are
 * kept, never dropped); without a schema, the fields in the order they first appear.
 *
 * Rows go to a temporary body file with the columns known so far. If columns were added after
 * the header was written, or records must be combined (append, merge, duplicates), commit
 * streams the old target and the body, row by row, into a second temporary file with the full
 * header, earlier rows padded with empty cells. For append and merge the old file's header
 * comes first, in its order, then this run's new columns.
 */
export async function openCsvWriter(output: OutputPlan, ctx: WriterContext): Promise<RecordWriter> {
  requireKeyForMerge(output, ctx.primaryKey);
  const escapeFormulas = output.csv?.escapeFormulas ?? false;
  const cell = cellTextFunction(escapeFormulas);
  /** A column name as the header row writes it (names come from the API, too). */
  const headerText = escapeFormulas ? formulaSafe : (name: string) => name;
  const headerRow = (names: string[]) => csvRow(escapeFormulas ? names.map(formulaSafe) : names);
  const keyOf = ctx.primaryKey?.length ? csvKeyFunction(ctx.primaryKey, cell) : null;
  const keys = keyOf ? new RunKeys() : null;
  const columns: string[] = [...new Set(ctx.columns ?? [])];
  const known = new Set(columns);
  /** Per column: a name every object inherits (`constructor`…), read as an own field only. */
  const inherited = columns.map(isInheritedName);
  const body = await AtomicFile.create(output.path, ctx.runId, "body");
  let out: AtomicFile | null = null;
  let reader: SpanReader | null = null;
  /** Columns in the body's header; -1 before the header is written. */
  let headerWidth = -1;
  let count = 0;
  let bytes = 0;

  const commitCombined = async (mode = output.mode, target = output.path): Promise<void> => {
    await body.close();
    const bodyColumns = columns;
    const old = mode !== "replace" && (await fileExists(output.path)) ? await openCsv(output.path) : null;
    try {
      const final = old ? [...old.header] : [];
      const position = new Map<string, number>();
      final.forEach((c, i) => {
        if (!position.has(c)) position.set(c, i);
      });
      for (const name of bodyColumns) {
        const c = headerText(name);
        if (!position.has(c)) {
          position.set(c, final.length);
          final.push(c);
        }
      }
      const width = final.length;
      const bodyMap = bodyColumns.map((c) => position.get(headerText(c))!);
      out = await AtomicFile.create(target, ctx.runId);
      if (width || count || old) await out.write(csvRow(final) + CRLF);
      reader = await SpanReader.open(body.tmpPath);
      const handle = reader;
      const toFinal = (cells: string[]): string => csvRow(remap(cells, bodyMap, width));
      await combine({
        out,
        layout: ROWS,
        mode,
        old: old
          ? oldRows(output.path, old, width, mode === "merge" ? ctx.primaryKey : null, cell, headerText)
          : null,
        body: bodyRows(body.tmpPath, headerWidth >= 0, toFinal),
        keys,
        latest: async (slot) => toFinal(parseOne(await handle.read(slot.offset, slot.length))),
      });
      await reader.close();
      reader = null;
    } finally {
      await old?.rows.return(undefined);
    }
    await out.commit();
    await body.abort();
  };

  return {
    write(record: Row) {
      for (const field in record) {
        if (!known.has(field)) {
          known.add(field);
          columns.push(field);
          inherited.push(isInheritedName(field));
        }
      }
      const cells = new Array<string>(columns.length);
      for (let i = 0; i < columns.length; i++)
        cells[i] = cell(inherited[i] ? ownField(record, columns[i]) : record[columns[i]]);
      const row = csvRow(cells);
      let text = row + CRLF;
      if (headerWidth < 0) {
        headerWidth = columns.length;
        const header = headerRow(columns) + CRLF;
        text = header + text;
        bytes += Buffer.byteLength(header);
      }
      if (keys && keyOf) {
        const length = Buffer.byteLength(row);
        keys.see(keyOf(record), count, bytes, length);
        bytes += length + 2;
      }
      count++;
      return body.write(text);
    },
    duplicates: () => keys?.duplicates ?? 0,
    async commit() {
      if (headerWidth < 0 && columns.length) {
        headerWidth = columns.length;
        await body.write(headerRow(columns) + CRLF);
      }
      const grown = columns.length > Math.max(headerWidth, 0);
      if (output.mode === "replace" && !keys?.duplicates && !grown) {
        await body.commit();
        return;
      }
      await commitCombined();
    },
    async keepRejected() {
      const target = rejectedPath(output.path, ctx.runId);
      if (headerWidth < 0 && columns.length) {
        headerWidth = columns.length;
        await body.write(headerRow(columns) + CRLF);
      }
      const grown = columns.length > Math.max(headerWidth, 0);
      if (!keys?.duplicates && !grown) await body.commit(target);
      else await commitCombined("replace", target);
      return target;
    },
    async abort() {
      await reader?.close().catch(() => {});
      await body.abort();
      await out?.abort();
    },
  };
}

/** Keys compared as cell text (what a CSV file keeps); an empty cell matches nothing. */
function csvKeyFunction(
  primaryKey: string[],
  cell: (value: unknown) => string,
): (record: Record<string, unknown>) => Key | null {
  return keyFunction(primaryKey, (v) => {
    const t = cell(v);
    return t === "" ? undefined : t;
  });
}

/** Cells placed at their final positions (`map[i]` for cell i), padded with empty cells. */
function remap(cells: string[], map: number[], width: number): string[] {
  const out = new Array<string>(width).fill("");
  const n = Math.min(cells.length, map.length);
  for (let i = 0; i < n; i++) out[map[i]] = cells[i];
  return out;
}

async function* bodyRows(
  file: string,
  hasHeader: boolean,
  toFinal: (cells: string[]) => string,
): AsyncGenerator<string> {
  let skip = hasHeader;
  for await (const cells of readCsv(file)) {
    if (skip) skip = false;
    else yield toFinal(cells);
  }
}

interface OpenCsv {
  header: string[];
  rows: AsyncGenerator<string[]>;
}

/** An existing CSV file: its header, and an iterator over the rows after it; null when empty. */
async function openCsv(file: string): Promise<OpenCsv | null> {
  const rows = readCsv(file);
  const first = await rows.next();
  if (first.done) return null;
  return { header: first.value, rows };
}

/** The old file's rows in the final columns (its header is their prefix); keys for merge. */
async function* oldRows(
  file: string,
  old: OpenCsv,
  width: number,
  primaryKey: string[] | null,
  cell: (value: unknown) => string,
  headerText: (name: string) => string,
): AsyncGenerator<OldRecord> {
  const keyAt = primaryKey?.map((f) => old.header.indexOf(headerText(f))) ?? null;
  const keyed = keyAt !== null && !keyAt.includes(-1);
  const keyOf = primaryKey ? csvKeyFunction(primaryKey, cell) : null;
  const cellsByName: Record<string, string> = Object.create(null);
  let line = 1;
  for (let next = await old.rows.next(); !next.done; next = await old.rows.next()) {
    line++;
    const cells = next.value;
    if (cells.length > width) {
      if (cells.slice(width).some((c) => c !== "")) {
        throw new Error(
          `cannot add to ${file}: row ${line} has ${cells.length} cells but the header names ${old.header.length} columns`,
        );
      }
      cells.length = width;
    }
    while (cells.length < width) cells.push("");
    let key: Key | null = null;
    if (keyed && keyAt && keyOf && primaryKey) {
      for (let k = 0; k < keyAt.length; k++) cellsByName[primaryKey[k]] = cells[keyAt[k]];
      key = keyOf(cellsByName);
    }
    yield { text: csvRow(cells), key };
  }
}

/** The one record in `text`. */
function parseOne(text: string): string[] {
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
