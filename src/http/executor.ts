import { setMaxListeners } from "node:events";
import { STATUS_CODES } from "node:http";
import type { SourcePlan } from "../compile/plan.js";
import { cut, interrupted, quote, RunError, type TransportError, URL_CHARS } from "../shared/errors.js";
import { plural } from "../shared/format.js";
import { MASK, type Redactor } from "../shared/secrets.js";
import { formatDuration } from "../shared/units.js";
import { ownSignal, sendAttempt, stripCredentials, type Waits, waitsFor, withdrawn } from "./attempt.js";
import type { AuthProvider } from "./auth/auth.js";
import type { HttpClient, HttpRequest, HttpResponse } from "./client.js";
import { parseRemaining, parseReset, type RequestBudget } from "./rate-budget.js";
import { REDIRECTS, redirected } from "./redirects.js";
import { noteRateLimitWait, type RequestStats, requestWarnings } from "./request-stats.js";
import { applyRule, consumeBody, count, type FetchHow, type RuleStep, ruleError } from "./response-steps.js";
import type { RetryPolicy } from "./retry-policy.js";
import type { Semaphore } from "./semaphore.js";

export type { FetchHow } from "./response-steps.js";

export interface ExecutorDeps {
  source: SourcePlan;
  client: HttpClient;
  auth: AuthProvider;
  budget: RequestBudget;
  slots: Semaphore;
  redactor: Redactor;
  signal?: AbortSignal;
  /** The pipeline's retry policy (shared with the OAuth2 token endpoint). */
  policy: RetryPolicy;
}

/**
 * Sends a request until it succeeds or fails for good: credentials only to the API's origin,
 * the pipeline's rate budget and concurrency, retries with backoff and full jitter, Retry-After
 * and reset headers, one token refresh on a 401.
 */
export class RequestExecutor {
  private readonly policy: RetryPolicy;
  constructor(private readonly deps: ExecutorDeps) {
    this.policy = deps.policy;
  }

  /** `max_response_size` for streamed bodies: only when the file or the project defaults set it. */
  get streamedLimit(): number | null {
    return this.deps.source.maxStreamedBytes ?? null;
  }

  get redactor(): Redactor {
    return this.deps.redactor;
  }

  /** The warnings a stream's request counters call for (a permanent redirect, an unreadable header). */
  warnings(stats: RequestStats): string[] {
    return requestWarnings(stats, this.deps.source.rateLimit?.remainingHeader ?? null);
  }

  /** The URL as it may be shown: secrets and credential query parameters masked. */
  redactUrl(url: string): string {
    let shown = url;
    const names = this.deps.auth.queryNames;
    const r = this.deps.redactor;
    try {
      // Compared decoded: a Location or a next link may percent-encode a secret its own way
      // (partly, in lower case) that no encoded form of it matches.
      const u = new URL(url);
      let changed = false;
      const query = [...u.searchParams].map(([n, v]): [string, string] => {
        const masked = names.includes(n) ? "__MASKED__" : r.text(v);
        changed ||= masked !== v;
        return [r.text(n), masked];
      });
      if (changed) {
        u.search = new URLSearchParams(query).toString();
        shown = u.toString().replaceAll("__MASKED__", MASK);
      }
    } catch {}
    return cut(r.text(shown), URL_CHARS);
  }

  /**
   * `cancel` withdraws this request (a page fetched ahead that is no longer needed): it is not sent
   * if it has not gone out yet, and not retried; a request already on the wire completes, so the
   * counts here match what the API saw.
   *
   * Redirects (301, 302, 303, 307, 308 with a Location) are followed, at most MAX_REDIRECTS
   * times: within the API's origin with its credentials, to an origin of `allowed_hosts` without
   * them, and to any other origin not at all (an error names it). 303, and 301/302 after a POST,
   * continue with a GET, as browsers and fetch() do.
   */
  async fetch(
    request: HttpRequest,
    stats: RequestStats,
    cancel?: AbortSignal,
    how: FetchHow = {},
  ): Promise<HttpResponse> {
    let current = request;
    for (let hops = 0; ; hops++) {
      const r = await this.fetchOnce(current, stats, cancel, how);
      if (!REDIRECTS.has(r.status)) return r;
      current = redirected(this, this.deps.source, request, current, r, hops, stats);
    }
  }

