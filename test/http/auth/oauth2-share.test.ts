/**
 * OAuth2Auth with a TokenShare (the workers of a queue run share one token): one token request
 * however many providers share it, one refresh under the share's lock while the others wait and
 * adopt its token, the latest refresh token taken from the share, and the state file left alone.
 * The share here is in memory; the token endpoint is a real server on loopback.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AuthPlan } from "../../../src/compile/plan.js";
import { OAuth2Auth } from "../../../src/http/auth/oauth2.js";
import type { SharedToken, TokenShare } from "../../../src/http/auth/token-share.js";
import { HttpClient } from "../../../src/http/client.js";
import { RetryPolicy } from "../../../src/http/retry-policy.js";
import { RunError } from "../../../src/shared/errors.js";
import { Redactor } from "../../../src/shared/secrets.js";
import { StateStore } from "../../../src/state/state-store.js";
import { closeServer, listenLocal } from "../../run/helpers.js";

type OAuth2Plan = Extract<AuthPlan, { type: "oauth2" }>;

/** A TokenShare in memory, as redis-tokens.ts is across processes. */
class MemoryShare implements TokenShare {
  token: SharedToken | null = null;
  locked = false;
  reads = 0;
  writes: SharedToken[] = [];
  /** Called on each read (a test writes the other process's token there). */
  onRead: ((reads: number) => void) | null = null;
  /** Called when a lock is granted, before it is returned (another process wrote just before). */
  onLocked: (() => void) | null = null;

  async read(): Promise<SharedToken | null> {
    this.reads++;
    this.onRead?.(this.reads);
    return this.token && { ...this.token };
  }
  async lock(): Promise<{ release(): Promise<void> } | null> {
    if (this.locked) return null;
    this.locked = true;
    this.onLocked?.();
    return {
      release: async () => {
        this.locked = false;
      },
    };
  }
  async write(token: SharedToken): Promise<void> {
    this.writes.push({ ...token });
    this.token = { ...token };
  }
}

let server: Server;
let tokenUrl: string;
let script: { status: number; body: unknown }[] = [];
let forms: URLSearchParams[] = [];
let issued = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => {
      forms.push(new URLSearchParams(text));
      const next = script.shift() ?? {
        status: 200,
        body: { access_token: `tok-${++issued}`, expires_in: 3600, refresh_token: `rt-${issued}` },
      };
      res.writeHead(next.status, { "content-type": "application/json" });
      // Slow enough that the other provider finds the lock taken.
      setTimeout(() => res.end(JSON.stringify(next.body)), 20);
    });
  });
  tokenUrl = `${await listenLocal(server)}/oauth/token`;
});
afterAll(() => closeServer(server));

let dir: string | null = null;
let client: HttpClient | null = null;
afterEach(async () => {
  await client?.close();
  client = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
  script = [];
  forms = [];
  issued = 0;
});

function provider(share: TokenShare | null, now: () => number = Date.now) {
  dir ??= mkdtempSync(path.join(tmpdir(), "oauth2-share-"));
  client ??= new HttpClient({ timeoutMs: 5000, maxResponseBytes: 1 << 20, connections: 4, userAgent: "t" });
  const plan = {
    type: "oauth2",
    grantType: "refresh_token",
    tokenUrl,
    clientId: "cid",
    clientSecret: "csecret",
    clientAuth: "body",
    refreshToken: "rt-0",
    scope: null,
    refreshBeforeMs: 60_000,
  } as OAuth2Plan;
  const redactor = new Redactor(["csecret", "rt-0"]);
  const state = new StateStore(dir, "p");
  const policy = new RetryPolicy(
    { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 50, onStatus: [429, 503] },
    null,
    () => 0,
  );
  const auth = new OAuth2Auth(plan, { client, redactor, policy, state, share, now });
  return { auth, redactor, state };
}

const req = { method: "GET" as const, url: "https://api.test/x", headers: {} };
const bearer = async (auth: OAuth2Auth) => (await auth.apply(req)).headers.authorization;

