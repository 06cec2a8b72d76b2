import type { ExecutionPlan } from "../compile/plan.js";
import { DEFAULTS } from "../config/defaults.gen.js";
import {
  appendRunHistory,
  type HistoryRun,
  lastCommittedWritten,
  readRunHistory,
} from "../state/run-history.js";
import type { GuardOptions } from "./commit-guard.js";
import type { PipelineResult } from "./stream-result.js";

/** The runs the history keeps per pipeline: as many as the reports (`reports.keep`). */
export const keepRuns = (plan: ExecutionPlan): number => plan.keepReports ?? DEFAULTS.reports.keep;

/** The history before a run, and the commit guard's view of it. */
export async function guardFromHistory(
  plan: ExecutionPlan,
  commitPartial: boolean,
): Promise<{ runs: HistoryRun[]; guard: GuardOptions }> {
  const runs = await readRunHistory(plan.dirs.state, plan.pipeline);
  return { runs, guard: { commitPartial, previousWritten: (s) => lastCommittedWritten(runs, s) } };
}

/** Adds a finished run to the history; gives the runs kept, this one last. */
export function recordRun(plan: ExecutionPlan, result: PipelineResult): Promise<HistoryRun[]> {
  return appendRunHistory(plan.dirs.state, plan.pipeline, historyEntry(result), keepRuns(plan));
}

export function historyEntry(result: PipelineResult): HistoryRun {
  return {
    run_id: result.runId,
    started_at: result.startedAt,
    status: result.status,
    duration_ms: Math.round(result.durationMs),
    streams: result.streams.map((s) => ({
      name: s.name,
      status: s.status,
      committed: s.status === "ok" && s.output !== null && s.preview === null,
      seen: s.records.seen,
      written: s.records.written,
      invalid: s.records.invalid,
      invalid_ratio: s.records.seen ? +(s.records.invalid / s.records.seen).toFixed(6) : 0,
      new_fields: s.quality?.drift?.new_fields.length ?? 0,
      duration_ms: Math.round(s.durationMs),
    })),
  };
}
