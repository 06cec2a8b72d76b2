import type { WindowsPlan } from "../compile/plan.js";
import {
  FORMAT_UNIT_MS,
  floorTo,
  formatBound,
  isoInstant,
  parseEnd,
  parseInstant,
  parseStart,
} from "../shared/window-bounds.js";

/** One date window: `[start, end)` in UTC ms, and its bounds as the request writes them. */
export interface Window {
  startMs: number;
  endMs: number;
  /** `${window.start}`, `${window.end}`, `${window.last}` in the stream's format. */
  start: string;
  end: string;
  last: string;
}

/** The range a run covers and where it came from. */
export interface WindowRange {
  fromMs: number;
  toMs: number;
  /** `start` (first run, --full-refresh, replace) or `saved` (resumed at the saved end − lookback). */
  from: "start" | "saved";
}

/**
 * The range of one run (or one partition): from the saved end of the last committed window minus
 * `lookback` (never before `start`), or from `start`; to `end` (`now` fixed when the run started).
 * Bounds are floored to the format's unit, so `now` with `format: date` is the start of today.
 */
export function windowRange(
  plan: WindowsPlan,
  nowMs: number,
  saved: string | number | null | undefined,
): WindowRange {
  const start = floorTo(parseStart(plan.start, nowMs) ?? nowMs, plan.format);
  const to = floorTo(parseEnd(plan.end, nowMs) ?? nowMs, plan.format);
  const savedMs = savedInstant(saved);
  if (savedMs === null) return { fromMs: start, toMs: to, from: "start" };
  return {
    fromMs: Math.max(start, floorTo(savedMs - plan.lookbackMs, plan.format)),
    toMs: to,
    from: "saved",
  };
}

/** Consecutive windows of `step` from `fromMs` to `toMs`, the last one cut at `toMs`. */
export function* windowsOf(plan: WindowsPlan, range: WindowRange): Generator<Window> {
  const unit = FORMAT_UNIT_MS[plan.format];
  for (let s = range.fromMs; s < range.toMs; ) {
    const e = Math.min(s + plan.stepMs, range.toMs);
    yield {
      startMs: s,
      endMs: e,
      start: formatBound(s, plan.format),
      end: formatBound(e, plan.format),
      last: formatBound(e - unit, plan.format),
    };
    s = e;
  }
}

/** The windows of a range as plans, summaries and reports show them (labels: `window a…b`). */
export function windowsSummary(
  plan: WindowsPlan,
  range: WindowRange,
): { count: number; first: Window | null; last: Window | null } {
  const count = countWindows(plan, range);
  if (!count) return { count, first: null, last: null };
  const first = windowsOf(plan, range).next().value ?? null;
  const lastStart = range.fromMs + (count - 1) * plan.stepMs;
  const last = windowsOf(plan, { ...range, fromMs: lastStart }).next().value ?? null;
  return { count, first, last };
}

export function countWindows(plan: WindowsPlan, range: WindowRange): number {
  return range.toMs > range.fromMs ? Math.ceil((range.toMs - range.fromMs) / plan.stepMs) : 0;
}

/**
 * The saved position (an ISO instant; an upgraded pipeline's v1 cursor works too: a date, a
 * date-time, or epoch seconds / milliseconds as a number or a numeric string, as a CSV gives it).
 */
function savedInstant(saved: string | number | null | undefined): number | null {
  if (saved === null || saved === undefined) return null;
  const n = typeof saved === "number" ? saved : EPOCH_TEXT.test(saved) ? Number(saved) : null;
  if (n !== null) return n > 1e12 ? n : n * 1000;
  return parseInstant(saved as string);
}

const EPOCH_TEXT = /^\s*\d+(\.\d+)?\s*$/;

/** What the state saves for a committed window: its end, as an ISO instant. */
export function windowPosition(w: Window): string {
  return isoInstant(w.endMs);
}
