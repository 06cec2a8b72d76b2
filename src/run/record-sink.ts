import { mkdir, open, rm } from "node:fs/promises";
import path from "node:path";
import { quarantineFile } from "../compile/layout.js";
import type { StreamPlan, ValidationPlan } from "../compile/plan.js";
import { AtomicFile } from "../outputs/atomic-file.js";
import { openWriter } from "../outputs/registry.js";
import type { CommitState, InvalidEntry, RecordWriter } from "../outputs/writer.js";
import type { RecordError, StreamQuality } from "../records/quality.js";
import type { Row } from "../records/shape.js";
import { RunError } from "../shared/errors.js";
import { parseJson, stringifyJson } from "../shared/json-text.js";
import type { Redactor } from "../shared/secrets.js";
import type { CursorTracker } from "./incremental.js";
import type { LinesChunk, WriterHooks } from "./record-workers/streamed-types.js";
import type { StreamResult } from "./stream-result.js";

/** Records checked from their bytes in this run's process, on any thread (tests: the path was taken). */
let checkedFromBytes = 0;
export const bytesCheckedRecords = (): number => checkedFromBytes;

/**
 * Where a stream's shaped records go, in order: validated, then written (and kept for child
 * streams), quarantined, or failing the stream, as `invalid_records` says. Owns the stream's
 * output writer, its quarantine file and the parent-records file; nothing is visible under a real
 * name before `commit`.
 */
export class RecordSink {
  private quarantine: AtomicFile | null = null;
  /** Under checkpoints: quarantine lines waiting for the next commit (then appended to the file). */
  private pendingInvalid: string[] | null = null;
  readonly quarantinePath: string;

  private constructor(
    private writer: RecordWriter | null,
    private keep: AtomicFile | null,
    stream: StreamPlan,
    private readonly deps: SinkDeps,
  ) {
    this.quarantinePath = quarantineFile(stream);
  }

  static async open(
    stream: StreamPlan,
    deps: SinkDeps,
    keepRecordsAt: string | null,
    /** A writer of the caller's (checkpoints, `write: false`: checkpoint-writers.ts). */
    own: RecordWriter | null = null,
  ): Promise<RecordSink> {
    const writer =
      own ??
      (await openWriter(stream.output, {
        runId: deps.runId,
        stream: stream.name,
        columns: schemaColumns(stream),
        primaryKey: stream.primaryKey,
        schema: stream.schema?.schema ?? null,
        redactor: deps.redactor,
        drift: deps.validation.drift,
        cursorField: stream.incremental?.cursorField ?? null,
      }));
    try {
      const keep = keepRecordsAt ? await AtomicFile.create(keepRecordsAt, deps.runId) : null;
      return new RecordSink(writer, keep, stream, deps);
    } catch (err) {
      await writer.abort().catch(() => {});
      throw err;
    }
  }

  /**
   * Every shaped record goes through here, in order. The common case (valid, no backpressure)
   * returns nothing to await: no promise per record. `json`: the row's JSON exactly as
   * stringifyJson writes it, when the caller has it (a JSON lines body's canonical line).
   */
  readonly accept = (row: Row, json?: string): Promise<void> | undefined => {
    const { quality, result } = this.deps;
    const errors = quality.check(row);
    result.records.seen = quality.seen + result.records.filtered;
    if (errors.length) return this.acceptInvalid(row, errors);
    result.records.valid++;
    if (this.keep) {
      const k = this.keep.write(`${stringifyJson(row)}\n`);
      if (k) return k.then(() => this.writeRow(row, json));
    }
    return this.writeRow(row, json);
  };

  /** A record that passed (or is kept anyway): written, counted, its cursor seen. */
  private writeRow(row: Row, json?: string): Promise<void> | undefined {
    const p = this.writer!.write(row, json);
    this.deps.result.records.written++;
    this.deps.cursor?.see(row);
    return p;
  }

