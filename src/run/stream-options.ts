import type { ValidationPlan } from "../compile/plan.js";
import type { StateStore } from "../state/state-store.js";

/** How a stream runs: settings of the run and of the pipeline that every stream shares. */
export interface StreamRunOptions {
  runId: string;
  baseUrl: string;
  origin: string;
  allowedOrigins: string[];
  concurrency: number;
  validation: ValidationPlan;
  /** Stop after this many records (the output is still committed). */
  limit: number | null;
  /** Overrides the paginator's max_pages. */
  maxPages: number | null;
  fullRefresh: boolean;
  /** Pages fetched ahead by offset and page paginators (1: none). */
  prefetch: number;
  state: StateStore;
  /** Where the valid records of a parent stream are kept for its children during the run. */
  scratchDir: string;
  signal?: AbortSignal;
  /** The commit guard's run settings (commit-guard.ts); absent: no history, no override. */
  guard?: GuardOptions;
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
