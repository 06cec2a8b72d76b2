import type { OutputPlan, ValidationPlan } from "../compile/plan.js";
import type { Row } from "../records/shape.js";
import type { Redactor } from "../shared/secrets.js";
import type { Key } from "./merge.js";

/** Writes one stream's records; nothing is visible under the real name before `commit`. */
export interface RecordWriter {
  /**
   * May return a promise when the writer wants the producer to wait (backpressure). `json`, when given, is the record's JSON exactly as stringifyJson writes it (a JSON lines
   * body's line that was already canonical): a JSON writer writes it instead of serializing again.
   */
  write(record: Row, json?: string): Promise<void> | undefined;
  /**
   * Makes the run's records visible. `state` is the stream's incremental position to save with
   * them: a database output writes it in the commit's own transaction (`_pipelines_state`), so
   * output and state never disagree after a kill; file outputs ignore it (the runner saves the
   * state file after the commit either way).
   */
  commit(state?: CommitState | null): Promise<void>;
  /**
   * Records serialized elsewhere (a record worker: src/run/record-workers/), exactly as `write`
   * would lay them out: `text` holds `count` JSON lines (UTF-8); with a primary key, `keys` and the byte
   * length of each record's JSON (`lengths`) too. Only writers whose layout a worker can produce
   * have it (jsonl), and writers that stage JSON lines but need each record's values too (`seeRow`).
   */
  writeLines?(
    text: Uint8Array | string,
    count: number,
    keys: readonly (Key | null)[] | null,
    lengths: readonly number[] | null,
  ): Promise<void> | undefined;
  /**
   * A writer whose `writeLines` also needs each record's values (DuckDB and Parquet work out their
   * columns and types from them): given each record, in order, before the lines that hold it, on
   * the thread that writes (the lines are then made on this thread too: src/run/page-work/).
   * Throws where `write` would have refused the record. `suspect`: the record's JSON may escape a
   * lone surrogate (its page's bytes hold a `\ud` escape), which a writer that refuses them checks.
   */
  seeRow?(row: Row, suspect: boolean): void;
  /**
   * With `seeRow`: a record known only by its top-level members' names and JSON types (numbered as
   * quality.ts counts them; checked from its bytes, records/byte-check.ts): true when the writer
   * took it so; false, with nothing changed, when it needs the record itself (given to `seeRow`).
   * `values` and `src`: each member's value span (2k, 2k + 1) in `src`, which holds the record as
   * canonical JSON (csv makes its row from them).
   */
  seeMembers?(
    names: readonly string[],
    types: Uint8Array,
    n: number,
    values: Int32Array,
    src: Buffer,
  ): boolean;
  /**
   * With `seeRow` and `writeInvalid`: whether `writeInvalid` will refuse the entry whose JSON this
   * is (DuckDB: a lone surrogate); the lines made of a page then end with that record.
   */
  refusesInvalid?(entryJson: string): boolean;
  abort(): Promise<void>;
  /**
   * With a primary key: how many records so far repeated a key already written in this run
   * (each replaced the earlier record: the last one is kept).
   */
  duplicates?(): number;
  /**
   * The data-quality policy refused this run: keep its records beside the target under a name
   * that says so (`<name>.rejected-<run-id>.<ext>`), leave the target untouched, and return where
   * they went (null: nothing kept, the run was aborted). Without it, a rejected run is aborted.
   */
  keepRejected?(): Promise<string | null>;
  /** Databases: the stream's state the last commit wrote into the destination (read at open). */
  savedState?(): StreamState | null;
  /**
   * Database outputs keep invalid records in a table (`<table>__invalid`) instead of the
   * quarantine file: written with the output, replaced when it commits. May return a promise
   * when the writer wants the producer to wait.
   */
  writeInvalid?(entry: InvalidEntry): Promise<void> | undefined;
  /** Where `writeInvalid` puts them, for the summary and the report. */
  invalidTarget?(): string;
  /** What the commit did that the report should say (columns added, types kept). */
  warnings?(): string[];
}

/** A stream's saved incremental position. */
export interface StreamState {
  cursor?: string | number;
  /** Per partition (checkpointed child streams): partition key → position. */
  partitions?: Record<string, string | number>;
  updated_at: string;
}

/** What a commit saves with its rows: the stream's position, and per-partition positions. */
export interface CommitState {
  cursor?: string | number;
  partitions?: Record<string, string | number>;
}

export interface InvalidEntry {
  record_id: string;
  errors: unknown;
  record: unknown;
}

export interface WriterContext {
  runId: string;
  stream: string;
  /** Column order for tabular formats: the schema's properties, when there is a schema. */
  columns: string[] | null;
  primaryKey: string[] | null;
  /**
   * The stream's JSON Schema for records, when there is one: sqlite types its columns from the
   * properties' `type`. Optional; without it, types come from the values seen.
   */
  schema?: Record<string, unknown> | null;
  /** Masks secrets in the writer's own error messages (database outputs). */
  redactor?: Redactor;
  /** The drift policy: a database output refuses to commit over a changed column type under `fail`. */
  drift?: ValidationPlan["drift"];
  /** The incremental cursor field (singer: `bookmark_properties`). */
  cursorField?: string | null;
}

export type WriterFactory = (output: OutputPlan, ctx: WriterContext) => Promise<RecordWriter>;
