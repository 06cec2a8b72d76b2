/** The one retry policy (retry-policy.ts), with a seeded random and a fixed clock. */

import { describe, expect, it } from "vitest";
import type { RateLimitPlan, RetryPlan } from "../../src/compile/plan.js";
import type { HttpResponse } from "../../src/http/client.js";
import { RetryPolicy } from "../../src/http/retry-policy.js";
import { TransportError } from "../../src/shared/errors.js";
import { seeded } from "../helpers/seeded.js";

const RETRY: RetryPlan = { maxAttempts: 4, initialDelayMs: 100, maxDelayMs: 1000, onStatus: [429, 500, 503] };
const RL: RateLimitPlan = {
  perSecond: null,
  perMinute: null,
  perHour: null,
  perDay: null,
  remainingHeader: "x-remaining",
  resetHeader: "x-reset",
};
const NOW = Date.parse("2026-11-29T12:00:00Z");

const res = (status: number, headers: Record<string, string> = {}): HttpResponse => ({
  status,
  headers,
  body: Buffer.from(""),
  url: "https://api.test/x",
  elapsedMs: 1,
});

const policy = (random: () => number = seeded(7), rl: RateLimitPlan | null = RL) =>
  new RetryPolicy(RETRY, rl, random, () => NOW);

describe("backoff", () => {
  it("is full jitter between initial_delay and a doubling cap, never above max_delay", () => {
    const p = policy(seeded(42));
    for (let attempt = 1; attempt <= 10; attempt++) {
      const cap = Math.min(1000, 100 * 2 ** attempt);
      for (let i = 0; i < 50; i++) {
        const d = p.backoff(attempt);
        expect(d).toBeGreaterThanOrEqual(100);
        expect(d).toBeLessThanOrEqual(cap);
      }
    }
  });

  it("the same seed gives the same delays; the jitter spreads them", () => {
    const a = policy(seeded(1));
    const b = policy(seeded(1));
    const da = [1, 2, 3, 4].map((n) => a.backoff(n));
    expect([1, 2, 3, 4].map((n) => b.backoff(n))).toEqual(da);
    const spread = new Set(Array.from({ length: 20 }, () => Math.round(a.backoff(3))));
    expect(spread.size).toBeGreaterThan(10);
  });

  it("the extremes of the random: low is initial_delay, high is the cap", () => {
    expect(policy(() => 0).backoff(3)).toBe(100);
    expect(policy(() => 1).backoff(3)).toBe(800);
    expect(policy(() => 1).backoff(9)).toBe(1000);
  });
});

describe("after a transport failure", () => {
  it("retries a retryable one until max_attempts, named by its kind", () => {
    const p = policy(() => 0.5);
    const reset = new TransportError("reset", "connection reset");
    expect(p.afterFailure(reset, 1)).toEqual({
      retry: true,
      delayMs: 150,
      cause: "reset",
      rateLimited: false,
    });
    expect(p.afterFailure(reset, 4)).toEqual({ retry: false, reason: "attempts" });
  });

  it("never retries one that is not retryable (a body over max_response_size)", () => {
    const big = new TransportError("too_large", "too large");
    expect(policy().afterFailure(big, 1)).toEqual({ retry: false, reason: "not_retryable" });
  });
});

describe("after a status", () => {
  it("retries only retry.on_status", () => {
    expect(policy().afterStatus(res(404), 1)).toEqual({ retry: false, reason: "not_retryable" });
    expect(policy().afterStatus(res(502), 1)).toEqual({ retry: false, reason: "not_retryable" });
    const step = policy(() => 0).afterStatus(res(503), 2);
    expect(step).toEqual({ retry: true, delayMs: 100, cause: "status_503", rateLimited: false });
    expect(policy().afterStatus(res(503), 4)).toEqual({ retry: false, reason: "attempts" });
  });

  it("Retry-After in seconds or as an HTTP date replaces the backoff; a 429 is rate_limited", () => {
    expect(policy().afterStatus(res(429, { "retry-after": "0.5" }), 1)).toEqual({
      retry: true,
      delayMs: 500,
      cause: "rate_limited",
      rateLimited: true,
    });
    const date = new Date(NOW + 800).toUTCString(); // whole seconds: up to 800 ms
    const step = policy().afterStatus(res(503, { "retry-after": date }), 1);
    expect(step.retry && step.delayMs).toBeLessThanOrEqual(800);
    expect(step.retry && step.cause).toBe("status_503");
  });

  it("a wait longer than max_delay gives up at once, saying how long and why", () => {
    expect(policy().afterStatus(res(429, { "retry-after": "30" }), 1)).toEqual({
      retry: false,
      reason: "wait_too_long",
      waitMs: 30_000,
      header: "Retry-After",
      value: "30",
    });
  });

  it("remaining 0 on a 403 waits for the reset (delta seconds or epoch), even if 403 is not in on_status", () => {
    const step = policy().afterStatus(
      res(403, { "x-remaining": "0", "x-reset": String((NOW + 700) / 1000) }),
      1,
    );
    expect(step).toEqual({ retry: true, delayMs: 700, cause: "rate_limited", rateLimited: true });
    // Without the rate-limit headers configured, a 403 is final.
    expect(policy(seeded(1), null).afterStatus(res(403, { "x-remaining": "0", "x-reset": "1" }), 1)).toEqual({
      retry: false,
      reason: "not_retryable",
    });
  });
});

