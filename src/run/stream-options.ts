import type { StreamPlan, ValidationPlan } from "../compile/plan.js";
import type { StopReason } from "../http/paginators/paginator.js";
import type { RecordContext } from "../records/field-specs.js";
import type { Row } from "../records/shape.js";
import type { StateStore } from "../state/state-store.js";
import type { Unit } from "./partition-source.js";

/** How a stream runs: settings of the run and of the pipeline that every stream shares. */
export interface StreamRunOptions {
  runId: string;
  /** The pipeline's name and when the run started (ISO 8601): `${pipeline}`, `${run.started_at}` in field values. */
  pipeline?: string;
  runStartedAt?: string;
  baseUrl: string;
  origin: string;
  allowedOrigins: string[];
  concurrency: number;
  validation: ValidationPlan;
  /** Stop after this many records (the output is still committed). */
  limit: number | null;
  /**
   * Records taken but not written yet, counted toward `limit` (partitions.ts: records of units
   * held in the ordered sink behind an earlier unit).
   */
  heldBack?: () => number;
  /** Overrides the paginator's max_pages. */
  maxPages: number | null;
  fullRefresh: boolean;
  /** Pages fetched ahead by offset and page paginators (1: none). */
  prefetch: number;
  /** `source.workers` resolved: threads doing record work, the main thread included (absent: 1). */
  workers?: number;
  /**
   * Paged JSON responses (page-work/): threads as `workers`, but only when `source.workers` is a
   * number; `auto` keeps them on the main thread (absent: 1). One worker beside the main thread
   * was slower than the main thread alone on the 2-core machine it was measured on.
   */
  pageWorkers?: number;
  state: StateStore;
  /** Where the valid records of a parent stream are kept for its children during the run. */
  scratchDir: string;
  signal?: AbortSignal;
  /** When the run started: `end: now` of date windows is this instant. */
  startedAtMs?: number;
  /** The commit guard's run settings (commit-guard.ts); absent: no history, no override. */
  guard?: GuardOptions;
  /**
   * A parent stream's cursor is saved by the caller once every child partition of its records is
   * committed (run-pipeline.ts): `finish` hands the save over instead of doing it.
   */
  deferCursor?: (save: () => Promise<void>) => void;
  /** `run --queue`: every request sequence runs on a worker (src/queue/submit.ts). */
  remote?: RemotePull;
}

/**
 * Runs a request sequence elsewhere and hands its shaped records to `write`, in order, as
 * pull.ts would; counters are added to `result`. Validation, writing and commits stay here.
 */
export interface RemotePull {
  pull(
    opts: StreamRunOptions,
    stream: StreamPlan,
    unit: Unit | null,
    since: string | number | null,
    write: (row: Row) => Promise<void> | undefined,
    result: import("./stream-result.js").StreamResult,
  ): Promise<StopReason>;
  /** Units in flight at once (the workers' capacity, not this process's `concurrency`). */
  slots: number;
}

/** What computed `{ value }` fields may refer to. */
export function recordContext(stream: { name: string }, opts: StreamRunOptions): RecordContext {
  return {
    runId: opts.runId,
    startedAt: opts.runStartedAt ?? new Date().toISOString(),
    pipeline: opts.pipeline ?? "",
    stream: stream.name,
  };
}

export interface StreamIO {
  /** For a child stream: the parent's valid records file (JSON lines). */
  parentRecords: string | null;
  /** For a parent stream: keep valid records for the children here. */
  keepRecordsAt: string | null;
  /** The parent stream's primary key, to name a failed partition. */
  parentKey: string[] | null;
}

/** What the commit guard is told about the run (cmd-run fills it; absent: no history, no override). */
export interface GuardOptions {
  /** `--commit-partial`: commit whatever the checks say. */
  commitPartial: boolean;
  /** Records the stream wrote in the last run that committed it; null when none did. */
  previousWritten(stream: string): number | null;
}
