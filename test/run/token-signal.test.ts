/**
 * A request sequence stopped by its own signal (a cancelled queue job: the worker's session, and
 * its OAuth2 token, go on for its other jobs) does not wait for a token fetch, and a token fetch
 * that no sequence waits for any more is not retried: no token request leaves after the stop.
 * One that another sequence still waits for goes on, and that sequence gets its token.
 */
import { beforeEach, expect, it } from "vitest";
import { sourceBlock, streamSession, useLocalServer, useTempProject } from "./helpers.js";

let tokenRequests = 0;
let apiRequests = 0;
/** The token endpoint's first answers: 429 with this Retry-After (seconds); later ones a token. */
let retryAfter = "20";
let refusals = 1;
let onToken: () => void = () => {};

const api = useLocalServer((req, res) => {
  if (req.url?.startsWith("/oauth/token")) {
    tokenRequests++;
    onToken();
    if (tokenRequests <= refusals)
      return res.writeHead(429, { "retry-after": retryAfter, "content-type": "application/json" }).end("{}");
    return res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ access_token: "tok", token_type: "Bearer", expires_in: 3600 }));
  }
  apiRequests++;
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data: [{ id: 1 }] }));
});

const p = useTempProject("pipelines-token-signal-");
beforeEach(() => {
  tokenRequests = 0;
  apiRequests = 0;
  onToken = () => {};
});

/** Both streams' sequences on one session with no signal of its own (a worker's). */
function session() {
  const auth = `auth: { type: oauth2, token_url: "${api.url}/oauth/token", grant_type: client_credentials, client_id: id, client_secret: shh }`;
  // A long max_delay: a Retry-After of 20 s is waited out, not refused.
  const text = `${sourceBlock(api.url, auth).replace("max_delay: 2s", "max_delay: 60s")}
streams:
  a: { path: /a, records: $.data }
  b: { path: /b, records: $.data }
`;
  const session = streamSession(p.dir, text);
  return { start: (i: number, signal: AbortSignal) => session.start(i, { signal }), close: session.close };
}

const within = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

it("a sequence waiting for a token stops at its signal: the token request is not retried after it", async () => {
  retryAfter = "20";
  refusals = 1;
  const asked = new Promise<void>((resolve) => {
    onToken = resolve;
  });
  const s = session();
  const job = new AbortController();
  const { running, result } = s.start(0, job.signal);
  try {
    await asked;
    job.abort(new Error("the run was cancelled"));
    // Stopped at the signal, not after the 20 s the token endpoint asked for.
    expect(await within(running, 10_000)).toBe(true);
  } finally {
    await running;
    await s.close();
  }
  expect(result.status).toBe("failed");
  expect(result.error?.kind).toBe("aborted");
  expect(tokenRequests).toBe(1);
  expect(apiRequests).toBe(0);
});

it("a token fetch another sequence still waits for goes on: that one gets its token and its records", async () => {
  retryAfter = "1";
  refusals = 1;
  const asked = new Promise<void>((resolve) => {
    onToken = resolve;
  });
  const s = session();
  const cancelled = new AbortController();
  const a = s.start(0, cancelled.signal);
  const b = s.start(1, new AbortController().signal);
  try {
    await asked;
    cancelled.abort(new Error("the run was cancelled"));
    await Promise.all([a.running, b.running]);
  } finally {
    await s.close();
  }
  expect(a.result.error?.kind).toBe("aborted");
  expect(b.result.error).toBeNull();
  expect(b.result.status).toBe("ok");
  expect(tokenRequests).toBe(2);
  expect(apiRequests).toBe(1);
});
