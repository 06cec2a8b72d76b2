import type { DriftReport, ErrorGroup, FieldStats } from "../records/quality-types.js";
import type { StreamResult } from "../run/stream-result.js";
import type { HistoryRun } from "../state/run-history.js";

export type { DriftReport, ErrorGroup, FieldStats };
/**
 * The run report: `reports/<pipeline>/<run-id>.json` (and `latest.json`). The HTML page is
 * rendered from exactly this object. Field names are snake_case: it is a file format.
 */
export interface RunReport {
  version: 1;
  tool_version: string;
  pipeline: string;
  pipeline_file: string;
  run_id: string;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  /** ok; failed (a stream failed: exit 1); quality_failed (threshold or drift: fail: exit 3). */
  status: "ok" | "failed" | "quality_failed";
  /** 130: interrupted (Ctrl-C, SIGTERM), as the process's. */
  exit_code: 0 | 1 | 3 | 130;
  streams: StreamReport[];
  /** The pipeline's last runs, oldest first, this one last (history-view.ts). */
  history?: HistoryRun[];
  /** The first rows of each stream's output as it is after the run, by stream name. */
  previews?: Record<string, Record<string, unknown>[]>;
}

export type StreamReportStatus = "ok" | "failed" | "skipped" | "rejected";

export interface StreamReport {
  name: string;
  /** rejected: fetched fine, but the data-quality threshold or drift policy refused to commit it. */
  status: StreamReportStatus;
  stop_reason: { code: string; message: string; warning?: boolean } | null;
  error: { kind: string; message: string } | null;
  warnings: string[];
  duration_ms: number;
  pages: number;
  requests: number;
  /** Retries by cause: status_503, reset, timeout, truncated, rate_limited, token_refresh… */
  retries: Record<string, number>;
  rate_limit_waits: { count: number; seconds: number };
  records: {
    seen: number;
    valid: number;
    invalid: number;
    written: number;
    /** Records dropped because their primary key was seen earlier in this run. */
    duplicates: number;
    /** Records dropped by the stream's `filter` (counted in seen; neither valid nor invalid). */
    filtered?: number;
  };
  /** invalid / (seen − filtered) (0 when nothing was checked). */
  invalid_ratio: number;
  max_invalid_ratio: number;
  invalid_policy: "skip" | "keep" | "fail";
  output: { path: string; format: string; mode: string; committed: boolean };
  /** Invalid records with their errors (`skip`), relative to the project root. */
  quarantine: string | null;
  /** When the stream was rejected: where its new records were kept instead. */
  rejected_output: string | null;
  schema: { file: string | null; draft: string } | null;
  /** Validation errors grouped by schema location and keyword. */
  errors: ErrorGroup[];
  drift: DriftReport | null;
  /** Presence and types of every field seen, in schema order then first-seen order. */
  fields: FieldStats[];
  partitions: { total: number; done: number; failed: { parent_key: string; error: string }[] } | null;
  /**
   * A stream run in windows or partitions (format 1.1): units done and committed in order,
   * `incomplete` cut short (fetched again next run); windows: the first, the last and the step.
   */
  units?: StreamResult["units"];
  /** Named checks that found the run suspicious (suspicions.ts); `decides`: it refused the commit. */
  suspicions?: { code: string; message: string; decides: boolean }[];
  /** The commit guard kept this run's output here instead of committing it. */
  preview_output?: string | null;
}
