import type { ExecutionPlan, StreamPlan, StreamPreview } from "../compile/plan.js";
import { stepText } from "../shared/units.js";
import { windowLabel } from "./partition-source.js";
import { windowRange, windowsSummary } from "./windows.js";

/** Per stream: its partition source and the windows a first run started at `nowMs` would fetch. */
export function previewPlan(plan: ExecutionPlan, nowMs: number): Record<string, StreamPreview> {
  const byName = new Map(plan.streams.map((s) => [s.name, s]));
  const out: Record<string, StreamPreview> = {};
  for (const s of plan.streams) out[s.name] = previewStream(s, byName.get(s.parent ?? ""), nowMs);
  return out;
}

function previewStream(s: StreamPlan, parent: StreamPlan | undefined, nowMs: number): StreamPreview {
  const parentCount = parent?.values ? parent.values.length : null;
  let partitions: StreamPreview["partitions"] = null;
  if (s.values) partitions = { from: "values", parent: null, count: s.values.length };
  else if (s.windows) partitions = { from: "windows", parent: s.parent, count: null };
  else if (s.parent) partitions = { from: "parent", parent: s.parent, count: parentCount };
  let windows: StreamPreview["windows"] = null;
  if (s.windows) {
    const range = windowRange(s.windows, nowMs, null);
    const w = windowsSummary(s.windows, range);
    windows = {
      count: w.count,
      first: w.first ? windowLabel(w.first) : null,
      last: w.last ? windowLabel(w.last) : null,
      step: stepText(s.windows.stepMs),
      start: new Date(range.fromMs).toISOString(),
      end: new Date(range.toMs).toISOString(),
    };
    if (partitions && parentCount !== null) partitions.count = parentCount * w.count;
    else if (partitions && !s.parent) partitions.count = w.count;
  }
  return { partitions, windows };
}