  /**
   * The session's signal with a sequence's own stop, made once per stop (a queue job's), not per
   * request: Node 20 keeps every AbortSignal.any made from the session's signal until it aborts.
   */
  private signalFor(stop: AbortSignal | undefined): AbortSignal | undefined {
    if (!stop) return this.deps.signal;
    let own = this.owned.get(stop);
    if (!own) this.owned.set(stop, (own = shared(ownSignal(this.deps.signal, stop) as AbortSignal)));
    return own;
  }
  private readonly owned = new WeakMap<AbortSignal, AbortSignal>();

  /** The waits of a request withdrawn by `cancel`, made once per `cancel` (a request sequence's). */
  private waitsOf(cancel: AbortSignal | undefined): Waits {
    if (!cancel) return (this.plainWaits ??= waitsFor(this.deps.signal));
    let waits = this.waitsByCancel.get(cancel);
    if (!waits) {
      waits = waitsFor(this.deps.signal, cancel);
      if (waits.signal) shared(waits.signal);
      this.waitsByCancel.set(cancel, waits);
    }
    return waits;
  }
  private plainWaits: Waits | undefined;
  private readonly waitsByCancel = new WeakMap<AbortSignal, Waits>();

  private async fetchOnce(
    request: HttpRequest,
    stats: RequestStats,
    cancel: AbortSignal | undefined,
    how: FetchHow,
  ): Promise<HttpResponse> {
    const { source, auth } = this.deps;
    const own = this.signalFor(how.stop);
    const waits = this.waitsOf(cancel);
    const policy = this.policy;
    const sameOrigin = new URL(request.url).origin === source.origin;
    const base = sameOrigin ? request : stripCredentials(request, this.deps.redactor);
    let refreshed = false;
    for (let attempt = 1; ; attempt++) {
      const tried = await sendAttempt(this.deps, base, sameOrigin, stats, waits, cancel, own);
      const { res, sent } = tried;
      let failure = tried.failure;
      if (own?.aborted) throw interrupted();
      if (cancel?.aborted && !(res && res.status >= 200 && res.status < 300)) throw withdrawn();

      let rule: RuleStep | null = null;
      if (res) this.observeBudget(res, stats);
      if (res && !failure && !(REDIRECTS.has(res.status) && res.headers.location)) {
        rule = applyRule(this, request, res, how, stats, attempt, refreshed);
        if (rule.kind === "done") {
          failure = await consumeBody(res, how);
          if (own?.aborted) throw interrupted();
          if (!failure) return res;
        }
      }

      if (failure) {
        const step = policy.afterFailure(failure, attempt);
        if (!step.retry) throw this.failureError(request, failure, attempt, step.reason);
        count(stats, step.cause);
        await waits.pause(step.delayMs);
        continue;
      }

      const r = res!;
      if (REDIRECTS.has(r.status) && r.headers.location) return r; // fetch() follows it

      const refresh = rule?.kind === "refresh" || (rule?.kind === "builtin" && r.status === 401);
      if (refresh && sameOrigin && !refreshed) {
        refreshed = true;
        if (await auth.refresh(own, sent, stats)) {
          count(stats, "token_refresh");
          attempt--; // the retry after a refresh is not one of max_attempts
          continue;
        }
      }
      if (rule?.kind === "refresh") throw ruleError(this, request, r, rule.decision, attempt);

      const step =
        rule?.kind === "retry"
          ? policy.afterRule(r, attempt, rule.decision.rule.waitMs)
          : policy.afterStatus(r, attempt);
      if (!step.retry) {
        if (step.reason === "wait_too_long") {
          throw new RunError(
            "rate_limit_wait",
            `${this.describe(request)} answered ${r.status}; ${step.header === "wait" && rule?.kind === "retry" ? `on_response rule ${rule.decision.rule.at} waits` : "the API asked to wait"} ${formatDuration(step.waitMs)} (${step.header}: ${quote(step.value, this.redactor, 40)}), longer than retry.max_delay ${formatDuration(policy.maxDelayMs)}`,
            { status: r.status, waitMs: step.waitMs },
          );
        }
        throw rule?.kind === "retry"
          ? ruleError(this, request, r, rule.decision, attempt)
          : this.httpError(request, r, attempt);
      }
      count(stats, rule?.kind === "retry" ? `on_response_${r.status}` : step.cause);
      if (step.rateLimited) this.rateLimited(r, step.delayMs, stats);
      await waits.pause(step.delayMs);
    }
  }

