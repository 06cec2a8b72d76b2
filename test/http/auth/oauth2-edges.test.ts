/**
 * OAuth2Auth edges found by mutation testing (docs/mutation.md): what a token request carries
 * for each grant and client auth, which answers are errors, token lifetimes, and and the failure messages.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AuthPlan } from "../../../src/compile/plan.js";
import { OAuth2Auth } from "../../../src/http/auth/oauth2.js";
import { HttpClient } from "../../../src/http/client.js";
import { RetryPolicy } from "../../../src/http/retry-policy.js";
import type { RunError } from "../../../src/shared/errors.js";
import { Redactor } from "../../../src/shared/secrets.js";
import { StateStore } from "../../../src/state/state-store.js";
import { closeServer, listenLocal } from "../../run/helpers.js";

type OAuth2Plan = Extract<AuthPlan, { type: "oauth2" }>;

let server: Server;
let base: string;
let script: { status: number; body: unknown; raw?: string }[] = [];
let seen: { form: URLSearchParams; headers: IncomingHttpHeaders }[] = [];
let issued = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => {
      seen.push({ form: new URLSearchParams(text), headers: req.headers });
      const next = script.shift() ?? { status: 200, body: { access_token: `tok-${++issued}` } };
      res.writeHead(next.status, { "content-type": "application/json" });
      res.end(next.raw ?? JSON.stringify(next.body));
    });
  });
  base = await listenLocal(server);
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
  seen = [];
  issued = 0;
});

function provider(over: Partial<OAuth2Plan> = {}, opts: { now?: () => number; state?: boolean } = {}) {
  client ??= new HttpClient({ timeoutMs: 5000, maxResponseBytes: 1 << 20, connections: 4, userAgent: "t" });
  const plan = {
    type: "oauth2",
    grantType: "client_credentials",
    tokenUrl: `${base}/token`,
    clientId: "cid",
    clientSecret: "csecret",
    clientAuth: "body",
    refreshToken: null,
    scope: null,
    refreshBeforeMs: 60_000,
    ...over,
  } as OAuth2Plan;
  const redactor = new Redactor(["csecret"]);
  let state: StateStore | null = null;
  if (opts.state) {
    dir = mkdtempSync(path.join(tmpdir(), "oauth2-edges-"));
    state = new StateStore(dir, "p");
  }
  const policy = new RetryPolicy(
    { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 50, onStatus: [503] },
    null,
    () => 0,
  );
  const auth = new OAuth2Auth(plan, { client, redactor, policy, state, now: opts.now });
  return { auth, redactor, state };
}

const req = { method: "GET" as const, url: "https://api.test/x", headers: {} };
const failure = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: RunError) => e,
  );

describe("what a token request carries", () => {
  it("client_credentials, client auth in the body: grant, client id and secret, scope; form and JSON headers", async () => {
    const { auth } = provider({ scope: "read write" });
    await auth.start();
    const [{ form, headers }] = seen;
    expect(Object.fromEntries(form)).toEqual({
      grant_type: "client_credentials",
      client_id: "cid",
      client_secret: "csecret",
      scope: "read write",
    });
    expect(headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(headers.accept).toBe("application/json");
    expect(headers.authorization).toBeUndefined();
    expect(auth.queryNames).toEqual([]);
  });

  it("client auth basic: base64(id:secret), URL-encoded first, in the header, masked; nothing in the form", async () => {
    const { auth, redactor } = provider({ clientAuth: "basic", clientId: "c id", clientSecret: "s:é" });
    await auth.start();
    const cred = Buffer.from(`${encodeURIComponent("c id")}:${encodeURIComponent("s:é")}`).toString("base64");
    expect(seen[0].headers.authorization).toBe(`Basic ${cred}`);
    expect(Object.fromEntries(seen[0].form)).toEqual({ grant_type: "client_credentials" });
    expect(redactor.text(`x ${cred}`)).toBe("x ***");
  });

  it("basic without a secret: id and an empty secret; body auth without a secret sends no client_secret", async () => {
    const a = provider({ clientAuth: "basic", clientSecret: null }).auth;
    await a.start();
    expect(seen[0].headers.authorization).toBe(`Basic ${Buffer.from("cid:").toString("base64")}`);
    const b = provider({ clientSecret: null }).auth;
    await b.start();
    expect(Object.fromEntries(seen[1].form)).toEqual({ grant_type: "client_credentials", client_id: "cid" });
  });

  it("no client id: neither a header nor client fields", async () => {
    const { auth } = provider({ clientId: null, clientSecret: null });
    await auth.start();
    expect(seen[0].headers.authorization).toBeUndefined();
    expect(Object.fromEntries(seen[0].form)).toEqual({ grant_type: "client_credentials" });
  });

  it("refresh_token grant without a refresh token sends an empty one; client_credentials never reads the state", async () => {
    const { auth } = provider({ grantType: "refresh_token", refreshToken: null });
    await auth.start();
    expect(seen[0].form.get("refresh_token")).toBe("");
    const { auth: cc, state, redactor: ccRedactor } = provider({}, { state: true });
    await state!.update((s) => ({ ...s, auth: { refresh_token: "saved-rt" } }));
    await cc.start();
    expect(seen[1].form.get("refresh_token")).toBeNull();
    // Not even read: the saved token is not learnt as a secret by a client_credentials run.
    expect(ccRedactor.text("saved-rt")).toBe("saved-rt");
  });

  it("a saved refresh token is masked from the start", async () => {
    const { auth, state, redactor } = provider(
      { grantType: "refresh_token", refreshToken: "rt-0" },
      { state: true },
    );
    await state!.update((s) => ({ ...s, auth: { refresh_token: "saved-rt" } }));
    await auth.start();
    expect(seen[0].form.get("refresh_token")).toBe("saved-rt");
    expect(redactor.text("saved-rt")).toBe("***");
  });

  it("a rotated refresh token is masked; the same one again is not saved", async () => {
    script = [{ status: 200, body: { access_token: "t1", refresh_token: "rt-new" } }];
    const { auth, redactor, state } = provider(
      { grantType: "refresh_token", refreshToken: "rt-0" },
      { state: true },
    );
    await auth.start();
    expect(redactor.text("rt-new")).toBe("***");
    expect((await state!.read()).auth?.refresh_token).toBe("rt-new");
    const { auth: same, state: s2 } = provider(
      { grantType: "refresh_token", refreshToken: "rt-0" },
      { state: true },
    );
    script = [{ status: 200, body: { access_token: "t1", refresh_token: "rt-0" } }];
    await same.start();
    expect((await s2!.read()).auth).toBeUndefined();
  });
});

describe("which answers are errors", () => {
  it("a 3xx or 1xx-like status with an access_token is an error; 2xx are fine", async () => {
    script = [{ status: 300, body: { access_token: "t" } }];
    const e = await failure(provider().auth.start());
    expect(e?.message).toBe('token endpoint answered 300 no access_token: {"access_token":"***"}');
    expect(e?.details).toEqual({ status: 300 });
    script = [{ status: 299, body: { access_token: "t299" } }];
    const { auth } = provider();
    await auth.start();
    expect((await auth.apply(req)).headers.authorization).toBe("Bearer t299");
  });

  it("a 200 without a string access_token is an error naming the endpoint's error", async () => {
    script = [{ status: 200, body: { access_token: 5, error: "weird" } }];
    const e = await failure(provider().auth.start());
    expect(e?.message).toBe('token endpoint answered 200 weird: {"access_token":5,"error":"weird"}');
  });

  it("an answer that is refused never quotes the tokens it holds (nested, or beside a wrong status)", async () => {
    script = [
      {
        status: 200,
        body: { data: { access_token: "nested-Access-77", refresh_token: "nested-Refresh-88" }, ok: true },
      },
    ];
    const e = await failure(provider().auth.start());
    expect(e?.message).toBe(
      'token endpoint answered 200 no access_token: {"data":{"access_token":"***","refresh_token":"***"},"ok":true}',
    );
    script = [{ status: 400, body: { access_token: "t4", id_token: "idt-Secret-99", token_type: "Bearer" } }];
    const e2 = await failure(provider().auth.start());
    expect(e2?.message).toBe(
      'token endpoint answered 400 no access_token: {"access_token":"***","id_token":"***","token_type":"Bearer"}',
    );
  });

  it("a form-encoded answer (some providers ignore Accept): its tokens are not quoted", async () => {
    script = [
      {
        status: 200,
        body: null,
        raw: "access_token=form-Access-123&refresh_token=form%2FRefresh-456&token_type=bearer",
      },
    ];
    const e = await failure(provider().auth.start());
    expect(e?.message).toBe(
      `token endpoint ${base}/token answered 200 with a body that is not JSON: access_token=***&refresh_token=***&token_type=bearer`,
    );
  });

  it("a body that is not JSON", async () => {
    script = [{ status: 200, body: null, raw: "<html>csecret</html>" }];
    const e = await failure(provider().auth.start());
    expect(e?.message).toBe(
      `token endpoint ${base}/token answered 200 with a body that is not JSON: <html>***</html>`,
    );
  });

  it("a refused connection fails after the policy's attempts, saying so", async () => {
    const { auth } = provider({ tokenUrl: "http://127.0.0.1:1/token" });
    const e = await failure(auth.start());
    expect(e?.kind).toBe("auth");
    expect(e?.message).toMatch(/^token endpoint http:\/\/127\.0\.0\.1:1\/token failed after 2 attempts: /);
  });
});

describe("token lifetimes", () => {
  it("no expires_in, 0, negative or text: the token is kept for the whole run", async () => {
    for (const expires_in of [undefined, 0, -5, "soon"]) {
      script = [{ status: 200, body: { access_token: "keep", expires_in } }];
      let t = 0;
      const { auth } = provider({}, { now: () => t });
      await auth.start();
      t = 10 * 365 * 86_400_000;
      expect((await auth.apply(req)).headers.authorization, String(expires_in)).toBe("Bearer keep");
    }
  });

  it("a short lifetime is refreshed at half of it when refresh_before is longer; at the moment itself, refreshed", async () => {
    script = [{ status: 200, body: { access_token: "short", expires_in: 60 } }];
    let t = 1_000;
    const { auth } = provider({ refreshBeforeMs: 120_000 }, { now: () => t });
    await auth.start();
    t += 29_999;
    expect((await auth.apply(req)).headers.authorization).toBe("Bearer short");
    t += 1;
    expect((await auth.apply(req)).headers.authorization).toBe("Bearer tok-1");
  });

  it("refresh after a 401: a request that used an older token just retries; the current one is replaced", async () => {
    const { auth } = provider();
    await auth.start();
    const old = await auth.apply(req);
    expect(await auth.refresh(undefined, old)).toBe(true);
    expect(seen).toHaveLength(2);
    // `old` carried tok-1, the current token is tok-2: no new token request.
    expect(await auth.refresh(undefined, old)).toBe(true);
    expect(seen).toHaveLength(2);
    expect(await auth.refresh(undefined, await auth.apply(req))).toBe(true);
    expect(seen).toHaveLength(3);
  });
});
