// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files and project configs use `${…}` templates
/**
 * OAuth2 across workers: three real workers share one token through Redis. The token endpoint
 * rotates refresh tokens (the previous one is revoked: invalid_grant) and the API expires every
 * access token twice mid-run: exactly one token request at the start and one per expiry, never
 * a revoked refresh token, and no token or refresh token in clear in Redis or in the workers' output.
 * New workers of a later run start from the latest refresh token kept (encrypted) in Redis.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import {
  closeServer,
  FAN_OUT_STREAMS,
  listenLocal,
  runPipeline,
  sourceBlock,
  tempProject,
} from "../run/helpers.js";
import { redisUrl, startWorkers, type WorkerProcess, writeQueueConfig } from "./helpers.js";

const PARENTS = 30;
const INITIAL_RT = "rt-initial-0b5e1d";
const EXPIRE_AT = [8, 18]; // data requests after which every access token expires

let server: Server;
let base: string;
const api = {
  validAccess: new Set<string>(),
  refresh: INITIAL_RT,
  issued: [] as string[],
  tokenCalls: 0,
  invalidGrants: 0,
  dataOk: 0,
  unauthorized: 0,
};

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    req.on("data", (c: Buffer) => (text += c.toString()));
    req.on("end", () => resolve(text));
  });
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(value));
}

async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
  api.tokenCalls++;
  const form = new URLSearchParams(await body(req));
  if (form.get("grant_type") !== "refresh_token" || form.get("refresh_token") !== api.refresh) {
    api.invalidGrants++;
    return json(res, 400, { error: "invalid_grant", error_description: "refresh token revoked" });
  }
  const access = `at-${randomBytes(9).toString("hex")}`;
  api.refresh = `rt-${randomBytes(9).toString("hex")}`;
  api.issued.push(access, api.refresh);
  api.validAccess.add(access);
  json(res, 200, {
    access_token: access,
    token_type: "Bearer",
    expires_in: 3600,
    refresh_token: api.refresh,
  });
}

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/oauth/token") return void token(req, res);
    const bearer = (req.headers.authorization ?? "").replace(/^Bearer /, "");
    if (!api.validAccess.has(bearer)) {
      api.unauthorized++;
      return json(res, 401, { error: "invalid_token" });
    }
    if (url.pathname === "/orgs")
      return json(res, 200, { data: Array.from({ length: PARENTS }, (_, i) => ({ id: i + 1 })) });
    const org = Number(/^\/orgs\/(\d+)/.exec(url.pathname)?.[1]);
    setTimeout(() => {
      json(res, 200, { data: [{ id: org }] });
      if (EXPIRE_AT.includes(++api.dataOk)) api.validAccess.clear();
    }, 20);
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(() => closeServer(server));

/** Every value stored under `prefix` in Redis (strings, hashes, lists, sets, sorted sets). */
async function storedText(redis: Redis, prefix: string): Promise<string> {
  const parts: string[] = [];
  for (const key of await redis.keys(`${prefix}:*`)) {
    const type = await redis.type(key);
    if (type === "string") parts.push((await redis.get(key)) ?? "");
    else if (type === "hash") parts.push(...Object.values(await redis.hgetall(key)));
    else if (type === "list") parts.push(...(await redis.lrange(key, 0, -1)));
    else if (type === "set") parts.push(...(await redis.smembers(key)));
    else if (type === "zset") parts.push(...(await redis.zrange(key, 0, -1)));
    else if (type === "stream") parts.push(JSON.stringify(await redis.xrange(key, "-", "+")));
  }
  return parts.join("\n");
}

it("three workers: one token request per expiry, no revoked refresh token used, no token in clear", async () => {
  const p = tempProject("pipelines-queue-oauth-");
  const workers: WorkerProcess[] = [];
  const redis = new Redis(redisUrl());
  try {
    p.pipeline(
      "p",
      [
        sourceBlock(
          base,
          [
            "concurrency: 2",
            "auth:",
            "  type: oauth2",
            `  token_url: ${base}/oauth/token`,
            "  grant_type: refresh_token",
            "  client_id: pipelines",
            '  refresh_token: "${env.RT}"',
          ].join("\n"),
        ),
        FAN_OUT_STREAMS,
      ].join("\n"),
    );
    writeQueueConfig(p.dir, "t-oauth");
    const env = { RT: INITIAL_RT };
    workers.push(...(await startWorkers(3, p.dir, ["--concurrency", "2"], env)));
    const r = await runPipeline(p.dir, "p", ["--queue"], { REDIS_URL: redisUrl(), ...env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("repos").records.written).toBe(PARENTS);
    expect(api.unauthorized).toBeGreaterThan(0); // the expiries did hit requests in flight
    expect(api.invalidGrants).toBe(0);
    expect(api.tokenCalls).toBe(1 + EXPIRE_AT.length);

    // New workers (nothing in memory), every access token expired: they refresh once, with the
    // latest refresh token kept in Redis, not the revoked one of their environment.
    const first = workers.splice(0);
    await Promise.all(first.map((w) => w.stop()));
    api.validAccess.clear();
    workers.push(...(await startWorkers(3, p.dir, ["--concurrency", "2"], env)));
    const again = await runPipeline(p.dir, "p", ["--queue"], { REDIS_URL: redisUrl(), ...env });
    expect(again.code, again.stderr).toBe(0);
    expect(api.invalidGrants).toBe(0);
    expect(api.tokenCalls).toBe(2 + EXPIRE_AT.length);

    // A local run of the same project (no --queue) shares the token too: it refreshes with the
    // latest refresh token (the workers' rotation, not its state's), and the workers of the next
    // queue run take the one it rotated, never the revoked one.
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    api.validAccess.clear();
    const local = await runPipeline(p.dir, "p", [], { REDIS_URL: redisUrl(), ...env });
    expect(local.code, local.stderr).toBe(0);
    expect(api.invalidGrants).toBe(0);
    expect(api.tokenCalls).toBe(3 + EXPIRE_AT.length);
    api.validAccess.clear();
    workers.push(...(await startWorkers(3, p.dir, ["--concurrency", "2"], env)));
    const third = await runPipeline(p.dir, "p", ["--queue"], { REDIS_URL: redisUrl(), ...env });
    expect(third.code, third.stderr).toBe(0);
    expect(api.invalidGrants).toBe(0);

    const stored = await storedText(redis, "t-oauth");
    const output = [
      r.stdout,
      r.stderr,
      again.stdout,
      again.stderr,
      local.stdout,
      local.stderr,
      third.stdout,
      third.stderr,
      ...[...first, ...workers].map((w) => w.stderr()),
    ].join("\n");
    for (const secret of [INITIAL_RT, ...api.issued]) {
      expect(stored).not.toContain(secret);
      expect(output).not.toContain(secret);
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    redis.disconnect();
    p.cleanup();
  }
}, 150_000);