  /**
   * A rate-limit wait, counted. The API's own wait (Retry-After, a reset) holds every request of
   * the pipeline (every worker of a queue run), not only this one: the others would be refused
   * until then. Counted as time: the requests it holds are not counted again (noteRateLimitWait).
   */
  private rateLimited(r: HttpResponse, delayMs: number, stats: RequestStats): void {
    const now = Date.now();
    const server = this.policy.serverWait(r) !== null;
    noteRateLimitWait(stats, now, now + delayMs, server);
    if (server) this.deps.budget.pauseUntil(now + delayMs);
  }

  /** The error for a transport failure that is not retried (any more). */
  private failureError(
    request: HttpRequest,
    failure: TransportError,
    attempt: number,
    reason: "not_retryable" | "attempts" | "wait_too_long",
  ): RunError {
    if (reason === "not_retryable") {
      return new RunError(
        failure.kind === "too_large" ? "too_large" : "aborted",
        `${this.describe(request)}: ${quote(failure.message, this.redactor)}`,
      );
    }
    return new RunError(
      "transport",
      `${this.describe(request)} failed after ${plural(attempt, "attempt")}: ${quote(failure.message, this.redactor)}`,
      { attempts: attempt, cause: failure.kind },
    );
  }

  /** Proactive throttling: when the API says 0 requests remain, pause the budget until reset. */
  private observeBudget(r: HttpResponse, stats: RequestStats): void {
    const rl = this.deps.source.rateLimit;
    if (!rl?.remainingHeader || !rl.resetHeader) return;
    const header = r.headers[rl.remainingHeader];
    if (header === undefined) return;
    const remaining = parseRemaining(header);
    if (remaining === null) {
      const odd = stats.unreadableRemaining;
      odd.count++;
      odd.first ??= header.trim() === "" ? "an empty value" : `\`${quote(header, this.redactor, 40)}\``;
      return;
    }
    if (remaining > 0) return;
    const reset = parseReset(r.headers[rl.resetHeader]);
    if (reset !== null && reset - Date.now() <= this.deps.source.retry.maxDelayMs)
      this.deps.budget.pauseUntil(reset);
  }

  describe(req: HttpRequest): string {
    return `${req.method} ${this.redactUrl(req.url)}`;
  }

  httpError(req: HttpRequest, r: HttpResponse, attempts: number): RunError {
    const body = quote(r.body, this.deps.redactor);
    const reason = STATUS_CODES[r.status] ?? "";
    return new RunError(
      "http",
      `${this.describe(req)} answered ${r.status}${reason ? ` ${reason}` : ""} after ${plural(attempts, "attempt")}${body ? `: ${body}` : ""}`,
      { status: r.status, attempts, url: this.redactUrl(req.url), method: req.method, body },
    );
  }
}

/** A signal every request of a sequence listens to: any number of listeners, no leak warning. */
function shared(signal: AbortSignal): AbortSignal {
  setMaxListeners(0, signal);
  return signal;
}