describe("edges (from mutation testing)", () => {
  const half = () => 0.5;

  it("Retry-After: 0 keeps the backoff; a wait of exactly max_delay is waited", () => {
    const p = policy(half);
    expect(p.afterStatus(res(503, { "retry-after": "0" }), 1)).toEqual({
      retry: true,
      delayMs: p.backoff(1),
      cause: "status_503",
      rateLimited: false,
    });
    expect(p.backoff(1)).toBeGreaterThan(0);
    expect(policy(half).afterStatus(res(503, { "retry-after": "1" }), 1)).toMatchObject({
      retry: true,
      delayMs: 1000,
    });
  });

  it("the reset is waited for only on a 429 or 403 whose remaining is 0", () => {
    const reset = { "x-reset": String((NOW + 700) / 1000) };
    // A 429 with remaining 0: the reset.
    expect(policy(half).afterStatus(res(429, { "x-remaining": "0", ...reset }), 1)).toMatchObject({
      delayMs: 700,
      rateLimited: true,
    });
    // A 500 with remaining 0 is retried for its status, with the backoff.
    const p = policy(half);
    expect(p.afterStatus(res(500, { "x-remaining": "0", ...reset }), 1)).toEqual({
      retry: true,
      delayMs: p.backoff(1),
      cause: "status_500",
      rateLimited: false,
    });
    // Remaining left, or unreadable: no reset wait.
    for (const remaining of ["3", "unknown"]) {
      const q = policy(half);
      expect(q.afterStatus(res(429, { "x-remaining": remaining, ...reset }), 1), remaining).toMatchObject({
        delayMs: q.backoff(1),
      });
      expect(q.afterStatus(res(403, { "x-remaining": remaining, ...reset }), 1)).toEqual({
        retry: false,
        reason: "not_retryable",
      });
    }
  });

  it("a reset too far away gives up, quoting the reset header as sent", () => {
    expect(policy(half).afterStatus(res(429, { "x-remaining": "0", "x-reset": " 3600 " }), 1)).toEqual({
      retry: false,
      reason: "wait_too_long",
      waitMs: 3_600_000,
      header: "x-reset",
      value: " 3600 ",
    });
  });
});

describe("afterRule (an on_response rule said retry)", () => {
  it("retries any status, within max_attempts; the backoff unless the server or the rule says how long", () => {
    const p = policy(() => 0); // the lowest jitter: the backoff is initial_delay
    expect(p.afterRule(res(200), 1, null)).toEqual({
      retry: true,
      delayMs: 100,
      cause: "on_response_200",
      rateLimited: false,
    });
    expect(p.afterRule(res(200), 3, null).retry).toBe(true);
    expect(p.afterRule(res(200), 4, null)).toEqual({ retry: false, reason: "attempts" });
    expect(p.afterRule(res(200), 5, null)).toEqual({ retry: false, reason: "attempts" });
    // Retry-After: 0 keeps the backoff; a positive one replaces it.
    expect(p.afterRule(res(200, { "retry-after": "0" }), 1, null)).toMatchObject({ delayMs: 100 });
    expect(p.afterRule(res(200, { "retry-after": "0.5" }), 1, null)).toMatchObject({ delayMs: 500 });
  });

  it("the rule's wait comes before Retry-After; longer than max_delay gives up, saying the wait", () => {
    const p = policy(() => 0);
    expect(p.afterRule(res(200, { "retry-after": "0.5" }), 1, 300)).toMatchObject({ delayMs: 300 });
    expect(p.afterRule(res(200), 1, 1000)).toMatchObject({ retry: true, delayMs: 1000 });
    expect(p.afterRule(res(200), 1, 1001)).toEqual({
      retry: false,
      reason: "wait_too_long",
      waitMs: 1001,
      header: "wait",
      value: "1.001s",
    });
    expect(p.afterRule(res(200, { "retry-after": "2" }), 1, null)).toEqual({
      retry: false,
      reason: "wait_too_long",
      waitMs: 2000,
      header: "Retry-After",
      value: "2",
    });
    expect(p.afterRule(res(200, { "retry-after": "1" }), 1, null)).toMatchObject({
      retry: true,
      delayMs: 1000,
    });
  });

  it("rate_limited when a 429, or when the wait comes from a reset header (remaining 0)", () => {
    const p = policy(() => 0);
    expect(p.afterRule(res(429), 1, null)).toMatchObject({ rateLimited: true });
    expect(p.afterRule(res(503, { "retry-after": "0.2" }), 1, null)).toMatchObject({ rateLimited: false });
    const reset = p.afterRule(res(403, { "x-remaining": "0", "x-reset": "0.4" }), 1, null);
    expect(reset).toEqual({ retry: true, delayMs: 400, cause: "on_response_403", rateLimited: true });
    expect(p.afterRule(res(403, { "x-remaining": "0", "x-reset": "2" }), 1, null)).toEqual({
      retry: false,
      reason: "wait_too_long",
      waitMs: 2000,
      header: "x-reset",
      value: "2",
    });
  });
});
