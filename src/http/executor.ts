import { STATUS_CODES } from "node:http";
import type { SourcePlan } from "../compile/plan.js";
import { cut, quote, RunError, TransportError, URL_CHARS } from "../shared/errors.js";
import { plural } from "../shared/format.js";
import { MASK, type Redactor, SENSITIVE_HEADERS } from "../shared/secrets.js";
import { sleep } from "../shared/sleep.js";
import { formatDuration } from "../shared/units.js";
import type { AuthProvider } from "./auth/auth.js";
import type { HttpClient, HttpRequest, HttpResponse } from "./client.js";
import { checkMove } from "./origin-policy.js";
import { parseRemaining, parseReset, type RateBudget } from "./rate-budget.js";
import { type RequestStats, requestWarnings } from "./request-stats.js";
import type { RetryPolicy } from "./retry-policy.js";
import type { Semaphore } from "./semaphore.js";

export interface ExecutorDeps {
  source: SourcePlan;
  client: HttpClient;
  auth: AuthProvider;
  budget: RateBudget;
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
    if (names.length) {
      try {
        const u = new URL(url);
        for (const n of names) if (u.searchParams.has(n)) u.searchParams.set(n, "__MASKED__");
        shown = u.toString().replaceAll("__MASKED__", MASK);
      } catch {}
    }
    return cut(this.deps.redactor.text(shown), URL_CHARS);
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
  async fetch(request: HttpRequest, stats: RequestStats, cancel?: AbortSignal): Promise<HttpResponse> {
    let current = request;
    for (let hops = 0; ; hops++) {
      const r = await this.fetchOnce(current, stats, cancel);
      if (!REDIRECTS.has(r.status)) return r;
      const location = r.headers.location;
      let next: URL;
      try {
        next = new URL(location, current.url);
      } catch {
        throw new RunError(
          "http",
          `${this.describe(current)} answered ${r.status} with a Location that is not a URL: ${quote(location, this.redactor)}`,
          { status: r.status },
        );
      }
      const toGet = r.status === 303 || ((r.status === 301 || r.status === 302) && current.method === "POST");
      // A 307/308 resends the body: never one that carries a secret to another origin.
      checkMove(this.deps.source, {
        how: `${this.describe(current)} redirects (${r.status}) to`,
        via: "redirect",
        url: next.toString(),
        body: toGet ? undefined : current.body,
        mask: (t) => this.redactor.text(t),
        showUrl: (u) => this.redactUrl(u),
        details: { status: r.status },
      });
      if (hops >= MAX_REDIRECTS) {
        throw new RunError(
          "http",
          `${this.describe(request)} was redirected more than ${MAX_REDIRECTS} times (last: ${r.status} to ${this.redactUrl(next.toString())})`,
          { status: r.status },
        );
      }
      if (r.status === 301 || r.status === 308) {
        stats.movedPermanently.count++;
        stats.movedPermanently.first ??= `${this.redactUrl(current.url)} → ${this.redactUrl(next.toString())}`;
      }
      current = toGet
        ? { ...current, url: next.toString(), method: "GET", body: undefined }
        : { ...current, url: next.toString() };
    }
  }

