/**
 * The OAuth2 provider on its own, against a token endpoint on loopback: the token before the first
 * request, refresh ahead of expiry and after a 401, one refresh in flight, a rotated refresh token
 * saved, and token requests through the pipeline's retry policy.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { AuthPlan } from "../../../src/compile/plan.js";
import { OAuth2Auth } from "../../../src/http/auth/oauth2.js";
import { HttpClient } from "../../../src/http/client.js";
import { RateBudget, type RequestBudget, SEND_MARGIN_MS } from "../../../src/http/rate-budget.js";
import { newRequestStats } from "../../../src/http/request-stats.js";
import { RetryPolicy } from "../../../src/http/retry-policy.js";
import { RunError } from "../../../src/shared/errors.js";
import { Redactor } from "../../../src/shared/secrets.js";
import { StateStore } from "../../../src/state/state-store.js";
import { closeServer, listenLocal } from "../../run/helpers.js";

type OAuth2Plan = Extract<AuthPlan, { type: "oauth2" }>;

let server: Server;
let tokenUrl: string;
/** What the endpoint answers next (a queue), then a default. */
let script: { status: number; body: unknown; headers?: Record<string, string> }[] = [];
let forms: URLSearchParams[] = [];
let issued = 0;
/** Called as the endpoint answers (a test moves its fake clock there). */
let onToken: (() => void) | null = null;

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => {
      forms.push(new URLSearchParams(text));
      onToken?.();
      const next = script.shift() ?? {
        status: 200,
        body: { access_token: `tok-${++issued}`, expires_in: 3600, refresh_token: `rt-${issued}` },
      };
      res.writeHead(next.status, { "content-type": "application/json", ...next.headers });
      // Slow enough that concurrent callers overlap.
      setTimeout(() => res.end(JSON.stringify(next.body)), 20);
    });
  });
  tokenUrl = `${await listenLocal(server)}/oauth/token`;
});
afterAll(() => closeServer(server));

let dir: string;
let client: HttpClient;
afterEach(async () => {
  await client?.close();
  client = undefined as unknown as HttpClient;
  if (dir) rmSync(dir, { recursive: true, force: true });
  script = [];
  forms = [];
  issued = 0;
  onToken = null;
});

function provider(
  over: Partial<OAuth2Plan> = {},
  now: () => number = Date.now,
  sameDir = false,
  budget: { origin: string; budget: RequestBudget } | null = null,
) {
  if (!sameDir) dir = mkdtempSync(path.join(tmpdir(), "oauth2-unit-"));
  client ??= new HttpClient({ timeoutMs: 5000, maxResponseBytes: 1 << 20, connections: 4, userAgent: "t" });
  const plan: OAuth2Plan = {
    type: "oauth2",
    grantType: "refresh_token",
    tokenUrl,
    clientId: "cid",
    clientSecret: "csecret",
    clientAuth: "body",
    refreshToken: "rt-0",
    scope: null,
    refreshBeforeMs: 60_000,
    ...over,
  } as OAuth2Plan;
  // As the loader does: the credentials written in the pipeline are known secrets.
  const redactor = new Redactor(["csecret", "rt-0"]);
  const state = new StateStore(dir, "p");
  const policy = new RetryPolicy(
    { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 50, onStatus: [429, 503] },
    null,
    () => 0,
  );
  const auth = new OAuth2Auth(plan, { client, redactor, policy, state, now, budget });
  return { auth, redactor, state };
}

const req = { method: "GET" as const, url: "https://api.test/x", headers: {} };