  private async acceptInvalid(row: Row, errors: RecordError[]): Promise<void> {
    const { quality, result, redactor, validation } = this.deps;
    result.records.invalid++;
    const id = quality.recordId(row, quality.seen);
    if (validation.invalidRecords === "fail") {
      throw new RunError(
        "validation",
        redactor.text(`record ${id} is invalid (invalid_records: fail): ${errors.map(describe).join("; ")}`),
      );
    }
    if (validation.invalidRecords === "skip" && this.writer?.writeInvalid) {
      const p = this.writer.writeInvalid(redactor.value({ record_id: String(id), errors, record: row }));
      if (p) await p;
      return;
    }
    if (validation.invalidRecords === "skip" && this.pendingInvalid) {
      this.pendingInvalid.push(`${stringifyJson(redactor.value({ record_id: id, errors, record: row }))}\n`);
      return;
    }
    if (validation.invalidRecords === "skip") {
      await this.quarantineLine(`${stringifyJson(redactor.value({ record_id: id, errors, record: row }))}\n`);
      return;
    }
    const p = this.writeRow(row);
    if (p) await p;
  }

  private async quarantineLine(line: string): Promise<void> {
    this.quarantine ??= await AtomicFile.create(this.quarantinePath, this.deps.runId);
    const p = this.quarantine.write(line);
    if (p) await p;
  }

  /**
   * Whether records serialized by a record worker can come in through `acceptLines`: the writer
   * lays out JSON lines without seeing the records (seeRow), nothing is kept for child streams,
   * invalid records go out at once (the quarantine file, or the writer's table: not held for
   * checkpoints), and `invalid_records` is not `fail`.
   */
  takesLines(): boolean {
    return this.linesFit() && !this.writer!.seeRow;
  }

  /**
   * `takesLines` for a writer that sees each record before its lines come in (RecordWriter.seeRow:
   * DuckDB and Parquet): what the making of lines calls, in order, on this thread; null when lines
   * do not fit.
   */
  writerHooks(): WriterHooks | null {
    const w = this.writer;
    if (!this.linesFit() || !w?.seeRow) return null;
    return {
      see: (row, suspect) => w.seeRow!(row, suspect),
      seeMembers: w.seeMembers
        ? (names, types, n, values, src) => w.seeMembers!(names, types, n, values, src)
        : null,
      refusesInvalid: w.writeInvalid && w.refusesInvalid ? (json) => w.refusesInvalid!(json) : null,
    };
  }

  private linesFit(): boolean {
    return (
      this.writer?.writeLines !== undefined &&
      !this.keep &&
      !this.pendingInvalid &&
      this.deps.validation.invalidRecords !== "fail"
    );
  }

  /**
   * A chunk of records a worker shaped, checked and serialized in order (src/run/record-workers/):
   * counted, written, quarantined (each entry redacted here: a worker never holds the secrets) and
   * its cursor seen, as `accept` would have done record by record; then the chunk's `failure`, if any.
   */
  acceptLines(u: LinesChunk): Promise<void> | undefined {
    const r = this.deps.result.records;
    r.valid += u.valid;
    r.invalid += u.invalid;
    r.filtered += u.filtered;
    r.seen += u.valid + u.invalid + u.filtered;
    r.written += u.written;
    if (u.checked) checkedFromBytes += u.checked;
    if (u.cursor !== undefined) this.deps.cursor?.offer(u.cursor);
    const p = u.written ? this.writer!.writeLines!(u.text, u.written, u.keys, u.lengths) : undefined;
    if (!u.quarantined.length && u.failure === undefined) return p;
    return (async () => {
      if (p) await p;
      const { redactor } = this.deps;
      for (const entry of u.quarantined) {
        const masked = redactor.value(parseJson(entry)) as InvalidEntry;
        const w = this.writer!.writeInvalid;
        if (w) await w.call(this.writer, { ...masked, record_id: String(masked.record_id) });
        else await this.quarantineLine(`${stringifyJson(masked)}\n`);
      }
      // The invalid records before the refused one went out too, as record by record.
      if (u.failure !== undefined) throw u.failure;
    })();
  }

