import type { StopReason } from "../http/paginators/paginator.js";
import { newRequestStats, type RequestStats } from "../http/request-stats.js";
import type { DriftReport, ErrorGroup, FieldStats } from "../records/quality-types.js";
import type { RunErrorKind } from "../shared/errors.js";

/** rejected: fetched fine, but the invalid-record threshold or `drift: fail` refused to commit it. */
/** partial: stopped (failed, rejected, interrupted) after some windows or partitions were committed. */
export type StreamStatus = "waiting" | "running" | "ok" | "failed" | "skipped" | "rejected" | "partial";

/** What a stream did; live while it runs (progress reads it), final when it ends. */
export interface StreamResult {
  name: string;
  status: StreamStatus;
  stop: StopReason | null;
  error: { kind: RunErrorKind; message: string } | null;
  pages: number;
  /** `filtered`: dropped by the stream's `filter` (counted in `seen`, neither valid nor invalid). */
  records: {
    seen: number;
    valid: number;
    invalid: number;
    written: number;
    duplicates: number;
    filtered: number;
  };
  requests: RequestStats;
  warnings: string[];
  startedAt: number | null;
  durationMs: number;
  /** The committed output file, when the stream succeeded. */
  output: string | null;
  /** Validation and drift, once the stream has ended. */
  quality: {
    schemaDraft: string | null;
    errors: ErrorGroup[];
    drift: DriftReport | null;
    fields: FieldStats[];
    quarantine: string | null;
    rejectedOutput: string | null;
  } | null;
  partitions: { total: number; done: number; failed: { parent_key: string; error: string }[] } | null;
  /**
   * A stream run in windows or partitions (format 1.1): units done and committed (in order),
   * `total` known so far; windows: the first and last window of this run and the step.
   */
  units: {
    kind: "windows" | "partitions";
    total: number;
    done: number;
    committed: number;
    /** Cut short (--limit, max_pages, a skipped failure): committed, position not saved. */
    incomplete: number;
    checkpoints: boolean;
    windows: { first: string | null; last: string | null; step: string } | null;
  } | null;
  /** Named warnings of a run that looks wrong (suspicions.ts); `decides`: it refused the commit. */
  suspicions: Suspicion[];
  /** The commit guard kept this run's output beside the target instead (commit-guard.ts). */
  preview: string | null;
}

/** What a suspicion check found; see suspicions.ts and commit-guard.ts. */
export type SuspicionCode =
  | "records_path_matched_nothing"
  | "next_path_missing"
  | "field_always_null"
  | "volume_drop"
  | "empty_replace"
  | "partial_replace";

export interface Suspicion {
  code: SuspicionCode;
  message: string;
  /** The check refused to commit the stream (exit 3). */
  decides: boolean;
}

export interface PipelineResult {
  pipeline: string;
  runId: string;
  /** failed: a stream failed (exit 1); quality_failed: only data-quality rejections (exit 3). */
  status: "ok" | "failed" | "quality_failed";
  startedAt: string;
  durationMs: number;
  streams: StreamResult[];
}

/** A stream that has not started: every counter at zero. */
export function newStreamResult(name: string): StreamResult {
  return {
    name,
    status: "waiting",
    stop: null,
    error: null,
    pages: 0,
    records: { seen: 0, valid: 0, invalid: 0, written: 0, duplicates: 0, filtered: 0 },
    requests: newRequestStats(),
    warnings: [],
    startedAt: null,
    durationMs: 0,
    output: null,
    quality: null,
    partitions: null,
    units: null,
    suspicions: [],
    preview: null,
  };
}
