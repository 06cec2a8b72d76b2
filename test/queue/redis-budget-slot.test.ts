/**
 * The shared budget (src/queue/redis-budget.ts) on the throwaway Redis: a slot counts from the
 * moment its request is written on the socket (plus SEND_MARGIN_MS), and until then it counts
 * as taken at every moment (scored a lease ahead). Counting from when the slot was taken lets a
 * request delayed on its way to the socket (a handshake, a stall) share a second at the API with
 * the next window's requests; counting from the response wastes the API's response time of
 * every window.
 */
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import type { RateLimitPlan } from "../../src/compile/plan.js";
import { type RequestBudget, SEND_MARGIN_MS } from "../../src/http/rate-budget.js";
import { RedisRateBudget } from "../../src/queue/redis-budget.js";
import { sleep } from "../../src/shared/sleep.js";
import {
  busiestSecond,
  expectCountedFromTheWrite,
  type LogServer,
  logServer,
  sendAtFivePerSecond,
} from "../http/budget-session.js";
import { redisUrl } from "./helpers.js";

let redis: Redis;
beforeAll(() => {
  redis = new Redis(redisUrl());
});
afterAll(() => redis.disconnect());

let api: LogServer | null = null;
afterEach(async () => {
  await api?.close();
  api = null;
});

const plan = (perSecond: number): RateLimitPlan => ({
  perSecond,
  perMinute: null,
  perHour: null,
  perDay: null,
  remainingHeader: null,
  resetHeader: null,
});

const redisNow = async () => {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
};

const score = async (key: string) => Number((await redis.zrange(key, 0, 0, "WITHSCORES"))[1]);

it("a slot counts as not yet sent until done(), then from done() (Redis's clock) plus the margin", async () => {
  const budget = new RedisRateBudget(redis, "t-slot:budget:p", plan(1), 5000);
  const taken = await redisNow();
  const { done } = await budget.begin();
  const [key] = await redis.keys("t-slot:budget:p:w*");
  // Not yet written: it counts from the future (the request's timeout and a margin ahead).
  expect(await score(key)).toBeGreaterThanOrEqual(taken + 5000);
  await sleep(300); // a new connection: the request is written 300 ms after its slot
  const sent = await redisNow();
  done();
  while ((await score(key)) > sent + 5000) await sleep(5);
  const at = await score(key);
  expect(at).toBeGreaterThanOrEqual(sent + SEND_MARGIN_MS);
  expect(at).toBeLessThanOrEqual((await redisNow()) + SEND_MARGIN_MS);
  done(); // the response: changes nothing
  await sleep(50);
  expect(await score(key)).toBe(at);
});

it("a slot whose key expired before done() is added again with an expiry (no key left for ever)", async () => {
  const budget = new RedisRateBudget(redis, "t-slot:budget:gone", plan(1), 5000);
  const { done } = await budget.begin();
  const [key] = await redis.keys("t-slot:budget:gone:w*");
  await redis.del(key); // expired: a worker stalled longer than the lease and two windows
  done();
  while (!(await redis.exists(key))) await sleep(5);
  const ttl = await redis.pttl(key);
  expect(ttl).toBeGreaterThan(0);
  expect(ttl).toBeLessThanOrEqual(1000 * 2 + 1000);
});

it("at 5 requests/s the 6th request goes out a second after the 1st was written, not a second after its answer", async () => {
  // The 1st is answered 600 ms after it arrived, the 2nd 1.3 s after. From the write, the 6th
  // goes out at about 1 s, before the 2nd answer; from the 1st answer, at 1.6 s, after it.
  api = await logServer((n) => (n === 1 ? 600 : 1300));
  const budget = new RedisRateBudget(redis, "t-slot:budget:six", plan(5), 5000);
  await sendAtFivePerSecond(api, 6, budget);
  expectCountedFromTheWrite(api);
});

it("requests held 1.2 s between their slot and their write still never make 6 in a second", async () => {
  api = await logServer(20);
  // The first 5 requests, once they have their slots, wait 1.2 s before going on to the socket
  // (as a slow handshake would make them). Counted from the slot, the next 5 would go out at
  // 1 s, right with the first 5. (Not a busy event loop as in test/http/budget-send.test.ts:
  // here slots come one Redis round trip apart, and the loopback server in this process would
  // read the first requests late.)
  const real = new RedisRateBudget(redis, "t-slot:budget:held", plan(5), 5000);
  let given = 0;
  const budget: RequestBudget = {
    begin: async (signal) => {
      const ticket = await real.begin(signal);
      if (++given <= 5) await sleep(1200);
      return ticket;
    },
    pauseUntil: (until) => real.pauseUntil(until),
  };
  await sendAtFivePerSecond(api, 10, budget);
  expect(given).toBe(10);
  expect(api.arrivals).toHaveLength(10);
  expect(busiestSecond(api.arrivals)).toBeLessThanOrEqual(5);
});

it("a caller waiting in line behind another's wait leaves at its signal at once (a cancelled job)", async () => {
  const budget = new RedisRateBudget(redis, "t-slot:budget:line", plan(1), 5000);
  budget.pauseUntil(Date.now() + 60_000); // the API asked every worker to wait a minute
  const other = new AbortController();
  const waiting = budget.begin(other.signal); // another job's request: waits out the pause
  const job = new AbortController();
  const behind = budget.begin(job.signal); // in line behind it
  job.abort(new Error("stop"));
  try {
    // Before: it waited for the other's turn (the minute), then left.
    const left = behind.then(
      () => "took a slot",
      (e: Error) => e.message,
    );
    const still = new Promise((r) => setTimeout(() => r("still in line"), 5000));
    expect(await Promise.race([left, still])).toBe("stop");
  } finally {
    other.abort(new Error("end"));
    await waiting.catch(() => {});
    await redis.del("t-slot:budget:line:pause");
  }
});