  private async fetchOnce(
    request: HttpRequest,
    stats: RequestStats,
    cancel?: AbortSignal,
  ): Promise<HttpResponse> {
    const { source, auth } = this.deps;
    const signal = this.deps.signal;
    const waits = this.waits(cancel);
    const policy = this.policy;
    const sameOrigin = new URL(request.url).origin === source.origin;
    const base = sameOrigin ? request : this.stripCredentials(request);
    let refreshed = false;
    for (let attempt = 1; ; attempt++) {
      const { res, failure, sent } = await this.attempt(base, sameOrigin, stats, waits, cancel);
      if (signal?.aborted) throw interrupted();
      if (cancel?.aborted && !(res && res.status >= 200 && res.status < 300)) throw withdrawn();

      if (failure) {
        const step = policy.afterFailure(failure, attempt);
        if (!step.retry) throw this.failureError(request, failure, attempt, step.reason);
        count(stats, step.cause);
        await waits.pause(step.delayMs);
        continue;
      }

      const r = res!;
      this.observeBudget(r, stats);
      if (r.status >= 200 && r.status < 300) return r;
      if (REDIRECTS.has(r.status) && r.headers.location) return r; // fetch() follows it

      if (r.status === 401 && sameOrigin && !refreshed) {
        refreshed = true;
        if (await auth.refresh(signal, sent, stats)) {
          count(stats, "token_refresh");
          attempt--; // the retry after a refresh is not one of max_attempts
          continue;
        }
      }

      const step = policy.afterStatus(r, attempt);
      if (!step.retry) {
        if (step.reason === "wait_too_long") {
          throw new RunError(
            "rate_limit_wait",
            `${this.describe(request)} answered ${r.status}; the API asked to wait ${formatDuration(step.waitMs)} (${step.header}: ${quote(step.value, this.redactor, 40)}), longer than retry.max_delay ${formatDuration(policy.maxDelayMs)}`,
            { status: r.status, waitMs: step.waitMs },
          );
        }
        throw this.httpError(request, r, attempt);
      }
      count(stats, step.cause);
      if (step.rateLimited) {
        stats.rateLimitWaits.count++;
        stats.rateLimitWaits.ms += step.delayMs;
      }
      await waits.pause(step.delayMs);
    }
  }

  /**
   * The signal for waits (slot, budget, backoff): the run's, and `cancel` (a page no longer
   * needed) which ends them at once; `pause` is a backoff that ends with the right error.
   */
  private waits(cancel?: AbortSignal): Waits {
    const signal = this.deps.signal;
    const waitSignal = cancel && signal ? AbortSignal.any([signal, cancel]) : (cancel ?? signal);
    const pause = async (ms: number) => {
      try {
        await sleep(ms, waitSignal);
      } catch {
        throw signal?.aborted ? interrupted() : withdrawn();
      }
    };
    return { signal: waitSignal, pause };
  }

  /**
   * One attempt: a connection slot first, then the budget (its stamp is then taken right before
   * the request goes out, not while it waits for a slot), credentials, the request. A transport
   * failure is returned, to be retried or not by the caller.
   */
  private async attempt(
    base: HttpRequest,
    sameOrigin: boolean,
    stats: RequestStats,
    waits: Waits,
    cancel?: AbortSignal,
  ): Promise<{ res: HttpResponse | null; failure: TransportError | null; sent: HttpRequest }> {
    const { client, auth, budget, slots } = this.deps;
    const signal = this.deps.signal;
    if (cancel?.aborted) throw withdrawn();
    const release = await slots.acquire();
    let sent: HttpRequest = base;
    let ticket: { done: () => void } | null = null;
    try {
      if (cancel?.aborted) throw withdrawn();
      const { waited, done } = await budget.begin(waits.signal);
      ticket = { done };
      if (waited > 0) {
        stats.rateLimitWaits.count++;
        stats.rateLimitWaits.ms += waited;
      }
      const req = sameOrigin ? await auth.apply(base, signal, stats) : base;
      if (cancel?.aborted) throw withdrawn();
      sent = req;
      stats.requests++;
      return { res: await client.send(req, signal), failure: null, sent };
    } catch (err) {
      if (err instanceof TransportError) return { res: null, failure: err, sent };
      if (signal?.aborted) throw interrupted();
      if (cancel?.aborted) throw withdrawn();
      throw err;
    } finally {
      ticket?.done();
      release();
    }
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

  private stripCredentials(req: HttpRequest): HttpRequest {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (SENSITIVE_HEADERS.has(k.toLowerCase())) continue;
      if (this.deps.redactor.text(v) !== v) continue; // a header carrying a secret value
      headers[k] = v;
    }
    return { ...req, headers };
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

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

function count(stats: RequestStats, cause: string): void {
  stats.retries[cause] = (stats.retries[cause] ?? 0) + 1;
}

/** The waits of one request: their signal, and a backoff pause. */
interface Waits {
  signal: AbortSignal | undefined;
  pause(ms: number): Promise<void>;
}

const interrupted = () => new RunError("aborted", "the run was interrupted");
const withdrawn = () => new RunError("aborted", "withdrawn: the page is no longer needed");
