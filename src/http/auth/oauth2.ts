import type { AuthPlan, RetryPlan } from "../../compile/plan.js";
import type { Redactor } from "../../config/secrets.js";
import { formatDuration } from "../../config/units.js";
import { parseJson, stringifyJson } from "../../records/json-text.js";
import type { StateStore } from "../../run/state.js";
import type { HttpClient, HttpRequest, HttpResponse } from "../client.js";
import { firstBytes, RunError, TransportError } from "../errors.js";
import { parseRetryAfter } from "../rate-budget.js";
import { sleep } from "../semaphore.js";
import type { AuthProvider } from "./auth.js";

type OAuth2Plan = Extract<AuthPlan, { type: "oauth2" }>;

interface Token {
  value: string;
  /** Epoch ms after which a request should not use it, or null when the server gave no lifetime. */
  refreshAt: number | null;
}

/**
 * OAuth2 client_credentials / refresh_token: a token before the first request, refreshed ahead of
 * expiry (refresh_before, or half the lifetime when shorter) and once on a 401. One refresh at a
 * time however many requests wait; a rotated refresh token is saved to the state file.
 */
export class OAuth2Auth implements AuthProvider {
  readonly queryNames: string[] = [];
  private token: Token | null = null;
  private inflight: Promise<Token> | null = null;
  private refreshToken: string | null;
  /** Token requests made (first fetch included), for tests and the report. */
  fetches = 0;

  constructor(
    private readonly plan: OAuth2Plan,
    private readonly deps: {
      client: HttpClient;
      redactor: Redactor;
      retry: RetryPlan;
      state: StateStore | null;
      now?: () => number;
    },
  ) {
    this.refreshToken = plan.refreshToken;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.plan.grantType === "refresh_token" && this.deps.state) {
      const saved = (await this.deps.state.read()).auth?.refresh_token;
      if (saved) {
        this.refreshToken = saved;
        this.deps.redactor.add([saved]);
      }
    }
    await this.current(signal);
  }

  async apply(req: HttpRequest, signal?: AbortSignal): Promise<HttpRequest> {
    const token = await this.current(signal);
    return { ...req, headers: { ...req.headers, authorization: `Bearer ${token.value}` } };
  }

  async refresh(signal?: AbortSignal, failed?: HttpRequest): Promise<boolean> {
    // Requests that failed with a token already replaced just retry with the new one.
    const used = failed?.headers.authorization;
    if (used && this.token && used !== `Bearer ${this.token.value}`) return true;
    this.token = null;
    await this.current(signal);
    return true;
  }

  private current(signal?: AbortSignal): Promise<Token> {
    const t = this.token;
    if (t && (t.refreshAt === null || this.now() < t.refreshAt)) return Promise.resolve(t);
    if (!this.inflight) {
      this.inflight = this.fetchToken(signal).then(
        (tok) => {
          this.token = tok;
          this.inflight = null;
          return tok;
        },
        (err) => {
          this.inflight = null;
          throw err;
        },
      );
    }
    return this.inflight;
  }

  private async fetchToken(signal?: AbortSignal): Promise<Token> {
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
    const res = await this.send(req, signal);
    let json: Record<string, unknown>;
    try {
      json = parseJson(res.body.toString("utf8")) as Record<string, unknown>;
    } catch {
      throw new RunError(
        "auth",
        `token endpoint ${p.tokenUrl} answered ${res.status} with a body that is not JSON: ${this.deps.redactor.text(firstBytes(res.body, 200))}`,
      );
    }
    if (res.status < 200 || res.status >= 300 || typeof json.access_token !== "string") {
      const code = typeof json.error === "string" ? json.error : "no access_token";
      const detail =
        typeof json.error_description === "string"
          ? json.error_description
          : firstBytes(stringifyJson(json), 300);
      throw new RunError(
        "auth",
        this.deps.redactor.text(`token endpoint answered ${res.status} ${code}: ${detail}`),
        { status: res.status },
      );
    }
    this.fetches++;
    const value = json.access_token;
    this.deps.redactor.add([value]);
    const rotated = typeof json.refresh_token === "string" ? json.refresh_token : null;
    if (rotated && rotated !== this.refreshToken) {
      this.deps.redactor.add([rotated]);
      this.refreshToken = rotated;
      if (this.deps.state)
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

  /** Token requests are retried on transport errors, 429 and 5xx like any other. */
  private async send(req: HttpRequest, signal?: AbortSignal): Promise<HttpResponse> {
    const retry = this.deps.retry;
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.deps.client.send(req, signal);
        if ((res.status === 429 || res.status >= 500) && attempt < retry.maxAttempts) {
          const ra = parseRetryAfter(res.headers["retry-after"]);
          // As for the API's own requests (executor.ts): a wait longer than max_delay fails now,
          // saying how long the endpoint asked for, rather than retrying too early.
          if (ra !== null && ra > retry.maxDelayMs) {
            throw new RunError(
              "auth",
              `token endpoint ${this.plan.tokenUrl} answered ${res.status}; it asked to wait ${formatDuration(ra)} (Retry-After: ${res.headers["retry-after"]}), longer than retry.max_delay ${formatDuration(retry.maxDelayMs)}`,
            );
          }
          await sleep(ra ?? Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1)), signal);
          continue;
        }
        return res;
      } catch (err) {
        if (err instanceof RunError) throw err;
        if (!(err instanceof TransportError) || !err.retryable || attempt >= retry.maxAttempts) {
          throw new RunError(
            "auth",
            `token endpoint ${this.plan.tokenUrl} failed after ${attempt} attempt(s): ${(err as Error).message}`,
          );
        }
        await sleep(Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1)), signal);
      }
    }
  }
}
