import path from "node:path";
import type { ExecutionPlan } from "../compile/plan.js";
import type { PipelineResult } from "../run/stream-result.js";
import type { RunReport, StreamReport } from "./report-types.js";

/**
 * The run report from a finished run. Paths are relative to the project root. A run stopped by
 * Ctrl-C or SIGTERM (`interrupted`) has the exit code of the process: 130.
 */
export function buildReport(
  plan: ExecutionPlan,
  result: PipelineResult,
  toolVersion: string,
  interrupted = false,
): RunReport {
  const rel = (p: string | null) => (p ? path.relative(plan.dirs.root, p) || p : null);
  const exit_code = interrupted
    ? 130
    : result.status === "ok"
      ? 0
      : result.status === "quality_failed"
        ? 3
        : 1;
  const streams: StreamReport[] = result.streams.map((s) => {
    const stream = plan.streams.find((x) => x.name === s.name)!;
    const q = s.quality;
    return {
      name: s.name,
      status:
        s.status === "rejected"
          ? "rejected"
          : s.status === "ok"
            ? "ok"
            : s.status === "skipped"
              ? "skipped"
              : "failed",
      stop_reason: s.stop,
      error: s.error,
      warnings: s.warnings,
      duration_ms: Math.round(s.durationMs),
      pages: s.pages,
      requests: s.requests.requests,
      retries: { ...s.requests.retries },
      rate_limit_waits: {
        count: s.requests.rateLimitWaits.count,
        seconds: +(s.requests.rateLimitWaits.ms / 1000).toFixed(3),
      },
      records: { ...s.records },
      // Filtered records are neither valid nor invalid: the ratio is invalid ÷ (seen − filtered).
      invalid_ratio: checkedOf(s) ? +(s.records.invalid / checkedOf(s)).toFixed(6) : 0,
      max_invalid_ratio: plan.validation.maxInvalidRatio,
      invalid_policy: plan.validation.invalidRecords,
      output: {
        path: stream.output.where ?? rel(stream.output.path)!,
        format: stream.output.format,
        mode: stream.output.mode,
        committed: s.status === "ok" && !s.preview,
      },
      quarantine: rel(q?.quarantine ?? null),
      rejected_output: rel(q?.rejectedOutput ?? null),
      schema: stream.schema ? { file: rel(stream.schema.file), draft: q?.schemaDraft ?? "draft-07" } : null,
      errors: q?.errors ?? [],
      drift: q?.drift ?? null,
      fields: q?.fields ?? [],
      partitions: s.partitions,
      units: s.units ? { ...s.units, windows: s.units.windows && { ...s.units.windows } } : null,
      suspicions: s.suspicions,
      preview_output: rel(s.preview),
    };
  });
  return {
    version: 1,
    tool_version: toolVersion,
    pipeline: plan.pipeline,
    pipeline_file: plan.file,
    run_id: result.runId,
    started_at: result.startedAt,
    finished_at: new Date(Date.parse(result.startedAt) + result.durationMs).toISOString(),
    duration_ms: Math.round(result.durationMs),
    status: result.status,
    exit_code,
    streams,
  };
}

/** Records validated: seen, less those `filter` dropped. */
function checkedOf(s: { records: { seen: number; filtered?: number } }): number {
  return s.records.seen - (s.records.filtered ?? 0);
}
