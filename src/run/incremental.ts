import type { StreamPlan } from "../compile/plan.js";
import { inject } from "../http/paginators/inject.js";
import type { PageRequest } from "../http/paginators/paginator.js";
import { isDay, twoDigits } from "../lang/fast-formats.js";

type Cursor = string | number;

const DATE_LIKE = /^\d{4}-\d{2}-\d{2}/;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const INTEGER = /^-?\d+$/;
const DECIMAL = /^-?\d+(\.\d+)?$/;

/**
 * Orders cursor values: numbers numerically (also when sent as strings, as APIs do for 64-bit
 * ids: "10" > "9"), date-times by instant, other strings as text.
 */
export function compareCursor(a: Cursor, b: Cursor): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  const sa = String(a);
  const sb = String(b);
  if (INTEGER.test(sa) && INTEGER.test(sb)) {
    const ba = BigInt(sa);
    const bb = BigInt(sb);
    if (ba !== bb) return ba < bb ? -1 : 1;
  } else if (DECIMAL.test(sa) && DECIMAL.test(sb)) {
    const na = Number(sa);
    const nb = Number(sb);
    if (na !== nb) return na - nb;
  }
  if (DATE_LIKE.test(sa) && DATE_LIKE.test(sb)) {
    const ta = Date.parse(sa);
    const tb = Date.parse(sb);
    if (!Number.isNaN(ta) && !Number.isNaN(tb) && ta !== tb) return ta - tb;
  }
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

// At most 9 digits of fraction: V8's Date.parse misreads longer ones (`.0999999999` after `.1`).
const UTC_TEXT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/**
 * A UTC date-time written `YYYY-MM-DDTHH:MM:SS[.fraction]Z` whose fields are in range (a real
 * day, hours to 23, minutes and seconds to 59). Two such values of the same length order by
 * instant exactly as by text, which is compareCursor's answer for them (Date.parse reads both;
 * equal to the millisecond, the text decides): CursorTracker compares them as text.
 */
function orderedAsText(s: string): boolean {
  if (!UTC_TEXT.test(s)) return false;
  const month = twoDigits(s, 5);
  if (month < 1 || !isDay(twoDigits(s, 0) * 100 + twoDigits(s, 2), month, twoDigits(s, 8))) return false;
  return twoDigits(s, 11) <= 23 && twoDigits(s, 14) <= 59 && twoDigits(s, 17) <= 59;
}

/** Tracks the largest cursor value written by a stream. */
export class CursorTracker {
  private largest: Cursor | null = null;
  /** `largest` is a date-time orderedAsText. */
  private maxText = false;
  constructor(private readonly field: string) {}

  get max(): Cursor | null {
    return this.largest;
  }

  /** Set from outside (a checkpoint starts again from null). */
  set max(v: Cursor | null) {
    this.largest = v;
    this.maxText = typeof v === "string" && orderedAsText(v);
  }

  see(row: Record<string, unknown>): void {
    this.offer(row[this.field]);
  }

  /** A cursor field's value (a record worker sends the largest of its chunk's records). */
  offer(value: unknown): void {
    let v = value;
    // A big integer (beyond 2^53) is kept as its exact digits: compared as an integer, saved as text.
    if (typeof v === "bigint") v = v.toString();
    if (typeof v !== "string" && typeof v !== "number") return;
    const max = this.largest;
    if (v === "" || v === max) return;
    // Most cursors are date-times written alike: compared as text (the same order, far cheaper).
    if (this.maxText && typeof v === "string" && v.length === (max as string).length && orderedAsText(v)) {
      if (v > (max as string)) this.largest = v;
      return;
    }
    if (max === null || compareCursor(v, max) > 0) this.max = v;
  }
}

/** The value sent on this run: the saved cursor minus `lookback`, or `initial`. */
export function startValue(
  stream: StreamPlan,
  saved: Cursor | null | undefined,
  fullRefresh: boolean,
): Cursor | null {
  const inc = stream.incremental;
  if (!inc) return null;
  const base = !fullRefresh && saved !== undefined && saved !== null ? saved : inc.initial;
  if (base === null || base === undefined) return null;
  if (base === saved && inc.lookbackMs > 0 && typeof base === "string" && DATE_LIKE.test(base)) {
    const t = Date.parse(base);
    if (!Number.isNaN(t)) {
      const iso = new Date(t - inc.lookbackMs).toISOString();
      // Keep the saved value's shape: a date stays a date, seconds stay seconds.
      if (DATE_ONLY.test(base)) return iso.slice(0, 10);
      return /\.\d+/.test(base) ? iso : iso.replace(/\.\d{3}Z$/, "Z");
    }
  }
  if (base === saved && inc.lookbackMs > 0 && typeof base === "number") {
    // An epoch cursor: seconds when it looks like seconds, else milliseconds.
    return base > 1e12 ? base - inc.lookbackMs : base - inc.lookbackMs / 1000;
  }
  return base;
}

export function applyIncremental(req: PageRequest, stream: StreamPlan, value: Cursor | null): PageRequest {
  if (!stream.incremental || value === null) return req;
  return inject(req, stream.incremental.in, stream.incremental.param, value);
}