describe("OAuth2Auth", () => {
  it("fetches a token first and puts it on requests; the token is masked from then on", async () => {
    const { auth, redactor } = provider();
    await auth.start();
    const sent = await auth.apply(req);
    expect(sent.headers.authorization).toBe("Bearer tok-1");
    expect(redactor.text("x tok-1 y")).not.toContain("tok-1");
    expect(forms[0].get("grant_type")).toBe("refresh_token");
    expect(forms[0].get("refresh_token")).toBe("rt-0");
  });

  it("refreshes ahead of expiry (refresh_before), not before", async () => {
    let t = 1_000_000;
    const { auth } = provider({}, () => t);
    await auth.start();
    t += 3600_000 - 60_000 - 1;
    expect((await auth.apply(req)).headers.authorization).toBe("Bearer tok-1");
    t += 2;
    expect((await auth.apply(req)).headers.authorization).toBe("Bearer tok-2");
  });

  it("saves a rotated refresh token and uses it for the next refresh and the next run", async () => {
    const { auth, state } = provider();
    await auth.start();
    expect((await state.read()).auth?.refresh_token).toBe("rt-1");
    await auth.refresh(undefined, await auth.apply(req));
    expect(forms[1].get("refresh_token")).toBe("rt-1");
    // The next run, on the same state folder, starts from the saved refresh token.
    await provider({}, Date.now, true).auth.start();
    expect(forms.at(-1)?.get("refresh_token")).toBe("rt-2");
  });

  it("many requests failing with 401 at once make one refresh", async () => {
    const { auth } = provider();
    await auth.start();
    const used = await auth.apply(req);
    await Promise.all(Array.from({ length: 8 }, () => auth.refresh(undefined, used)));
    expect(forms).toHaveLength(2);
    expect((await auth.apply(req)).headers.authorization).toBe("Bearer tok-2");
  });

  it("a token request to the API's origin takes a slot of its rate budget, counted from its write", async () => {
    const clock = { now: 0, sleeps: [] as number[] };
    const rates = { perSecond: 1, perMinute: null, perHour: null, perDay: null };
    const budget = new RateBudget(
      { ...rates, remainingHeader: null, resetHeader: null },
      () => clock.now,
      async (ms) => {
        clock.sleeps.push(ms);
        clock.now += ms;
      },
    );
    onToken = () => {
      clock.now += 300; // the endpoint answers 300 ms after the request left
    };
    const { auth } = provider({}, Date.now, false, { origin: new URL(tokenUrl).origin, budget });
    await auth.start();
    // The API's next request: a second (and the margin) after the token request was written at
    // 0, not after its answer at 300.
    await budget.acquire();
    expect(clock.sleeps).toEqual([700 + SEND_MARGIN_MS]);
  });

  it("a token endpoint on another origin than the API's takes no slot", async () => {
    const budget = new RateBudget({
      perSecond: 1,
      perMinute: null,
      perHour: null,
      perDay: null,
      remainingHeader: null,
      resetHeader: null,
    });
    const { auth } = provider({}, Date.now, false, { origin: "https://api.test", budget });
    await auth.start();
    expect(await budget.acquire()).toBe(0);
  });

  it("token requests go through the retry policy and are counted as token_<cause>", async () => {
    script = [
      { status: 503, body: { error: "unavailable" } },
      { status: 429, body: {}, headers: { "retry-after": "0" } },
    ];
    const { auth } = provider();
    const stats = newRequestStats();
    const sent = await auth.apply(req, undefined, stats);
    expect(sent.headers.authorization).toBe("Bearer tok-1");
    expect(stats.retries).toEqual({ token_status_503: 1, token_rate_limited: 1 });
    // Two retries of one cause count 2.
    script = [
      { status: 503, body: {} },
      { status: 503, body: {} },
    ];
    const again = newRequestStats();
    await auth.refresh(undefined, undefined, again);
    expect(again.retries).toEqual({ token_status_503: 2 });
  });

  it("a Retry-After longer than max_delay fails at once, saying how long it asked", async () => {
    script = [{ status: 429, body: {}, headers: { "retry-after": "120" } }];
    const { auth } = provider();
    await expect(auth.start()).rejects.toThrow(/asked to wait 2m.*longer than retry\.max_delay/);
    expect(forms).toHaveLength(1);
  });

  it("an interruption while the token request is on the wire ends it as `aborted`", async () => {
    const { auth } = provider();
    const stop = new AbortController();
    onToken = () => stop.abort(); // the endpoint has the request; its answer comes 20 ms later
    const err = await auth.start(stop.signal).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RunError);
    expect(err).toMatchObject({ kind: "aborted", message: "the run was interrupted" });
  });

  it("a refresh_token request on the wire at the interruption is read to its end: the rotated refresh token is saved", async () => {
    const { auth, state } = provider();
    const stop = new AbortController();
    onToken = () => stop.abort(); // the endpoint has the request (and rotated rt-0 away)
    await expect(auth.start(stop.signal)).rejects.toMatchObject({ kind: "aborted" });
    // The run stops at once; the answer still comes, and rt-0 is no longer valid at the endpoint.
    await vi.waitFor(async () => expect((await state.read()).auth?.refresh_token).toBe("rt-1"), {
      timeout: 5000,
    });
    expect(forms).toHaveLength(1);
  });

  it("an interruption in the backoff before a retry of the token request ends it as `aborted`", async () => {
    script = [{ status: 503, body: {}, headers: { "retry-after": "0.04" } }];
    const { auth } = provider();
    const stop = new AbortController();
    // The retry is counted just before the backoff starts: interrupt the run right there.
    const stats = newRequestStats();
    stats.retries = new Proxy(stats.retries, {
      set(target, key, value) {
        target[key as string] = value;
        stop.abort();
        return true;
      },
    });
    const err = await auth.start(stop.signal, stats).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RunError);
    expect(err).toMatchObject({ kind: "aborted", message: "the run was interrupted" });
    expect(forms).toHaveLength(1); // no retry was sent
  });

  it("an error from the endpoint is an auth error naming it, the secrets masked", async () => {
    script = [{ status: 400, body: { error: "invalid_grant", error_description: "bad rt-0 for csecret" } }];
    const { auth } = provider();
    const err = await auth.start().then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/token endpoint answered 400 invalid_grant/);
    expect(err?.message).not.toContain("csecret");
  });
});
