import { rejectedPath } from "../compile/layout.js";
import type { OutputPlan } from "../compile/plan.js";
import { jsonTextAt, scalarAt } from "../records/byte-check.js";
import type { Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import { isWellFormed, LONE_SURROGATE, loneSurrogateField } from "../shared/json-text.js";
import { AtomicFile } from "./atomic-file.js";
import { CsvBytes } from "./csv-bytes.js";
import { commitCombined, csvKeyFunction, type OpenFiles } from "./csv-combine.js";
import { CRLF, CsvColumns, cellTextFunction, csvRow, formulaSafe } from "./csv-format.js";
import { type Key, RunKeys, requireKeyForMerge } from "./merge.js";
import type { RecordWriter, WriterContext } from "./writer.js";

export { CsvParser, cellText, csvField, csvRow, formulaSafe, readCsv } from "./csv-format.js";

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
  const body = await AtomicFile.create(output.path, ctx.runId, "body");
  return new CsvWriter(output, ctx, body);
}

class CsvWriter implements RecordWriter {
  private readonly cell: (value: unknown) => string;
  /** A column name as the header row writes it (names come from the API, too). */
  private readonly headerText: (name: string) => string;
  private readonly keyOf: ((record: Row) => Key | null) | null;
  private readonly keys: RunKeys | null;
  private readonly table: CsvColumns;
  /** Columns in the body's header; -1 before the header is written. */
  private headerWidth = -1;
  private count = 0;
  private bytes = 0;
  private readonly open: OpenFiles = { out: null, reader: null };

  constructor(
    private readonly output: OutputPlan,
    private readonly ctx: WriterContext,
    private readonly body: AtomicFile,
  ) {
    const escapeFormulas = output.csv?.escapeFormulas ?? false;
    this.cell = cellTextFunction(escapeFormulas);
    this.headerText = escapeFormulas ? formulaSafe : (name: string) => name;
    this.keyOf = ctx.primaryKey?.length ? csvKeyFunction(ctx.primaryKey, this.cell) : null;
    this.keys = this.keyOf ? new RunKeys() : null;
    this.table = new CsvColumns(ctx.columns ?? [], this.cell, escapeFormulas);
  }

  private headerRow(): string {
    return csvRow(this.table.names.map(this.headerText)) + CRLF;
  }

  write(record: Row): Promise<void> | undefined {
    return this.body.write(this.rowLine(record));
  }

  /** The record's row and line end (the header first, before the first row); its key noted. */
  private rowLine(record: Row): string {
    const known = this.table.names.length;
    const row = this.table.row(record);
    if (!isWellFormed(row)) throw loneSurrogateError(record, this.count + 1, this.output.path);
    // Each new name on its own (two joined could pair a half ending one with one starting the next).
    const names = this.table.names;
    for (let i = known; i < names.length; i++)
      if (!isWellFormed(names[i]!)) throw loneSurrogateError(record, this.count + 1, this.output.path);
    let text = row + CRLF;
    const header = this.startHeader();
    if (header) text = header + text;
    if (this.keys && this.keyOf) {
      const length = Buffer.byteLength(row);
      this.keys.see(this.keyOf(record), this.count, this.bytes, length);
      this.bytes += length + 2;
    }
    this.count++;
    return text;
  }

  /** Before the first row: the header row with the columns known now (then null). */
  private startHeader(): string | null {
    if (this.headerWidth >= 0) return null;
    this.headerWidth = this.table.names.length;
    const header = this.headerRow();
    this.bytes += Buffer.byteLength(header);
    return header;
  }

  /**
   * Paged JSON (src/run/page-work/): each record to write comes here first, in order, on this
   * thread — parsed (`seeRow`) or checked from its bytes (`seeMembers`) —, its row made into
   * `rows`; `writeLines` then writes the rows of that many records (the JSON lines it is given
   * are not read). The rows are those `write` makes, byte for byte.
   */
  private readonly rows = new CsvBytes();