describe("OAuth2Auth with a TokenShare", () => {
  it("two providers sharing one share make one token request and use the same token", async () => {
    const share = new MemoryShare();
    const a = provider(share);
    const b = provider(share);
    await Promise.all([a.auth.start(), b.auth.start()]);
    expect(forms).toHaveLength(1);
    expect(await bearer(a.auth)).toBe("Bearer tok-1");
    expect(await bearer(b.auth)).toBe("Bearer tok-1");
    // The one that asked wrote the token and the refresh token to use next, then let the lock go.
    expect(share.writes).toEqual([{ value: "tok-1", refreshAt: expect.any(Number), refreshToken: "rt-1" }]);
    expect(share.locked).toBe(false);
    // The one that adopted it masks it too.
    expect(b.redactor.text("x tok-1 y")).not.toContain("tok-1");
  });

  it("a token past its refresh time: one refresh under the lock, the other waits and adopts it", async () => {
    let t = 1_000_000;
    const share = new MemoryShare();
    const a = provider(share, () => t);
    const b = provider(share, () => t);
    await a.auth.start();
    await b.auth.start();
    expect(forms).toHaveLength(1);
    t += 3600_000;
    const [ua, ub] = await Promise.all([bearer(a.auth), bearer(b.auth)]);
    expect(forms).toHaveLength(2);
    expect(forms[1].get("refresh_token")).toBe("rt-1");
    expect([ua, ub]).toEqual(["Bearer tok-2", "Bearer tok-2"]);
  });

  it("after a 401, the provider whose token failed refreshes; the other, failing with the same token, adopts the new one", async () => {
    const share = new MemoryShare();
    const a = provider(share);
    const b = provider(share);
    await a.auth.start();
    await b.auth.start();
    const used = await a.auth.apply(req);
    // The shared token is the one that failed: it is not taken again, a new one is asked for.
    await a.auth.refresh(undefined, used);
    expect(forms).toHaveLength(2);
    expect(await bearer(a.auth)).toBe("Bearer tok-2");
    await b.auth.refresh(undefined, await b.auth.apply(req));
    expect(forms).toHaveLength(2);
    expect(await bearer(b.auth)).toBe("Bearer tok-2");
  });

  it("takes the rotated refresh token from the share, masks it, sends it next, and leaves the state file alone", async () => {
    const share = new MemoryShare();
    share.token = { value: null, refreshAt: null, refreshToken: "rt-rotated-elsewhere" };
    const { auth, redactor, state } = provider(share);
    await auth.start();
    expect(forms).toHaveLength(1);
    expect(forms[0].get("refresh_token")).toBe("rt-rotated-elsewhere");
    expect(redactor.text("x rt-rotated-elsewhere y")).not.toContain("rt-rotated-elsewhere");
    expect(await bearer(auth)).toBe("Bearer tok-1");
    // The endpoint rotated it again: the share keeps it, the state file does not.
    expect(share.token).toMatchObject({ value: "tok-1", refreshToken: "rt-1" });
    expect((await state.read()).auth?.refresh_token).toBeUndefined();
    await auth.refresh(undefined, await auth.apply(req));
    expect(forms[1].get("refresh_token")).toBe("rt-1");
    expect((await state.read()).auth?.refresh_token).toBeUndefined();
  });

  it("without a share, the same rotation is saved to the state file (the contrast)", async () => {
    const { auth, state } = provider(null);
    await auth.start();
    expect((await state.read()).auth?.refresh_token).toBe("rt-1");
  });

  it("the lock held by another process: polls the share until its token is there, then adopts it", async () => {
    const share = new MemoryShare();
    share.locked = true;
    share.onRead = (reads) => {
      // The other process finishes its refresh after this one has looked a few times.
      if (reads === 4) share.token = { value: "tok-other", refreshAt: null, refreshToken: "rt-other" };
    };
    const { auth, redactor } = provider(share);
    await auth.start();
    expect(forms).toHaveLength(0);
    expect(share.reads).toBe(4);
    expect(await bearer(auth)).toBe("Bearer tok-other");
    expect(redactor.text("tok-other rt-other")).not.toMatch(/tok-other|rt-other/);
  });

  it("a token written between its read and its lock is taken, not asked for again", async () => {
    const share = new MemoryShare();
    share.onLocked = () => {
      share.token = { value: "tok-just-written", refreshAt: null, refreshToken: null };
    };
    const { auth } = provider(share);
    await auth.start();
    expect(forms).toHaveLength(0);
    expect(share.writes).toHaveLength(0);
    expect(share.locked).toBe(false);
    expect(await bearer(auth)).toBe("Bearer tok-just-written");
  });

  it("a shared token is taken until its refresh time, not at it", async () => {
    let t = 5_000_000;
    const share = new MemoryShare();
    share.token = { value: "tok-shared", refreshAt: t + 1, refreshToken: null };
    const early = provider(share, () => t);
    await early.auth.start();
    expect(forms).toHaveLength(0);
    expect(await bearer(early.auth)).toBe("Bearer tok-shared");
    t += 1;
    share.token = { value: "tok-shared", refreshAt: t, refreshToken: null };
    const late = provider(share, () => t);
    await late.auth.start();
    expect(forms).toHaveLength(1);
    expect(await bearer(late.auth)).toBe("Bearer tok-1");
  });

  it("a failed token request under the lock lets the lock go and writes nothing", async () => {
    const share = new MemoryShare();
    script = [{ status: 400, body: { error: "invalid_grant" } }];
    const { auth } = provider(share);
    const err = await auth.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunError);
    expect((err as RunError).kind).toBe("auth");
    expect(share.locked).toBe(false);
    expect(share.writes).toHaveLength(0);
    // The next request asks again (nothing was kept of the failure).
    await auth.start();
    expect(await bearer(auth)).toBe("Bearer tok-1");
  });

  it("an interruption while waiting for another process's token ends as `aborted`", async () => {
    const share = new MemoryShare();
    share.locked = true;
    const ac = new AbortController();
    share.onRead = (reads) => {
      if (reads === 3) ac.abort();
    };
    const { auth } = provider(share);
    const err = await auth.start(ac.signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunError);
    expect((err as RunError).kind).toBe("aborted");
    expect(forms).toHaveLength(0);
  });
});