  /** The stream's statistics (a record worker takes them over for a while: streamed-main.ts). */
  get quality(): StreamQuality {
    return this.deps.quality;
  }

  get result(): StreamResult {
    return this.deps.result;
  }

  duplicates(): number {
    return this.writer?.duplicates?.() ?? 0;
  }

  /**
   * The data-quality policy refused the run: keep its records aside when the writer can, its
   * warnings into `warnings`. (Each commit step lets go of its file only once it succeeded: a
   * failure leaves it to `abort`.)
   */
  async reject(warnings: string[]): Promise<string | null> {
    const writer = this.writer!;
    let kept: string | null = null;
    if (writer.keepRejected) {
      kept = await writer.keepRejected();
      // What keeping them took (a DuckDB memory limit raised for long strings) is said too.
      warnings.push(...(writer.warnings?.() ?? []));
    } else await writer.abort();
    this.writer = null;
    return kept;
  }

  /** Where invalid records went: the quarantine file, or the writer's own place (a table). */
  get quarantineWhere(): string {
    return this.invalidTarget ?? this.quarantinePath;
  }
  private invalidTarget: string | null = null;

  /** The stream's state the destination holds (a database output), or null. */
  savedState(): ReturnType<NonNullable<RecordWriter["savedState"]>> {
    return this.writer?.savedState?.() ?? null;
  }

  /** Commits the output, with the state to save in the same transaction; the writer's warnings. */
  async commitOutput(state?: CommitState | null): Promise<string[]> {
    const writer = this.writer!;
    this.invalidTarget = writer.invalidTarget?.() ?? null;
    await writer.commit(state);
    this.writer = null;
    return writer.warnings?.() ?? [];
  }

  /**
   * Under checkpoints (format 1.1): the quarantine file is appended at each commit, never
   * replaced (commitQuarantine); the last commit has already appended everything.
   */
  appendQuarantineAtCommits(): void {
    this.pendingInvalid = [];
  }

  /** Appends the invalid records since the last commit; the file's committed length. */
  readonly commitQuarantine = async (): Promise<Record<string, number> | null> => {
    if (!this.pendingInvalid?.length) return null;
    const text = this.pendingInvalid.join("");
    this.pendingInvalid = [];
    await mkdir(path.dirname(this.quarantinePath), { recursive: true });
    const handle = await open(this.quarantinePath, "a", 0o644);
    try {
      await handle.write(text);
      await handle.sync();
      return { [this.quarantinePath]: (await handle.stat()).size };
    } finally {
      await handle.close();
    }
  };

  /** The quarantine describes this run: replace the previous one, or remove it when all is valid. */
  async commitSideFiles(): Promise<void> {
    if (this.pendingInvalid) this.pendingInvalid = [];
    else if (this.quarantine) await this.quarantine.commit();
    else await rm(this.quarantinePath, { force: true });
    this.quarantine = null;
    if (this.keep) await this.keep.commit();
    this.keep = null;
  }

  /** The stream failed: nothing it wrote becomes visible. */
  async abort(): Promise<void> {
    await this.writer?.abort().catch(() => {});
    await this.quarantine?.abort().catch(() => {});
    await this.keep?.abort().catch(() => {});
    this.writer = this.quarantine = this.keep = null;
  }
}

export interface SinkDeps {
  runId: string;
  validation: ValidationPlan;
  quality: StreamQuality;
  cursor: CursorTracker | null;
  redactor: Redactor;
  result: StreamResult;
}

function describe(e: RecordError): string {
  return `${e.path} ${e.message}${e.expected ? ` (expected ${e.expected}, found ${e.actual})` : ""}`;
}

function schemaColumns(stream: StreamPlan): string[] | null {
  const props = stream.schema?.schema?.properties;
  return props && typeof props === "object" ? Object.keys(props) : null;
}
