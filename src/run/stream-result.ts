import type { RunErrorKind } from "../http/errors.js";
import type { RequestStats } from "../http/executor.js";
import type { StopReason } from "../http/paginators/paginator.js";

export type StreamStatus = "waiting" | "running" | "ok" | "failed" | "skipped";

/** What a stream did; live while it runs (progress reads it), final when it ends. */
export interface StreamResult {
  name: string;
  status: StreamStatus;
  stop: StopReason | null;
  error: { kind: RunErrorKind; message: string } | null;
  pages: number;
  records: { seen: number; written: number };
  requests: RequestStats;
  warnings: string[];
  startedAt: number | null;
  durationMs: number;
  /** The committed output file, when the stream succeeded. */
  output: string | null;
}

export interface PipelineResult {
  pipeline: string;
  runId: string;
  status: "ok" | "failed";
  startedAt: string;
  durationMs: number;
  streams: StreamResult[];
}
