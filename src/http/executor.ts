import { STATUS_CODES } from "node:http";
import type { SourcePlan } from "../compile/plan.js";
import { cut, quote, RunError, TransportError, URL_CHARS } from "../shared/errors.js";
import { plural } from "../shared/format.js";
import { stringifyJson } from "../shared/json-text.js";
import { MASK, type Redactor, SENSITIVE_HEADERS } from "../shared/secrets.js";
import { sleep } from "../shared/sleep.js";
import { formatDuration } from "../shared/units.js";
import type { AuthProvider } from "./auth/auth.js";
import type { HttpClient, HttpRequest, HttpResponse } from "./client.js";
import { checkMove } from "./origin-policy.js";
import { parseRemaining, parseReset, type RequestBudget } from "./rate-budget.js";
import { type RequestStats, requestWarnings } from "./request-stats.js";
import { describeMatch, type ResponseRules, type RuleDecision } from "./response-rules.js";
import type { RetryPolicy } from "./retry-policy.js";
import type { Semaphore } from "./semaphore.js";

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
    cancel: AbortSignal | undefined,
    how: FetchHow,
  ): Promise<HttpResponse> {
    const { source, auth } = this.deps;
    const signal = this.deps.signal;
    const waits = this.waits(cancel);
    const policy = this.policy;
    const sameOrigin = new URL(request.url).origin === source.origin;
    const base = sameOrigin ? request : this.stripCredentials(request);
    let refreshed = false;
    for (let attempt = 1; ; attempt++) {
      const tried = await this.attempt(base, sameOrigin, stats, waits, cancel);
      const { res, sent } = tried;
      let failure = tried.failure;
      if (signal?.aborted) throw interrupted();
      if (cancel?.aborted && !(res && res.status >= 200 && res.status < 300)) throw withdrawn();

      let rule: RuleStep | null = null;
      if (res) this.observeBudget(res, stats);
      if (res && !failure && !(REDIRECTS.has(res.status) && res.headers.location)) {
        rule = this.applyRule(request, res, how, stats, attempt, refreshed);
        if (rule.kind === "done") {
          failure = await consumeBody(res, how);
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
        if (await auth.refresh(signal, sent, stats)) {
          count(stats, "token_refresh");
          attempt--; // the retry after a refresh is not one of max_attempts
          continue;
        }
      }
      if (rule?.kind === "refresh") throw this.ruleError(request, r, rule.decision, attempt);

      const step =
        rule?.kind === "retry"
          ? policy.afterRule(r, attempt, rule.decision.rule.waitMs)
          : policy.afterStatus(r, attempt);
      if (!step.retry) {
        if (step.reason === "wait_too_long") {
          throw new RunError(
            "rate_limit_wait",
            `${this.describe(request)} answered ${r.status}; the API asked to wait ${formatDuration(step.waitMs)} (${step.header}: ${quote(step.value, this.redactor, 40)}), longer than retry.max_delay ${formatDuration(policy.maxDelayMs)}`,
            { status: r.status, waitMs: step.waitMs },
          );
        }
        throw rule?.kind === "retry"
          ? this.ruleError(request, r, rule.decision, attempt)
          : this.httpError(request, r, attempt);
      }
      count(stats, rule?.kind === "retry" ? `on_response_${r.status}` : step.cause);
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

  /**
   * What the stream's `on_response` rules make of a response: `done` (a success, or ignored: the
   * response is returned), `retry`, `refresh`, or `builtin` (no rule holds: the status decides).
   * `fail` throws here.
   */
  private applyRule(
    request: HttpRequest,
    r: HttpResponse,
    how: FetchHow,
    stats: RequestStats,
    attempt: number,
    refreshed: boolean,
  ): RuleStep {
    const decision = how.rules?.decide(r, r.stream !== undefined) ?? null;
    const ok = r.status >= 200 && r.status < 300;
    if (!decision) return ok ? { kind: "done" } : { kind: "builtin" };
    switch (decision.rule.action) {
      case "ignore":
        countIgnored(stats, r.status);
        r.stream = undefined; // not read: an empty last page
        r.ignored = { at: decision.rule.at, message: decision.rule.message };
        return { kind: "done" };
      case "fail":
        throw this.ruleError(request, r, decision, attempt);
      case "retry":
        return { kind: "retry", decision };
      case "refresh_auth":
        if (refreshed) throw this.ruleError(request, r, decision, attempt, " (after a token refresh)");
        return { kind: "refresh", decision };
    }
  }

  /** A rule's `fail` (or a retry or refresh that did not help): the rule, what it matched, its message. */
  private ruleError(
    req: HttpRequest,
    r: HttpResponse,
    d: RuleDecision,
    attempts: number,
    note = "",
  ): RunError {
    const mask = this.deps.redactor;
    const matched = d.matched === undefined ? "" : describeMatch(d);
    if (d.rule.at.endsWith(".error_path"))
      return new RunError(
        "api_error",
        `${this.describe(req)} answered ${r.status} with an error at ${d.rule.match}: ${quote(typeof d.matched === "string" ? d.matched : stringifyJson(d.matched), mask)}`,
        { status: r.status },
      );
    const body = r.status >= 200 && r.status < 300 ? "" : quote(r.body, mask);
    return new RunError(
      d.rule.action === "fail" && r.status >= 200 && r.status < 300 ? "api_error" : "http",
      `${this.describe(req)} answered ${r.status}${matched ? ` (${quote(matched, mask, 200)})` : ""} after ${plural(attempts, "attempt")}${note}: ${d.rule.message ? `${quote(d.rule.message, mask)} ` : ""}(on_response rule ${d.rule.at}, action ${d.rule.action})${body ? `: ${body}` : ""}`,
      { status: r.status, attempts, rule: d.rule.at },
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

/** How a stream fetches: its response rules, and how a streamed body is read. */
export interface FetchHow {
  rules?: ResponseRules;
  /**
   * Reads a streamed 2xx body (HttpRequest.streamed). A TransportError it throws (a reset or a
   * truncated body mid-way) is retried as a new attempt, within `retry.max_attempts`.
   */
  consume?: (r: HttpResponse) => Promise<void>;
}

type RuleStep =
  | { kind: "done" }
  | { kind: "builtin" }
  | { kind: "retry"; decision: RuleDecision }
  | { kind: "refresh"; decision: RuleDecision };

/**
 * A streamed body is read here, inside the attempt: a transport fault while it is read (a reset,
 * a truncated body) comes back to be retried like any other; null when it was read (or needs no reading).
 */
async function consumeBody(res: HttpResponse, how: FetchHow): Promise<TransportError | null> {
  if (!res.stream || !how.consume || res.ignored) return null;
  try {
    await how.consume(res);
    return null;
  } catch (err) {
    if (err instanceof TransportError) return err;
    throw err;
  }
}

function countIgnored(stats: RequestStats, status: number): void {
  stats.ignored.count++;
  stats.ignored.statuses[status] = (stats.ignored.statuses[status] ?? 0) + 1;
}

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
