import type { RateLimitPlan, RetryPlan } from "../compile/plan.js";
import type { TransportError } from "../shared/errors.js";
import type { HttpResponse } from "./client.js";
import { parseRemaining, parseReset, parseRetryAfter } from "./rate-budget.js";

/** What to do after an attempt that did not succeed. */
export type RetryStep =
  /** Wait `delayMs`, then try again; `cause` names the retry in the statistics. */
  | { retry: true; delayMs: number; cause: string; rateLimited: boolean }
  /** Give up: the failure is not retryable, or this was the last attempt. */
  | { retry: false; reason: "not_retryable" | "attempts" }
  /** Give up: the server asked for a longer wait than `retry.max_delay`. */
  | { retry: false; reason: "wait_too_long"; waitMs: number; header: string; value: string };

/** A wait the server asked for: Retry-After, or a reset time when remaining is 0. */
export interface ServerWait {
  ms: number;
  /** The header that asked for it, and its value as sent (whoever shows it quotes it). */
  header: string;
  value: string;
  fromReset: boolean;
}

/**
 * The one retry policy of a pipeline (`source.retry`, `Retry-After`, the rate-limit headers),
 * used by the API's requests (executor.ts) and the OAuth2 token endpoint alike: exponential
 * backoff with full jitter, retried statuses from `retry.on_status`, a server's wait honoured up
 * to `retry.max_delay` (longer fails at once, saying how long it asked for).
 */
export class RetryPolicy {
  constructor(
    private readonly plan: RetryPlan,
    private readonly rateLimit: RateLimitPlan | null,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = Date.now,
  ) {}

  get maxAttempts(): number {
    return this.plan.maxAttempts;
  }

  get maxDelayMs(): number {
    return this.plan.maxDelayMs;
  }

  /** Full jitter between initial_delay and the doubled cap (at most max_delay). */
  backoff(attempt: number): number {
    const cap = Math.min(this.plan.maxDelayMs, this.plan.initialDelayMs * 2 ** attempt);
    const low = Math.min(this.plan.initialDelayMs, cap);
    return low + this.random() * (cap - low);
  }

  /** After attempt number `attempt` failed on the wire (reset, timeout, truncated body…). */
  afterFailure(failure: TransportError, attempt: number): RetryStep {
    if (!failure.retryable) return { retry: false, reason: "not_retryable" };
    if (attempt >= this.plan.maxAttempts) return { retry: false, reason: "attempts" };
    return { retry: true, delayMs: this.backoff(attempt), cause: failure.kind, rateLimited: false };
  }

  /** After attempt number `attempt` was answered with a status that is not a success. */
  afterStatus(r: HttpResponse, attempt: number): RetryStep {
    const wait = this.serverWait(r);
    const retryable = this.plan.onStatus.includes(r.status) || wait?.fromReset === true;
    if (!retryable) return { retry: false, reason: "not_retryable" };
    if (attempt >= this.plan.maxAttempts) return { retry: false, reason: "attempts" };
    let delayMs = this.backoff(attempt);
    if (wait && wait.ms > 0) {
      if (wait.ms > this.plan.maxDelayMs)
        return {
          retry: false,
          reason: "wait_too_long",
          waitMs: wait.ms,
          header: wait.header,
          value: wait.value,
        };
      delayMs = wait.ms;
    }
    const rateLimited = r.status === 429 || wait?.fromReset === true;
    return { retry: true, delayMs, cause: rateLimited ? "rate_limited" : `status_${r.status}`, rateLimited };
  }

  /**
   * After an `on_response` rule said `retry`: always retryable, within max_attempts. The rule's
   * `wait` sets the delay (over Retry-After); a wait longer than max_delay fails at once.
   */
  afterRule(r: HttpResponse, attempt: number, waitMs: number | null): RetryStep {
    if (attempt >= this.plan.maxAttempts) return { retry: false, reason: "attempts" };
    const server = this.serverWait(r);
    const wait =
      waitMs !== null
        ? { ms: waitMs, header: "wait", value: `${waitMs / 1000}s` }
        : server && server.ms > 0
          ? server
          : null;
    if (wait && wait.ms > this.plan.maxDelayMs)
      return {
        retry: false,
        reason: "wait_too_long",
        waitMs: wait.ms,
        header: wait.header,
        value: wait.value,
      };
    const rateLimited = r.status === 429 || server?.fromReset === true;
    return {
      retry: true,
      delayMs: wait ? wait.ms : this.backoff(attempt),
      cause: `on_response_${r.status}`,
      rateLimited,
    };
  }

  /** What the server asked for: Retry-After, or a reset time when remaining is 0 (403/429). */
  serverWait(r: HttpResponse): ServerWait | null {
    const rl = this.rateLimit;
    if ((r.status === 429 || r.status === 403) && rl?.remainingHeader && rl.resetHeader) {
      const remaining = parseRemaining(r.headers[rl.remainingHeader]);
      if (remaining !== null && remaining <= 0) {
        const reset = parseReset(r.headers[rl.resetHeader], this.now());
        if (reset !== null)
          return {
            ms: Math.max(0, reset - this.now()),
            header: rl.resetHeader,
            value: r.headers[rl.resetHeader] ?? "",
            fromReset: true,
          };
      }
    }
    const ra = parseRetryAfter(r.headers["retry-after"], this.now());
    if (ra !== null)
      return {
        ms: ra,
        header: "Retry-After",
        value: r.headers["retry-after"] ?? "",
        fromReset: false,
      };
    return null;
  }
}
