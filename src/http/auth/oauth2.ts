import type { AuthPlan } from "../../compile/plan.js";
import { interrupted, quote, RunError, TransportError } from "../../shared/errors.js";
import { plural } from "../../shared/format.js";
import { parseJson, setOwn, stringifyJson } from "../../shared/json-text.js";
import { MASK, type Redactor } from "../../shared/secrets.js";
import { sleep, untilAbort } from "../../shared/sleep.js";
import { formatDuration } from "../../shared/units.js";
import type { StateStore } from "../../state/state-store.js";
import type { HttpClient, HttpRequest, HttpResponse } from "../client.js";
import type { RequestBudget } from "../rate-budget.js";
import type { RequestStats } from "../request-stats.js";
import type { RetryPolicy } from "../retry-policy.js";
import type { AuthProvider } from "./auth.js";
import type { SharedToken, TokenShare } from "./token-share.js";

type OAuth2Plan = Extract<AuthPlan, { type: "oauth2" }>;

/** How often a process waiting for another's token refresh looks for the new token (ms). */
const SHARE_POLL_MS = 20;

interface Token {
  value: string;
  /** Epoch ms after which a request should not use it, or null when the server gave no lifetime. */
  refreshAt: number | null;
}

/** A token fetch in flight: the callers waiting for it, and what stops it when none is left. */
interface Fetch {
  token: Promise<Token>;
  waiting: number;
  stop: AbortController;
}

/**
 * OAuth2 client_credentials / refresh_token: a token before the first request, refreshed ahead of
 * expiry (refresh_before, or half the lifetime when shorter) and once on a 401. One refresh at a
 * time however many requests wait; a rotated refresh token is saved to the state file. With a
 * `share` (the workers of a queue run), one refresh at a time across processes too: the token
 * and the latest refresh token live there, and the state file is left to the submitter.
 */
export class OAuth2Auth implements AuthProvider {
  readonly queryNames: string[] = [];
  private token: Token | null = null;
  private inflight: Fetch | null = null;
  private refreshToken: string | null;

  constructor(
    private readonly plan: OAuth2Plan,
    private readonly deps: {
      client: HttpClient;
      redactor: Redactor;
      policy: RetryPolicy;
      /** The API's rate budget: token requests to the API's own origin count against it. */
      budget?: { origin: string; budget: RequestBudget } | null;
      state: StateStore | null;
      /** The token shared by every worker of a queue run (redis-tokens.ts), or none. */
      share?: TokenShare | null;
      now?: () => number;
    },
  ) {
    this.refreshToken = plan.refreshToken;
  }

