/**
 * A worker's OAuth2 token (fetched once for its session, at its first job of the pipeline):
 * a job cancelled while it waits for that token stops at once (the token endpoint asked to wait
 * 20 s), and a first fetch that failed does not fail every later job of the worker (the next job
 * asks again) — the token endpoint was down a moment, not for good. A job of a run cancelled
 * before it started asks for no token.
 */
import { createServer, type Server } from "node:http";
import { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { loadProject } from "../../src/config/project.js";
import { UnitRunner } from "../../src/queue/worker.js";
import { closeServer, listenLocal, sourceBlock, tempProject } from "../run/helpers.js";
import { redisUrl, streamJobs } from "./helpers.js";

const PREFIX = "t-worker-auth";
let server: Server;
let base: string;
let redis: Redis;
/** The token endpoint's answers, in order (then a token). */
let tokenAnswers: { status: number; headers?: Record<string, string> }[] = [];
let tokenRequests = 0;
let apiRequests = 0;
let onToken: () => void = () => {};

beforeAll(async () => {
  server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.url?.startsWith("/oauth/token")) {
      tokenRequests++;
      onToken();
      const next = tokenAnswers.shift();
      if (next) return res.writeHead(next.status, next.headers).end('{"error":"temporarily_unavailable"}');
      return res.end(JSON.stringify({ access_token: "tok", token_type: "Bearer", expires_in: 3600 }));
    }
    apiRequests++;
    res.end(JSON.stringify({ data: [{ id: 1 }, { id: 2 }] }));
  });
  base = await listenLocal(server);
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  redis.disconnect();
  await closeServer(server);
});
beforeEach(() => {
  tokenRequests = 0;
  apiRequests = 0;
  onToken = () => {};
});

async function worker(name: string) {
  const p = tempProject("pipelines-worker-auth-");
  const auth = `auth: { type: oauth2, token_url: "${base}/oauth/token", grant_type: client_credentials, client_id: id, client_secret: shh }`;
  p.pipeline(
    "p",
    [
      sourceBlock(base, auth).replace("max_delay: 2s", "max_delay: 60s"),
      "streams:",
      "  items: { path: /items, records: $.data }",
      "",
    ].join("\n"),
  );
  const project = await loadProject(p.dir);
  const runner = new UnitRunner(project, {}, [], { redis, prefix: `${PREFIX}-${name}` });
  const job = await streamJobs(project, "items", `${PREFIX}-${name}`);
  const close = async () => {
    await runner.close();
    p.cleanup();
  };
  return { runner, job, close };
}

it("a job cancelled while the worker waits for its first token stops at once", async () => {
  tokenAnswers = [{ status: 429, headers: { "retry-after": "20" } }];
  const w = await worker("wait");
  const asked = new Promise<void>((resolve) => {
    onToken = resolve;
  });
  try {
    const job = new AbortController();
    const running = w.runner.process(w.job(0), job.signal);
    await asked;
    job.abort(new Error("the run was cancelled"));
    const ended = await Promise.race([
      running.then((o) => o.error?.kind),
      new Promise((r) => setTimeout(() => r("still waiting for the token"), 10_000)),
    ]);
    expect(ended).toBe("aborted");
    expect(apiRequests).toBe(0);
  } finally {
    tokenAnswers = [];
    await w.close();
  }
});

it("a first token fetch that failed is tried again by the worker's next job", async () => {
  tokenAnswers = [{ status: 400 }];
  const w = await worker("again");
  try {
    const first = await w.runner.process(w.job(0), new AbortController().signal);
    expect(first.error?.kind).toBe("auth");
    const next = await w.runner.process(w.job(1), new AbortController().signal);
    expect(next.error).toBe(null);
    expect(next.rows).toBe(2);
    expect(tokenRequests).toBe(2);
  } finally {
    tokenAnswers = [];
    await w.close();
  }
});

it("a job of a run cancelled before it started sends nothing: no token request either", async () => {
  const w = await worker("refused");
  try {
    const cancelled = new AbortController();
    cancelled.abort(new Error("the run was cancelled"));
    const outcome = await w.runner.process(w.job(0), cancelled.signal);
    expect(outcome.error?.kind).toBe("aborted");
    // A token fetch started for it would reach the endpoint within milliseconds.
    await new Promise((r) => setTimeout(r, 500));
    expect(tokenRequests).toBe(0);
    expect(apiRequests).toBe(0);
  } finally {
    await w.close();
  }
});
