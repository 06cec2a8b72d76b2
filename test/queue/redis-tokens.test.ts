/**
 * The OAuth2 token share (src/queue/redis-tokens.ts) on the throwaway Redis: what is stored is
 * ciphertext, readable only with the pipeline's own OAuth2 secrets; the access token expires
 * when it is due for refresh.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { AuthPlan } from "../../src/compile/plan.js";
import { redisTokenShare } from "../../src/queue/redis-tokens.js";
import { redisUrl } from "./helpers.js";

let redis: Redis;
beforeAll(() => {
  redis = new Redis(redisUrl());
});
afterAll(() => redis.disconnect());

const plan = (clientSecret: string | null, refreshToken: string | null): AuthPlan => ({
  type: "oauth2",
  tokenUrl: "https://auth.example/token",
  grantType: "refresh_token",
  clientId: "c",
  clientSecret,
  refreshToken,
  scope: null,
  clientAuth: "body",
  refreshBeforeMs: 60_000,
});

it("stores ciphertext that only the same secrets read back", async () => {
  const base = "t-tokens:auth:p";
  const share = redisTokenShare(redis, base, plan("s3cret-A", "rt-config"));
  expect(share).not.toBeNull();
  const refreshAt = Date.now() + 60_000;
  await share!.write({ value: "at-plain-123", refreshAt, refreshToken: "rt-rotated-456" });
  expect(await share!.read()).toEqual({ value: "at-plain-123", refreshAt, refreshToken: "rt-rotated-456" });

  const stored = (await redis.mget(`${base}:token`, `${base}:refresh-token`)).join("\n");
  expect(stored).not.toContain("at-plain-123");
  expect(stored).not.toContain("rt-rotated-456");
  const ttl = await redis.pttl(`${base}:token`);
  expect(ttl).toBeGreaterThan(0);
  expect(ttl).toBeLessThanOrEqual(60_000);

  // Another client secret: nothing readable, a new token is fetched.
  expect(await redisTokenShare(redis, base, plan("s3cret-B", "rt-config"))!.read()).toBeNull();
});

it("does not share without a secret to derive the key from", () => {
  expect(redisTokenShare(redis, "t-tokens:auth:q", plan(null, null))).toBeNull();
  expect(redisTokenShare(redis, "t-tokens:auth:q", { type: "none" } as AuthPlan)).toBeNull();
});
