import type { RateLimitPlan } from "../compile/plan.js";
import { sleep } from "../shared/sleep.js";

interface Window {
  limit: number;
  ms: number;
  /** Start times of the last `limit` requests (ring buffer). */
  starts: number[];
  next: number;
}

/** What the executor asks of a budget: a local one (below) or one shared in Redis (src/queue/redis-budget.ts). */
export interface RequestBudget {
  begin(signal?: AbortSignal): Promise<{ waited: number; done: () => void }>;
  pauseUntil(untilMs: number): void;
}

/**
 * One request budget for a whole pipeline: every window (per second/minute/hour/day) at once,
 * as sliding windows, plus a pause when the API says its remaining budget is 0 (until reset).
 * Callers are served in order, so no stream starves.
 */
export class RateBudget implements RequestBudget {
  private readonly windows: Window[] = [];
  private pausedUntil = 0;
  private queue: Promise<void> = Promise.resolve();

  /** `now` and `timer` are the clock and the sleep (tests pass a fake clock that `timer` moves on). */
  constructor(
    plan: RateLimitPlan | null,
    private readonly now: () => number = Date.now,
    private readonly timer: (ms: number, signal?: AbortSignal) => Promise<void> = sleep,
  ) {
    if (!plan) return;
    const add = (rate: number | null, unitMs: number) => {
      if (!rate) return;
      // A fractional rate (0.5/s) becomes 1 request per 2 s.
      const limit = Math.max(1, Math.floor(rate));
      this.windows.push({ limit, ms: (limit / rate) * unitMs, starts: [], next: 0 });
    };
    add(plan.perSecond, 1000);
    add(plan.perMinute, 60_000);
    add(plan.perHour, 3_600_000);
    add(plan.perDay, 86_400_000);
  }

  /** Waits for a slot in every window; returns the time waited (ms). */
  async acquire(signal?: AbortSignal): Promise<number> {
    return (await this.begin(signal)).waited;
  }

  /**
   * Waits for a slot in every window. Call `done()` when the response is in: the slot then counts
   * from that moment, not from when the request was queued. The API counts a request when it
   * arrives, which is some time after it was stamped here (a new connection, a busy event loop);
   * counting from the response keeps the budget on the safe side of the API's window.
   */
  begin(signal?: AbortSignal): Promise<{ waited: number; done: () => void }> {
    const turn = this.queue.then(() => this.take(signal));
    this.queue = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  private async take(signal?: AbortSignal): Promise<{ waited: number; done: () => void }> {
    let waited = 0;
    for (;;) {
      const t = this.now();
      let wait = Math.max(0, this.pausedUntil - t);
      for (const w of this.windows) {
        if (w.starts.length < w.limit) continue;
        const oldest = w.starts[w.next];
        wait = Math.max(wait, oldest + w.ms - t);
      }
      if (wait <= 0) break;
      await this.timer(Math.ceil(wait), signal);
      waited += wait;
    }
    const t = this.now();
    const slots: [Window, number][] = [];
    for (const w of this.windows) {
      if (w.starts.length < w.limit) {
        slots.push([w, w.starts.length]);
        w.starts.push(t);
      } else {
        slots.push([w, w.next]);
        w.starts[w.next] = t;
        w.next = (w.next + 1) % w.limit;
      }
    }
    const done = () => {
      const end = this.now();
      // Unless the slot was already reused (a request longer than the window).
      for (const [w, i] of slots) if (w.starts[i] === t && end > t) w.starts[i] = end;
    };
    return { waited, done };
  }

  /** The API said its budget is spent: hold every request until `untilMs` (epoch ms). */
  pauseUntil(untilMs: number): void {
    if (untilMs > this.pausedUntil) this.pausedUntil = untilMs;
  }

  get pausedFor(): number {
    return Math.max(0, this.pausedUntil - this.now());
  }
}

/**
 * A reset header: seconds to wait, an epoch time in seconds (a value above 10^9), epoch ms
 * (above 10^12), or an HTTP / ISO 8601 date. Returns the epoch ms of the reset, or null.
 */
export function parseReset(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined) return null;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) {
    const n = Number(v);
    if (n > 1e12) return n;
    if (n > 1e9) return n * 1000;
    return now + n * 1000;
  }
  const d = Date.parse(v);
  return Number.isNaN(d) ? null : d;
}

/** `Retry-After`: seconds (decimals allowed) or an HTTP date → ms to wait, or null. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined) return null;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const d = Date.parse(v);
  return Number.isNaN(d) ? null : Math.max(0, d - now);
}

/**
 * A remaining header: the requests left in the window, or null when the value is not a number
 * (`unknown`, empty): such a value says nothing, and is ignored rather than taken as 0.
 */
export function parseRemaining(value: string | undefined): number | null {
  if (value === undefined) return null;
  const v = value.trim();
  return /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : null;
}
