import type { StopReason } from "../http/paginators/paginator.js";
import type { RequestStats } from "../http/request-stats.js";
import type { Suspicion } from "../run/stream-result.js";
import type { Window } from "../run/windows.js";
import type { RunErrorKind } from "../shared/errors.js";

/** The one queue of request sequences (units and whole streams) of every queue run. */
export const UNITS_QUEUE = "units";

/**
 * One request sequence of a queue run: a whole stream (`unit` null) or one unit (a parent
 * record, a window, or both). It holds no request and no secret: the worker compiles the
 * pipeline from its own project folder and builds the request itself.
 */
export interface UnitJob {
  pipeline: string;
  /** sha256 of the pipeline file's text at the submitter: a worker with another text refuses. */
  fileHash: string;
  /** The submitter's tool version: a worker of another version refuses. */
  version: string;
  runId: string;
  runStartedAt: string;
  stream: string;
  unit: { label: string; parent: string | null; window: Window | null } | null;
  since: string | number | null;
  maxPages: number | null;
  /** The unit's Redis key: each attempt stages the shaped records under a key of its own that starts with it (staging.ts). */
  staged: string;
}

/** What a worker reports back: the counters of its pull, or the error that ended it. */
export interface UnitOutcome {
  worker: string;
  stop: StopReason | null;
  error: { kind: RunErrorKind; message: string; details: Record<string, unknown> } | null;
  pages: number;
  filtered: number;
  /** The records staged, and the key of this attempt holding them (null when failed): the submitter reads exactly these. */
  rows: number;
  staged: string | null;
  requests: RequestStats | null;
  suspicions: Suspicion[];
}
