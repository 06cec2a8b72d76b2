/**
 * The shared budget (src/queue/redis-budget.ts) on the throwaway Redis: a slot counts from the
 * response. The request reached the API at some time before it; counting from any earlier time
 * (e.g. "no later than 50 ms after the slot") lets a request delayed on its way — a handshake, a
 * token refresh, a stall — share a second at the API with the next window's requests.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { RateLimitPlan } from "../../src/compile/plan.js";
import { RedisRateBudget } from "../../src/queue/redis-budget.js";
import { sleep } from "../../src/shared/sleep.js";
import { redisUrl } from "./helpers.js";

let redis: Redis;
beforeAll(() => {
  redis = new Redis(redisUrl());
});
afterAll(() => redis.disconnect());

const plan: RateLimitPlan = {
  perSecond: 1,
  perMinute: null,
  perHour: null,
  perDay: null,
  remainingHeader: null,
  resetHeader: null,
};

const redisNow = async () => {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
};

it("a slow response moves its slot to the response time", async () => {
  const budget = new RedisRateBudget(redis, "t-slot:budget:p", plan);
  const before = await redisNow();
  const { done } = await budget.begin();
  await sleep(400); // the API takes 400 ms to answer
  done();
  const [key] = await redis.keys("t-slot:budget:p:w*");
  const [, score] = await redis.zrange(key, 0, 0, "WITHSCORES");
  expect(Number(score)).toBeGreaterThanOrEqual(before + 400);
});