  /** token_url as it may be shown (a key in its query is a secret). */
  private get shownTokenUrl(): string {
    return this.deps.redactor.text(this.plan.tokenUrl);
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  async start(signal?: AbortSignal, stats?: RequestStats): Promise<void> {
    if (this.plan.grantType === "refresh_token" && this.deps.state) {
      const saved = (await this.deps.state.read()).auth?.refresh_token;
      if (saved) {
        this.refreshToken = saved;
        this.deps.redactor.add([saved]);
      }
    }
    await this.current(signal, stats);
  }

  async apply(req: HttpRequest, signal?: AbortSignal, stats?: RequestStats): Promise<HttpRequest> {
    return withToken(req, await this.current(signal, stats));
  }

  applyIfFresh(req: HttpRequest): HttpRequest | null {
    const t = this.token;
    return t && this.fresh(t.refreshAt) ? withToken(req, t) : null;
  }

  /** Before its refresh time (or the server gave it no lifetime). */
  private fresh(refreshAt: number | null): boolean {
    return refreshAt === null || this.now() < refreshAt;
  }

  /** Every token fetch started and not ended yet, also those no caller waits for any more. */
  private readonly fetches = new Set<Promise<void>>();

  async settled(): Promise<void> {
    while (this.fetches.size) await Promise.all(this.fetches);
  }

  async refresh(signal?: AbortSignal, failed?: HttpRequest, stats?: RequestStats): Promise<boolean> {
    // Requests that failed with a token already replaced just retry with the new one.
    const used = failed?.headers.authorization;
    if (used && this.token && used !== `Bearer ${this.token.value}`) return true;
    const stale = this.token?.value ?? null;
    this.token = null;
    await this.current(signal, stats, stale);
    return true;
  }

  private current(signal?: AbortSignal, stats?: RequestStats, stale?: string | null): Promise<Token> {
    const t = this.token;
    if (t && this.fresh(t.refreshAt)) return Promise.resolve(t);
    if (signal?.aborted) return Promise.reject(interrupted());
    if (!this.inflight) {
      const share = this.deps.share;
      const stop = new AbortController();
      const got = share
        ? this.fromShare(share, stale ?? t?.value ?? null, stop.signal, stats)
        : this.fetchToken(stop.signal, stats);
      const fetch: Fetch = { token: got, waiting: 0, stop };
      // Kept (a failure is the waiters' to see), then let go: `settled()` waits for it.
      const ends: Promise<void> = got
        .then(
          (tok) => {
            this.token = tok;
          },
          () => {},
        )
        .finally(() => {
          if (this.inflight === fetch) this.inflight = null;
          this.fetches.delete(ends);
        });
      this.fetches.add(ends);
      this.inflight = fetch;
    }
    return this.waitFor(this.inflight, signal);
  }

  /**
   * One caller's wait for a fetch: its signal (a queue job's, or the run's) ends its wait at once.
   * A fetch no caller waits for any more is stopped (no retry, no wait) and forgotten; one that a
   * caller without a signal waits for goes on to its end.
   */
  private async waitFor(fetch: Fetch, signal?: AbortSignal): Promise<Token> {
    if (!signal) {
      fetch.waiting = Number.POSITIVE_INFINITY;
      return fetch.token;
    }
    fetch.waiting++;
    try {
      return await untilAbort(fetch.token, signal);
    } finally {
      if (--fetch.waiting === 0 && signal.aborted) {
        if (this.inflight === fetch) this.inflight = null;
        fetch.stop.abort(signal.reason);
      }
    }
  }

  /**
   * The shared token, unless it is `stale` (the one that just failed or expired here): then one
   * process takes the lock and asks the token endpoint (with the latest refresh token) while the
   * others wait for its token.
   */
  private async fromShare(
    share: TokenShare,
    stale: string | null,
    signal?: AbortSignal,
    stats?: RequestStats,
  ): Promise<Token> {
    for (;;) {
      const found = this.adopt(await share.read(), stale);
      if (found) return found;
      const lock = await share.lock();
      if (lock) {
        try {
          const again = this.adopt(await share.read(), stale);
          if (again) return again;
          const token = await this.fetchToken(signal, stats);
          await share.write({ ...token, refreshToken: this.refreshToken });
          return token;
        } finally {
          await lock.release();
        }
      }
      await interruptible(sleep(SHARE_POLL_MS, signal), signal);
    }
  }

  /** Takes the shared refresh token (the latest), and the shared token unless it is stale. */
  private adopt(shared: SharedToken | null, stale: string | null): Token | null {
    if (!shared) return null;
    if (shared.refreshToken && shared.refreshToken !== this.refreshToken) {
      this.deps.redactor.add([shared.refreshToken]);
      this.refreshToken = shared.refreshToken;
    }
    const { value, refreshAt } = shared;
    if (value === null || value === stale || !this.fresh(refreshAt)) return null;
    this.deps.redactor.add([value]);
    return { value, refreshAt };
  }

  private async fetchToken(signal?: AbortSignal, stats?: RequestStats): Promise<Token> {
    const p = this.plan;
    const form = new URLSearchParams();
    form.set("grant_type", p.grantType);
    if (p.grantType === "refresh_token") form.set("refresh_token", this.refreshToken ?? "");
    if (p.scope) form.set("scope", p.scope);
    const headers: Record<string, string> = {
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    };
    if (p.clientId !== null) {
      if (p.clientAuth === "basic") {
        const cred = `${encodeURIComponent(p.clientId)}:${encodeURIComponent(p.clientSecret ?? "")}`;
        headers.authorization = `Basic ${Buffer.from(cred).toString("base64")}`;
        this.deps.redactor.add([Buffer.from(cred).toString("base64")]);
      } else {
        form.set("client_id", p.clientId);
        if (p.clientSecret !== null) form.set("client_secret", p.clientSecret);
      }
    }
    const req: HttpRequest = { method: "POST", url: p.tokenUrl, headers, body: form.toString() };
    const res = await this.send(req, signal, stats);
    let json: Record<string, unknown>;
    const text = res.body.toString("utf8");
    try {
      json = parseJson(text) as Record<string, unknown>;
    } catch {
      // A form-encoded answer (a provider that ignores Accept) may hold the tokens it issued.
      if (res.body.length <= 64 * 1024) {
        const form = new URLSearchParams(text.trim());
        this.deps.redactor.add([...form].filter(([k]) => TOKEN_KEY.test(k)).map(([, v]) => v));
      }
      throw new RunError(
        "auth",
        `token endpoint ${this.shownTokenUrl} answered ${res.status} with a body that is not JSON: ${quote(res.body, this.deps.redactor, 200)}`,
      );
    }
    if (res.status < 200 || res.status >= 300 || typeof json.access_token !== "string") {
      // Tokens the refused answer holds anyway (nested, or beside a wrong status) are secrets too.
      const found: string[] = [];
      const shown = tokensMasked(json, found);
      this.deps.redactor.add(found);
      // The endpoint's own words, masked then cut (an error_description can be megabytes).
      const code =
        typeof json.error === "string" ? quote(json.error, this.deps.redactor, 100) : "no access_token";
      const detail = quote(
        typeof json.error_description === "string" ? json.error_description : stringifyJson(shown),
        this.deps.redactor,
        300,
      );
      throw new RunError("auth", `token endpoint answered ${res.status} ${code}: ${detail}`, {
        status: res.status,
      });
    }
    const value = json.access_token;
    this.deps.redactor.add([value]);
    const rotated = typeof json.refresh_token === "string" ? json.refresh_token : null;
    if (rotated && rotated !== this.refreshToken) {
      this.deps.redactor.add([rotated]);
      this.refreshToken = rotated;
      // Under a share (every process of a project with a queue), the share keeps it, sealed: a
      // worker writing the state would race the submitter's commits, and the state in Redis is
      // not encrypted.
      if (this.deps.state && !this.deps.share)
        await this.deps.state.update((s) => ({ ...s, auth: { ...s.auth, refresh_token: rotated } }));
    }
    const expiresIn = Number(json.expires_in);
    let refreshAt: number | null = null;
    if (Number.isFinite(expiresIn) && expiresIn > 0) {
      const lifetime = expiresIn * 1000;
      refreshAt = this.now() + lifetime - Math.min(p.refreshBeforeMs, lifetime / 2);
    }
    return { value, refreshAt };
  }

  /**
   * Token requests go through the pipeline's retry policy like any other (retry-policy.ts): the
   * same statuses, backoff, Retry-After and max_delay rule. Their retries are counted as
   * `token_<cause>` in the statistics of the stream that needed the token.
   */
  private async send(req: HttpRequest, signal?: AbortSignal, stats?: RequestStats): Promise<HttpResponse> {
    const { policy, client } = this.deps;
    const budget =
      this.deps.budget && new URL(req.url).origin === this.deps.budget.origin
        ? this.deps.budget.budget
        : null;
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse | null = null;
      let failure: TransportError | null = null;
      const ticket = budget ? await interruptible(budget.begin(signal), signal) : null;
      try {
        // A refresh_token request on the wire is read to its end: the endpoint may have rotated
        // the refresh token already, and the new one is saved (the callers stopped waiting).
        res = await client.send(
          req,
          this.plan.grantType === "refresh_token" ? undefined : signal,
          ticket?.done,
        );
      } catch (err) {
        if (signal?.aborted) throw interrupted();
        if (!(err instanceof TransportError)) throw err;
        failure = err;
      } finally {
        ticket?.done();
      }
      if (res && res.status >= 200 && res.status < 300) return res;
      const step = failure ? policy.afterFailure(failure, attempt) : policy.afterStatus(res!, attempt);
      if (!step.retry) {
        if (step.reason === "wait_too_long") {
          throw new RunError(
            "auth",
            `token endpoint ${this.shownTokenUrl} answered ${res!.status}; it asked to wait ${formatDuration(step.waitMs)} (${step.header}: ${quote(step.value, this.deps.redactor, 40)}), longer than retry.max_delay ${formatDuration(policy.maxDelayMs)}`,
          );
        }
        if (res) return res; // the caller reads the endpoint's error
        throw new RunError(
          "auth",
          `token endpoint ${this.shownTokenUrl} failed after ${plural(attempt, "attempt")}: ${quote(failure!.message, this.deps.redactor)}`,
        );
      }
      if (stats) stats.retries[`token_${step.cause}`] = (stats.retries[`token_${step.cause}`] ?? 0) + 1;
      await interruptible(sleep(step.delayMs, signal), signal);
    }
  }
}

/** A wait that the run's interruption ends: an `aborted` RunError, as for the API's requests. */
async function interruptible<T>(wait: Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await wait;
  } catch (err) {
    if (signal?.aborted) throw interrupted();
    throw err;
  }
}

function withToken(req: HttpRequest, token: Token): HttpRequest {
  return { ...req, headers: { ...req.headers, authorization: `Bearer ${token.value}` } };
}

/** Keys whose values are credentials (`token_type` names a kind, and stays). */
const TOKEN_KEY = /^(?!token_type$).*(token|secret|password)/i;

/** A copy of a token endpoint's answer with the values of token-like keys masked, collected in `found`. */
function tokensMasked(value: unknown, found: string[], depth = 0): unknown {
  if (!value || typeof value !== "object") return value;
  if (depth > 8) return MASK;
  if (Array.isArray(value)) return value.map((v) => tokensMasked(v, found, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const secret = TOKEN_KEY.test(k) && typeof v === "string";
    if (secret) found.push(v);
    setOwn(out, k, secret ? MASK : tokensMasked(v, found, depth + 1));
  }
  return out;
}