  readonly seeRow = (row: Row, _suspect: boolean): void => {
    // Made (and refused) before its row is added: a refused record's row is never written (its new
    // columns are kept, as `write` keeps them; the refusal ends the stream).
    const line = this.rowLine(row);
    this.rows.text(line);
    this.rows.rows++;
  };

  readonly seeMembers: NonNullable<RecordWriter["seeMembers"]> = (names, types, n, values, src) => {
    // The page holds no `\ud` escape and is UTF-8 (checked-lines.ts): no lone surrogate, in names either.
    const { table, rows } = this;
    table.placeMembers(names, n);
    const header = this.startHeader();
    if (header) rows.text(header);
    const length = table.memberRow(rows, src, types, values);
    rows.byte(0x0d);
    rows.byte(0x0a);
    rows.rows++;
    if (this.keys && this.keyOf) {
      this.keys.see(
        this.keyOf(keyFields(this.ctx.primaryKey!, names, types, n, values, src)),
        this.count,
        this.bytes,
        length,
      );
      this.bytes += length + 2;
    }
    this.count++;
    return true;
  };

  writeLines(_json: Uint8Array | string, count: number): Promise<void> | undefined {
    const { rows } = this;
    if (count !== rows.rows)
      throw new Error(`csv: ${count} records to write, ${rows.rows} rows made for them`);
    return this.body.write(rows.take());
  }

  duplicates(): number {
    return this.keys?.duplicates ?? 0;
  }

  async commit(): Promise<void> {
    const grown = await this.finishHeader();
    if (this.output.mode === "replace" && !this.keys?.duplicates && !grown) {
      await this.body.commit();
      return;
    }
    await this.combineInto(this.output.mode, this.output.path);
  }

  async keepRejected(): Promise<string> {
    const target = rejectedPath(this.output.path, this.ctx.runId);
    const grown = await this.finishHeader();
    if (!this.keys?.duplicates && !grown) await this.body.commit(target);
    else await this.combineInto("replace", target);
    return target;
  }

  async abort(): Promise<void> {
    await this.open.reader?.close().catch(() => {});
    await this.body.abort();
    await this.open.out?.abort();
  }

  /** Writes the header when no record did; whether columns came after the header. */
  private async finishHeader(): Promise<boolean> {
    const columns = this.table.names;
    if (this.headerWidth < 0 && columns.length) {
      this.headerWidth = columns.length;
      await this.body.write(this.headerRow());
    }
    return columns.length > Math.max(this.headerWidth, 0);
  }

  private combineInto(mode: OutputPlan["mode"], target: string): Promise<void> {
    const { output, ctx, body, keys, cell, headerText } = this;
    const columns = this.table.names;
    const input = {
      output,
      runId: ctx.runId,
      primaryKey: ctx.primaryKey,
      body,
      columns,
      keys,
      cell,
      headerText,
    };
    return commitCombined(
      { ...input, hasHeader: this.headerWidth >= 0, count: this.count },
      this.open,
      mode,
      target,
    );
  }
}

/**
 * The primary key's fields of a checked record (seeMembers), read from their bytes as the
 * record's parse gives them (scalarAt; an array or object parsed from its JSON): the record's key
 * is read from them as from the parsed record (csvKeyFunction).
 */
function keyFields(
  primaryKey: readonly string[],
  names: readonly string[],
  types: Uint8Array,
  n: number,
  values: Int32Array,
  src: Buffer,
): Row {
  const fields: Row = Object.create(null);
  for (const name of primaryKey)
    for (let k = 0; k < n; k++)
      if (names[k] === name) {
        const s = values[2 * k];
        const e = values[2 * k + 1];
        const v = scalarAt(src, types[k], s, e);
        fields[name] = v === undefined ? JSON.parse(jsonTextAt(src, s, e)) : v;
        break;
      }
  return fields;
}

/** A record whose text UTF-8 cannot hold: refused, naming it, rather than written changed. */
function loneSurrogateError(record: Row, n: number, file: string): RunError {
  const field = loneSurrogateField(record) ?? "?";
  return new RunError("output", `record #${n}, field ${JSON.stringify(field)}: ${LONE_SURROGATE} (${file})`);
}
