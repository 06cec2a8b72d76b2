import type { RateLimitPlan } from "../compile/plan.js";
import { sleep } from "../shared/sleep.js";

interface Window {
  limit: number;
  ms: number;
  /**
   * When each of the last `limit` requests counts from (ring buffer, in the order the slots were
   * taken): the moment it was written on the socket, or Infinity while it has not been (it then
   * counts at every moment, so it holds the window whenever it goes out).
   */
  starts: number[];
  next: number;
}

/** What the executor asks of a budget: a local one (below) or one shared in Redis (src/queue/redis-budget.ts). */
export interface RequestBudget {
  begin(signal?: AbortSignal): Promise<{ waited: number; done: () => void }>;
  pauseUntil(untilMs: number): void;
}

/** A slot taken and not yet sent: it counts from every moment until `done()` stamps it. */
const PENDING = Number.POSITIVE_INFINITY;

/**
 * A slot counts from this long after its request was written: the API counts a request when it
 * arrives, which is after the write by a time that varies (the network, the API's own queue); a
 * window that begins a little later keeps requests written a window apart from arriving within
 * one. 25 ms of a per-second window: 2.5% of its rate.
 */
export const SEND_MARGIN_MS = 25;

/**
 * One request budget for a whole pipeline: every window (per second/minute/hour/day) at once,
 * as sliding windows, plus a pause when the API says its remaining budget is 0 (until reset).
 * Callers are served in order, so no stream starves.
 */
export class RateBudget implements RequestBudget {
  private readonly windows: Window[] = [];
  private pausedUntil = 0;
  private queue: Promise<void> = Promise.resolve();
  /** Wakes a take that waits on slots not yet sent (resolved by the next `done()`). */
  private stamped: { promise: Promise<void>; resolve: () => void } | null = null;

  /**
   * `now` and `timer` are the clock and the sleep (tests pass a fake clock that `timer` moves on);
   * `marginMs` is SEND_MARGIN_MS but in tests of the windows' arithmetic.
   */
  constructor(
    plan: RateLimitPlan | null,
    private readonly now: () => number = Date.now,
    private readonly timer: (ms: number, signal?: AbortSignal) => Promise<void> = sleep,
    private readonly marginMs = SEND_MARGIN_MS,
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

  /** Waits for a slot in every window; returns the time waited (ms). The slot counts from now. */
  async acquire(signal?: AbortSignal): Promise<number> {
    const { waited, done } = await this.begin(signal);
    done();
    return waited;
  }

  /**
   * Waits for a slot in every window. Call `done()` the moment the request is written on the
   * socket (HttpClient.send's `onSent`), or when it fails without getting that far: the slot
   * counts from then (plus SEND_MARGIN_MS). Until then it counts as taken at every moment, so
   * whatever delays the request between here and the socket (a new connection, a busy event
   * loop) it never shares a window at the API with more than `limit - 1` others. The API counts
   * a request when it arrives, which is after the write. Later calls of `done()` change nothing.
   */
  begin(signal?: AbortSignal): Promise<{ waited: number; done: () => void }> {
    const turn = this.queue.then(() => this.take(signal));
    this.queue = turn.then(
      () => undefined,
      () => undefined,
    );
    return leaveAtAbort(turn, signal);
  }

  private async take(signal?: AbortSignal): Promise<{ waited: number; done: () => void }> {
    signal?.throwIfAborted(); // its caller left the line: no slot
    let waited = 0;
    for (;;) {
      const t = this.now();
      let wait = Math.max(0, this.pausedUntil - t);
      for (const w of this.windows) if (w.starts.length >= w.limit) wait = Math.max(wait, this.freeAt(w) - t);
      if (wait <= 0) break;
      if (wait === PENDING) await this.nextStamp(signal);
      else await this.timer(Math.ceil(wait), signal);
      // As long as it took (a timer fires late): the wait is counted from when it began.
      waited += this.now() - t;
    }
    const slots: [Window, number][] = [];
    for (const w of this.windows) {
      if (w.starts.length < w.limit) {
        slots.push([w, w.starts.length]);
        w.starts.push(PENDING);
      } else {
        const i = this.reusable(w);
        slots.push([w, i]);
        w.starts[i] = PENDING;
        if (i === w.next) w.next = (w.next + 1) % w.limit;
      }
    }
    let stamped = false;
    const done = () => {
      if (stamped) return;
      stamped = true;
      const at = this.now() + this.marginMs;
      for (const [w, i] of slots) w.starts[i] = at;
      this.stamped?.resolve();
      this.stamped = null;
    };
    return { waited, done };
  }

  /**
   * When a full window has a slot again: the oldest slot taken leaves the window `ms` after it
   * was sent. When that one has not been sent yet, any other sent slot that left counts instead
   * (requests do not always go out in the order they took their slots): the earliest to leave,
   * or PENDING when none of them has been sent.
   */
  private freeAt(w: Window): number {
    return w.starts[this.reusable(w)] + w.ms;
  }

  /** The slot a new request takes in a full window: the oldest taken, or the earliest sent (PENDING when none is). */
  private reusable(w: Window): number {
    if (w.starts[w.next] !== PENDING) return w.next;
    let at = 0;
    for (let i = 1; i < w.starts.length; i++) if (w.starts[i] < w.starts[at]) at = i;
    return at;
  }

  /** Resolves at the next `done()` (a slot stamped), or rejects when `signal` aborts. */
  private nextStamp(signal?: AbortSignal): Promise<void> {
    if (!this.stamped) {
      let resolve = () => {};
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.stamped = { promise, resolve };
    }
    const stamped = this.stamped.promise;
    if (!signal) return stamped;
    signal.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      stamped.then(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
    });
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
 * A caller's turn in a budget's line (callers are served in order), which its signal ends at
 * once: a cancelled queue job does not wait behind the other callers' waits. The line goes on
 * (the turn, when it comes, takes no slot: `take` checks the signal first); a slot taken in the
 * same moment is given back as sent (`done`), never left pending.
 */
export function leaveAtAbort<T extends { done: () => void }>(
  turn: Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  if (!signal) return turn;
  return new Promise<T>((resolve, reject) => {
    const leave = () => {
      reject(signal.reason);
      turn.then(
        (t) => t.done(),
        () => {},
      );
    };
    if (signal.aborted) return leave();
    signal.addEventListener("abort", leave, { once: true });
    turn.then(
      (t) => {
        signal.removeEventListener("abort", leave);
        resolve(t);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", leave);
        reject(err);
      },
    );
  });
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
