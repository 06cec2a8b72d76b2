/**
 * The saved state in Redis never holds a refresh token in clear (src/queue/redis-state.ts): a
 * state file from before the project had a queue may hold one; the first update copies the
 * positions to Redis without it, and `seedTokenShare` hands it to the sealed token share
 * instead (unless the share has a later one).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { AuthPlan } from "../../src/compile/plan.js";
import { RedisStateStore } from "../../src/queue/redis-state.js";
import { redisTokenShare, seedTokenShare } from "../../src/queue/redis-tokens.js";
import { redisUrl } from "./helpers.js";

const SAVED = "rt-from-the-state-file-5b1c";
let redis: Redis;
let dir: string;

beforeAll(() => {
  redis = new Redis(redisUrl());
  dir = mkdtempSync(path.join(tmpdir(), "pipelines-redis-state-"));
  writeFileSync(
    path.join(dir, "p.json"),
    JSON.stringify({ version: 1, streams: { s: { cursor: "2024-01-01" } }, auth: { refresh_token: SAVED } }),
  );
});
afterAll(() => {
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

const plan = {
  type: "oauth2",
  tokenUrl: "http://127.0.0.1:1/token",
  clientId: "c",
  clientSecret: "client-secret-9f",
  refreshToken: null,
  grantType: "refresh_token",
} as unknown as AuthPlan;

it("copies the positions to Redis, never the refresh token; the token goes to the sealed share", async () => {
  const store = new RedisStateStore(dir, "p", redis, "t-rstate");
  const before = await store.read();
  expect(before.auth?.refresh_token).toBe(SAVED); // read from the file: Redis had nothing
  await store.update((s) => ({ ...s, streams: { s: { cursor: "2024-02-01" } } }));
  const stored = (await redis.get(store.key)) ?? "";
  expect(JSON.parse(stored).streams.s.cursor).toBe("2024-02-01");
  expect(stored).not.toContain(SAVED);
  expect(JSON.parse(stored).auth).toBeUndefined();

  const share = redisTokenShare(redis, "t-rstate:auth:p", plan);
  await seedTokenShare(share, before.auth?.refresh_token);
  expect((await share!.read())?.refreshToken).toBe(SAVED);
  for (const key of await redis.keys("t-rstate:*")) expect(await redis.get(key)).not.toContain(SAVED);

  // A later token in the share is the latest: an older one from a state file never replaces it.
  await share!.write({ value: null, refreshAt: null, refreshToken: "rt-rotated-later" });
  await seedTokenShare(share, SAVED);
  expect((await share!.read())?.refreshToken).toBe("rt-rotated-later");
});
