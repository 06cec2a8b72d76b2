import { createHash } from "node:crypto";
import type { DuckDBConnection } from "@duckdb/node-api";
import type { Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import {
  escapesLoneSurrogate,
  LONE_SURROGATE,
  loneSurrogateField,
  stringifyJson,
} from "../shared/json-text.js";
import { T_NULL, T_NUMBER } from "../shared/json-types.js";
import { AtomicFile } from "./atomic-file.js";
import { LONG_LINE_BYTES, q } from "./duckdb-engine.js";
import { MemberColumns } from "./member-columns.js";
import { heapInUse, RELEASE_HEAP_EVERY_CHARS, releaseHeap } from "./release-heap.js";
import {
  type ColumnType,
  DUCKDB_STAGING_TYPES,
  DUCKDB_TYPES,
  describeValue,
  fits,
  fitsType,
  sqlString,
  TYPE_KINDS,
  valueType,
} from "./table-shape.js";

/**
 * read_json's `maximum_object_size` (it allocates buffers of twice that): the longest staged line
 * in bytes at most (3 UTF-8 bytes per UTF-16 unit), at least 1 MiB.
 */
const MIN_OBJECT_BYTES = 1024 * 1024;

export interface StagedColumn {
  name: string;
  kind: ColumnType;
  /** From the schema (a value that does not fit is refused), or inferred (the column widens). */
  typed: boolean;
  /** Inferred, and only nulls so far: the first value sets the type (text if none comes). */
  pending?: boolean;
}

/** Where a Stager keeps its records until `finish()`: a temporary file beside the output. */
export interface StagingFile {
  /** The output file the temporary file sits beside (`.<name>.<run id>.<tag>.tmp`). */
  near: string;
  runId: string;
}

/**
 * Staged records go to a new temporary file after this many characters: read_json reserves a
 * buffer of 32 MiB per file, but touches (makes resident) only what the file fills of it, so
 * files of 1 MiB cut the peak RSS of a 200,000-record load by about 30 MiB (measured: a 37 MB
 * staging file in one piece +65 MiB over the connected engine, in 1 MB parts +34 MiB).
 */
export const STAGING_PART_CHARS = 1024 * 1024;

/**
 * Stages one stream's records for DuckDB: each record is written as a JSON line to temporary
 * files (as fast as the jsonl output; a new file every {@link STAGING_PART_CHARS}), and
 * `finish()` makes the staging table a temporary view of the files through `read_json` (DuckDB
 * parses them, within its memory limit, when the commit reads them: the records are copied once,
 * into the target). The view has the record's position in the run as `__pl_row` (field names
 * starting with `__pl_` are refused: a field named `rowid` is a column like any other), and the
 * columns with their staging types (READ_TYPES: DUCKDB_STAGING_TYPES, JSON kept as JSON). The columns
 * and their types are worked out in JavaScript while records arrive, so a value a typed column
 * cannot hold is refused naming its record, and a column without a schema widens instead
 * (integer → number → JSON text): the file keeps every value as JSON, read at the end with the
 * column's final type.
 */
export class Stager {
  readonly columns: StagedColumn[] = [];
  private readonly byLower = new Map<string, StagedColumn>();
  private readonly byName = new Map<string, StagedColumn>();
  private file: AtomicFile | null = null;
  private opening: Promise<AtomicFile> | null = null;
  /** Files filled before `file`, in order. */
  private readonly done: AtomicFile[] = [];
  /** Characters in `file`. */
  private fileChars = 0;
  private readonly closing: Promise<void>[] = [];
  private closeError: unknown = null;
  private created = false;
  private finished = false;
  /** Records seen (`see`). */
  private count = 0;
  /** seeMembers: each member's column, by its position. */
  private readonly members = new MemberColumns<StagedColumn>((name) => this.byName.get(name));
  /** writeLines: a position's digits, last first. */
  private readonly digits = new Uint8Array(20);
  /** Records staged: the next one's position (`__pl_row`). */
  private staged = 0;
  /** The longest staged line in bytes at most (a string's UTF-16 units count 3 bytes each). */
  private longest = 0;
  /** Characters staged in all files. */
  private chars = 0;
  /** Bytes of the staged lines of {@link LONG_LINE_BYTES} or more (duckdb-engine.ts withMemory). */
  longBytes = 0;
  /** When `chars` reaches it, a filled file is followed by a collection (RELEASE_HEAP_EVERY_CHARS). */
  private releaseAt = 2 * RELEASE_HEAP_EVERY_CHARS;
  private readonly bigSeen = new Set<string>();

  constructor(
    private readonly conn: DuckDBConnection,
    readonly table: string,
    /** Columns known before any record (the schema's properties, the primary key). */
    planned: { name: string; kind: ColumnType | null }[],
    /** Names the metadata columns take: a field with one of them is refused. */
    private readonly reserved: string[],
    private readonly recordId: (row: Row, position: number) => string,
    private readonly what: string,
    private readonly staging: StagingFile,
  ) {
    for (const p of planned) this.add(p.name, p.kind, p.kind !== null, null, true);
  }

  get hasTable(): boolean {
    return this.created;
  }

  get rows(): number {
    return this.staged;
  }

  /** Characters of JSON staged so far (all files). */
  get stagedChars(): number {
    return this.chars;
  }

  /**
   * Stages `row`. `json`, when given, is the row's JSON exactly as stringifyJson writes it (a JSON
   * lines body's canonical line, RecordWriter.write): staged as it is, not serialized again.
   */
  write(row: Row, json?: string): Promise<void> | undefined {
    this.see(row);
    const text = json ?? stringifyJson(row);
    if (escapesLoneSurrogate(text)) this.refuseLoneSurrogate(row, this.count);
    return this.stage(`{"${ROW_FIELD}":${this.staged++}${text.length > 2 ? `,${text.slice(1)}` : "}"}\n`);
  }

  /**
   * A record about to be staged (by `write`, or in `writeLines` by the writer's RecordWriter.seeRow):
   * its columns and their types, refused naming the record when a typed column cannot hold a value,
   * or, when `suspect` (its JSON may escape a lone surrogate: RecordWriter.seeRow), when it does.
   */
  see(row: Row, suspect = false): void {
    this.count++;
    for (const name in row) {
      const v = row[name];
      const c = this.byName.get(name) ?? this.add(name, null, false, v, false);
      if (v === null || v === undefined) continue;
      if (c.pending) {
        c.kind = valueType(v) ?? "text";
        c.pending = false;
      }
      if (fits(c.kind, v)) {
        if (typeof v === "bigint") this.bigSeen.add(name);
        continue;
      }
      if (c.typed || c.kind === "json")
        throw new RunError(
          "output",
          `record ${this.recordId(row, this.count)}: field \`${c.name}\` holds ${describeValue(v)}, which its ${DUCKDB_TYPES[c.kind]} column cannot hold exactly (${this.what}); declare the field's type in the schema (\`type: string\` keeps any value as text)`,
        );
      // A column without a schema meets a value of another type: integer → number, else JSON.
      c.kind = this.widened(c, valueType(v) === "double");
      if (typeof v === "bigint") this.bigSeen.add(name);
    }
    if (suspect && loneSurrogateField(row) !== undefined) this.refuseLoneSurrogate(row, this.count);
  }

  /**
   * `see` for a record known only by its top-level members' names and JSON types (numbered as
   * quality.ts counts them; records/byte-check.ts: valid, no number beyond 15 digits or with an
   * exponent): true when it is seen; false, with nothing changed, when telling it needs its values
   * (a new column, a value its typed column does not hold: `see` then says what is wrong).
   */
  seeMembers(names: readonly string[], types: Uint8Array, n: number): boolean {
    const { members } = this;
    for (let i = 0; i < n; i++) {
      const c = members.at(i, names[i]);
      if (!c) return false;
      const t = types[i];
      if (t === T_NULL || c.pending || c.kind === "json") continue;
      if (!fitsType(c.kind, t) && (c.typed || !(c.kind === "bigint" && t === T_NUMBER))) return false;
    }
    this.count++;
    for (let i = 0; i < n; i++) {
      const t = types[i];
      if (t === T_NULL) continue;
      const c = members.at(i, names[i])!;
      if (c.pending) {
        c.kind = TYPE_KINDS[t];
        c.pending = false;
      } else if (!fitsType(c.kind, t)) c.kind = this.widened(c, t === T_NUMBER);
    }
    return true;
  }

  /**
   * The type a column without a schema takes for a value it does not hold: an integer column meets
   * a number (`toDouble`) → number, unless it held an integer beyond 2^53; anything else → JSON.
   */
  private widened(c: StagedColumn, toDouble: boolean): ColumnType {
    return c.kind === "bigint" && toDouble && !this.bigSeen.has(c.name) ? "double" : "json";
  }

  /**
   * The last `count` records `see` was given, as their JSON lines (RecordWriter.writeLines: copied
   * from a page's bytes or serialized, exactly as stringifyJson writes them; `see` refused those
   * whose JSON escapes a lone surrogate): staged with their positions, as `write` would have staged
   * them one by one.
   */
  writeLines(text: Uint8Array | string, count: number): Promise<void> | undefined {
    const src =
      typeof text === "string"
        ? Buffer.from(text)
        : Buffer.from(text.buffer, text.byteOffset, text.byteLength);
    // Each line gains its position and loses its `{`: at most 12 + 16 digits + 1 bytes more.
    const out = Buffer.allocUnsafe(src.length + 30 * count);
    const prefix = ROW_PREFIX;
    const digits = this.digits;
    let o = 0;
    let from = 0;
    for (let i = 0; i < count; i++) {
      const start = o;
      // `{"__pl_row":` and the position's digits byte by byte (a string written per line cost twice
      // the time), then the line from its second byte, in one copy.
      for (let j = 0; j < prefix.length; j++) out[o++] = prefix[j];
      let v = this.staged++;
      let d = 0;
      do {
        const q = Math.floor(v / 10);
        digits[d++] = 48 + v - 10 * q;
        v = q;
      } while (v > 0);
      while (d > 0) out[o++] = digits[--d];
      const nl = src.indexOf(10, from);
      if (nl - from > 2) {
        out[o++] = 44; // `,` then the record's members, `}` and the line feed
        o += src.copy(out, o, from + 1, nl + 1);
      } else {
        out[o++] = 125; // `{}`: `}` and the line feed
        out[o++] = 10;
      }
      from = nl + 1;
      if (o - start > this.longest) this.longest = o - start;
      if (o - start >= LONG_LINE_BYTES) this.longBytes += o - start;
    }
    return this.stage(out.subarray(0, o));
  }

  private refuseLoneSurrogate(row: Row, position: number): never {
    // read_json would refuse the staged file far from the record (or, as UTF-8, change it).
    throw new RunError(
      "output",
      `record ${this.recordId(row, position)}: field ${JSON.stringify(loneSurrogateField(row) ?? "?")} ${LONE_SURROGATE} (${this.what})`,
    );
  }

  /**
   * Stages lines: one (`write`: its UTF-16 units counted, read_json's buffer allows 3 bytes each)
   * or many (`writeLines`: bytes). The file parts and the collections count units or bytes alike:
   * both are sizes of about the same text.
   */
  private stage(lines: string | Uint8Array): Promise<void> | undefined {
    if (typeof lines === "string") {
      if (3 * lines.length > this.longest) this.longest = 3 * lines.length;
      if (lines.length >= LONG_LINE_BYTES / 3) {
        const bytes = Buffer.byteLength(lines);
        if (bytes >= LONG_LINE_BYTES) this.longBytes += bytes;
      }
    }
    this.chars += lines.length;
    if (this.file && this.fileChars < STAGING_PART_CHARS) {
      this.fileChars += lines.length;
      return this.file.write(lines);
    }
    return this.nextFile(lines);
  }

  /** Writes `line` into a new file (the first, or the next part: the full one is closed). */
  private async nextFile(line: string | Uint8Array): Promise<void> {
    if (!this.opening) {
      const full = this.file;
      this.file = null;
      this.fileChars = 0;
      if (full) this.done.push(full);
      if (this.chars >= this.releaseAt) {
        releaseHeap(this.chars);
        // A collection costs about as much as the heap it keeps (a merge's keys, say): the next
        // one waits until at least as much again is staged, so collecting stays a small share.
        this.releaseAt = this.chars + Math.max(RELEASE_HEAP_EVERY_CHARS, heapInUse());
      }
      const n = this.done.length;
      const tag = `staging-${tagOf(this.table)}${n ? `-${n}` : ""}`;
      this.opening = AtomicFile.create(this.staging.near, this.staging.runId, tag);
      // Closed while records keep coming; finish() and drop() wait for it.
      if (full)
        this.closing.push(
          full.close().catch((err: unknown) => {
            this.closeError ??= err;
          }),
        );
    }
    const f = await this.opening;
    this.file ??= f;
    if (this.file === f) this.opening = null;
    this.fileChars += line.length;
    await f.write(line);
  }

  /** Defines the staging table: a view of the staged records (none without any column). */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    const file = this.file ?? (this.opening ? await this.opening : null);
    this.file = file;
    this.opening = null;
    if (file) await file.close();
    await Promise.all(this.closing);
    if (this.closeError) throw this.closeError;
    const files = file ? [...this.done, file] : this.done;
    if (!this.columns.length) return;
    const t = q(this.table);
    let select: string;
    if (!files.length || this.staged === 0) {
      const cols = this.columns.map((c) => `CAST(NULL AS ${READ_TYPES[c.kind]}) AS ${q(c.name)}`);
      select = `SELECT CAST(NULL AS BIGINT) AS ${q(ROW_FIELD)}, ${cols.join(", ")} WHERE false`;
    } else {
      const spec = [
        `${sqlString(ROW_FIELD)}: 'BIGINT'`,
        ...this.columns.map((c) => `${sqlString(c.name)}: ${sqlString(READ_TYPES[c.kind])}`),
      ].join(", ");
      // JSON columns stay JSON (the text read_json wrote): a cast to VARCHAR here made the commit's
      // cast back to JSON parse every value again.
      const exprs = this.columns.map((c) => q(c.name));
      select = `SELECT ${q(ROW_FIELD)}, ${exprs.join(", ")} FROM read_json([${files.map((f) => sqlString(f.tmpPath)).join(", ")}], format = 'newline_delimited', columns = {${spec}}, maximum_object_size = ${Math.max(MIN_OBJECT_BYTES, this.longest + 64)})`;
    }
    await this.conn.run(`CREATE OR REPLACE TEMP VIEW ${t} AS ${select}`);
    this.created = true;
  }

  /** Drops the staging view and its file (after the commit, or for a failed stream). */
  async drop(): Promise<void> {
    this.finished = true;
    if (this.created) await this.conn.run(`DROP VIEW IF EXISTS ${q(this.table)}`);
    this.created = false;
    await this.dropFile();
  }

  private async dropFile(): Promise<void> {
    const file = this.file ?? (this.opening ? await this.opening.catch(() => null) : null);
    this.file = null;
    this.opening = null;
    await Promise.all(this.closing);
    const files = [...this.done.splice(0), ...(file ? [file] : [])];
    for (const f of files) await f.abort();
  }

  /** `planned`: a column known before any record (a child table's own `__pl_parent` among them). */
  private add(
    name: string,
    kind: ColumnType | null,
    typed: boolean,
    value: unknown,
    planned: boolean,
  ): StagedColumn {
    const lower = name.toLowerCase();
    const other = this.byLower.get(lower);
    if (other) {
      if (other.name !== name)
        throw new RunError(
          "output",
          `fields \`${other.name}\` and \`${name}\` differ only in case: DuckDB column names ignore case (${this.what}); rename one with \`fields\``,
        );
      return other;
    }
    if (name === "" || name.includes("\0"))
      throw new RunError(
        "output",
        `a field named ${JSON.stringify(name)} cannot be a DuckDB column (${this.what}); select the fields to keep with \`fields\``,
      );
    if (lower === ROW_FIELD || (!planned && lower.startsWith("__pl_")))
      throw new RunError(
        "output",
        `field \`${name}\` has a name the DuckDB output uses itself (names starting with \`__pl_\`; ${this.what}); rename it with \`fields\``,
      );
    if (this.reserved.includes(lower))
      throw new RunError(
        "output",
        `field \`${name}\` has the name of a metadata column (${this.what}); rename it with \`fields\`, or set \`output.metadata_columns: false\``,
      );
    // A new column without a schema takes the type of its first value (text if none comes).
    const first = kind ?? valueType(value);
    const col: StagedColumn = { name, kind: first ?? "text", typed, pending: first === null };
    this.byLower.set(lower, col);
    this.byName.set(name, col);
    this.columns.push(col);
    return col;
  }
}

/** The field each staged line starts with: the record's position in the run. */
const ROW_FIELD = "__pl_row";
/** What writeLines puts before a staged line's members: `{"__pl_row":` (its position follows). */
const ROW_PREFIX = Buffer.from(`{"${ROW_FIELD}":`, "latin1");

/** How read_json reads a column of each type (date-times, dates as text: cast at commit). */
const READ_TYPES: Record<ColumnType, string> = { ...DUCKDB_STAGING_TYPES, json: "JSON" };

/** A short file-name-safe tag for a table name. */
function tagOf(table: string): string {
  return createHash("sha256").update(table).digest("hex").slice(0, 16);
}
