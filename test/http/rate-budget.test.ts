/** The rate budget (rate-budget.ts) on a fake clock: no test here sleeps. */
import { describe, expect, it } from "vitest";
import type { RateLimitPlan } from "../../src/compile/plan.js";
import {
  parseRemaining,
  parseReset,
  parseRetryAfter,
  RateBudget,
  SEND_MARGIN_MS,
} from "../../src/http/rate-budget.js";
import { newRequestStats, noteRateLimitWait } from "../../src/http/request-stats.js";

const T0 = Date.parse("2026-11-29T12:00:00Z");

function plan(rates: Partial<RateLimitPlan>): RateLimitPlan {
  return {
    perSecond: null,
    perMinute: null,
    perHour: null,
    perDay: null,
    remainingHeader: null,
    resetHeader: null,
    ...rates,
  };
}

/**
 * A budget on a clock that only moves when the budget sleeps (or the test says so). Without the
 * margin a slot counts from its write (SEND_MARGIN_MS), but in the tests of that margin.
 */
function fakeClock(p: RateLimitPlan | null, marginMs = 0) {
  const clock = { now: T0, sleeps: [] as number[] };
  const budget = new RateBudget(
    p,
    () => clock.now,
    async (ms) => {
      clock.sleeps.push(ms);
      clock.now += ms;
    },
    marginMs,
  );
  /** Takes a slot; returns the ms waited for it, measured on the fake clock. */
  const take = async (): Promise<number> => {
    const before = clock.now;
    await budget.acquire();
    return clock.now - before;
  };
  return { clock, budget, take };
}

describe("RateBudget windows", () => {
  it("without a plan, never waits", async () => {
    const { take, clock } = fakeClock(null);
    for (let i = 0; i < 100; i++) expect(await take()).toBe(0);
    expect(clock.sleeps).toEqual([]);
  });

  it("a per-second limit lets `limit` requests through, then waits for the oldest to leave the window", async () => {
    const { take } = fakeClock(plan({ perSecond: 2 }));
    expect([await take(), await take(), await take(), await take(), await take()]).toEqual([
      0, 0, 1000, 0, 1000,
    ]);
  });

  it("the window slides: it counts from each request, not from fixed second boundaries", async () => {
    const { take, clock } = fakeClock(plan({ perSecond: 2 }));
    await take(); // t = 0
    clock.now += 600;
    await take(); // t = 600
    clock.now += 100;
    expect(await take()).toBe(300); // t = 700: the one at 0 leaves at 1000
    expect(await take()).toBe(600); // t = 1000: the one at 600 leaves at 1600
  });

  it("acquire reports the time it waited", async () => {
    const { budget, clock } = fakeClock(plan({ perSecond: 1 }));
    expect(await budget.acquire()).toBe(0);
    clock.now += 250;
    expect(await budget.acquire()).toBe(750);
  });

  it("a fractional rate (0.5 per second) is one request every 2 seconds", async () => {
    const { take } = fakeClock(plan({ perSecond: 0.5 }));
    expect([await take(), await take(), await take()]).toEqual([0, 2000, 2000]);
  });

  it("a fractional rate above 1 (1.5 per minute) keeps whole requests over a longer window", async () => {
    // 1.5/min: 1 request per 40 s.
    const { take } = fakeClock(plan({ perMinute: 1.5 }));
    expect([await take(), await take(), await take()]).toEqual([0, 40_000, 40_000]);
  });

  it("every window holds at once: 10 per second but 3 per minute", async () => {
    const { take } = fakeClock(plan({ perSecond: 10, perMinute: 3 }));
    expect([await take(), await take(), await take(), await take()]).toEqual([0, 0, 0, 60_000]);
  });

  it("per hour and per day windows", async () => {
    const hour = fakeClock(plan({ perHour: 1 }));
    expect([await hour.take(), await hour.take()]).toEqual([0, 3_600_000]);
    const day = fakeClock(plan({ perDay: 2 }));
    expect([await day.take(), await day.take(), await day.take()]).toEqual([0, 0, 86_400_000]);
  });

  it("callers are served in the order they asked", async () => {
    const { budget } = fakeClock(plan({ perSecond: 1 }));
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3].map((i) => budget.acquire().then(() => order.push(i))));
    expect(order).toEqual([0, 1, 2, 3]);
  });

  it("an aborted wait rejects, and the callers behind it still get their turn", async () => {
    let now = T0;
    // The real timer: an aborted signal rejects at once, without sleeping.
    const budget = new RateBudget(plan({ perSecond: 1 }), () => now, undefined, 0);
    await budget.acquire();
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await expect(budget.acquire(controller.signal)).rejects.toThrow("stop");
    now += 1000;
    expect(await budget.acquire()).toBe(0);
  });
});

describe("RateBudget slots counted from the request's write", () => {
  const M = SEND_MARGIN_MS;

  it("a slot counts from done() (the write) plus the margin, not from when it was taken nor from the response", async () => {
    const { clock, budget, take } = fakeClock(plan({ perSecond: 1 }), M);
    const ticket = await budget.begin(); // at T0
    clock.now += 400; // a new connection: the request is written 400 ms after its slot
    ticket.done();
    clock.now += 300; // its response comes in 300 ms later
    ticket.done(); // as the executor calls it again when the response is in: changes nothing
    // A second from the write (T0 + 400) plus the margin: at T0 + 1425, 725 ms from now.
    expect(await take()).toBe(700 + M);
  });

  it("a slot not yet written holds its window until it is: the next request waits for its done()", async () => {
    const { clock, budget } = fakeClock(plan({ perSecond: 1 }), M);
    const slow = await budget.begin(); // at T0, not written for 1.5 s
    let granted: number | null = null;
    const next = budget.begin().then(() => {
      granted = clock.now;
    });
    await new Promise((r) => setImmediate(r));
    expect(granted).toBeNull(); // the window's only slot is not yet sent: no wait ends it but its write
    clock.now += 1500;
    slow.done();
    await next;
    expect(granted).toBe(T0 + 1500 + 1000 + M);
  });

  it("requests written out of order: the window frees when the first written leaves it", async () => {
    const { clock, budget, take } = fakeClock(plan({ perSecond: 2 }), M);
    const a = await budget.begin(); // T0, written late
    const b = await budget.begin(); // T0
    clock.now += 100;
    b.done(); // b is written first, at T0 + 100
    expect(await take()).toBe(1000 + M); // b's slot (a is still unsent): T0 + 1100 + M
    clock.now += 50;
    a.done(); // a written at T0 + 1150 + M
    expect(await take()).toBe(1000 + M); // from a's write, not from when a took its slot
  });

  it("a request that fails before its write counts from the failure", async () => {
    const { clock, budget, take } = fakeClock(plan({ perSecond: 1 }), M);
    const failed = await budget.begin();
    clock.now += 200;
    failed.done(); // the connection was refused: the executor's finally calls done()
    expect(await take()).toBe(1000 + M);
  });

  it("an aborted wait for a slot not yet written rejects, and the line moves on", async () => {
    const { budget } = fakeClock(plan({ perSecond: 1 }), M);
    const slow = await budget.begin();
    const controller = new AbortController();
    const waiting = budget.begin(controller.signal);
    controller.abort(new Error("stop"));
    await expect(waiting).rejects.toThrow("stop");
    slow.done();
    expect((await budget.begin()).waited).toBe(1000 + M);
  });
});

describe("RateBudget line", () => {
  it("a caller waiting in line behind another's wait leaves at its signal at once, and takes no slot", async () => {
    const { budget } = fakeClock(plan({ perSecond: 1 }), SEND_MARGIN_MS);
    const slow = await budget.begin(); // not written yet: the next caller waits for its write
    const next = budget.begin();
    const controller = new AbortController();
    const behind = budget.begin(controller.signal); // in line behind `next`
    controller.abort(new Error("stop"));
    // Before: it waited for `next`'s turn, which waits for `slow`'s write (here: never).
    const left = behind.then(
      () => "took a slot",
      (e: Error) => e.message,
    );
    const still = new Promise((r) => setTimeout(() => r("still in line"), 5000));
    expect(await Promise.race([left, still])).toBe("stop");
    slow.done();
    (await next).done();
    // The caller that left took no slot: the next one waits one window from `next`, no more.
    expect((await budget.begin()).waited).toBe(1000 + SEND_MARGIN_MS);
  });
});

describe("RateBudget pauses", () => {
  it("pauseUntil holds every request until then; pausedFor says how long is left", async () => {
    const { budget, take, clock } = fakeClock(null);
    budget.pauseUntil(T0 + 5000);
    expect(budget.pausedFor).toBe(5000);
    clock.now += 1000;
    expect(budget.pausedFor).toBe(4000);
    expect(await take()).toBe(4000);
    expect(budget.pausedFor).toBe(0);
    expect(await take()).toBe(0);
  });

  it("a wait is reported as long as it took: a timer that fires late does not make it look as if it began after the pause ended", async () => {
    // A 429's pause until T0 + 350 is one wait (the executor notes it); a request whose backoff
    // timer fired 0.4 ms before the pause's end waits out the rest, and its timer fires 2 ms late.
    const clock = { now: T0 + 349.6 };
    const budget = new RateBudget(
      null,
      () => clock.now,
      async (ms) => {
        clock.now += ms + 2;
      },
    );
    const stats = newRequestStats();
    noteRateLimitWait(stats, T0, T0 + 350);
    budget.pauseUntil(T0 + 350);
    const { waited, done } = await budget.begin();
    done();
    expect(waited).toBeCloseTo(3, 5); // 1 ms asked, 2 ms late
    noteRateLimitWait(stats, clock.now - waited, clock.now); // as attempt.ts does
    expect(stats.rateLimitWaits.count).toBe(1);
  });

  it("an earlier pause does not shorten a longer one", async () => {
    const { budget } = fakeClock(null);
    budget.pauseUntil(T0 + 5000);
    budget.pauseUntil(T0 + 1000);
    expect(budget.pausedFor).toBe(5000);
  });

  it("remaining 0 and a reset header, as the executor reads them, pause until the reset", async () => {
    const { budget, take } = fakeClock(plan({ perSecond: 100 }));
    const headers = { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String((T0 + 30_000) / 1000) };
    expect(parseRemaining(headers["x-ratelimit-remaining"])).toBe(0);
    const reset = parseReset(headers["x-ratelimit-reset"], T0);
    expect(reset).toBe(T0 + 30_000);
    budget.pauseUntil(reset!);
    expect(await take()).toBe(30_000);
  });
});

describe("header parsers", () => {
  it("parseReset: seconds to wait, epoch seconds, epoch ms, HTTP and ISO dates", () => {
    expect(parseReset("30", T0)).toBe(T0 + 30_000);
    expect(parseReset(" 1.5 ", T0)).toBe(T0 + 1500);
    expect(parseReset("0", T0)).toBe(T0);
    expect(parseReset("1764417600", T0)).toBe(1_764_417_600_000);
    expect(parseReset("1764417600123", T0)).toBe(1_764_417_600_123);
    expect(parseReset("Sun, 29 Nov 2026 12:01:00 GMT", T0)).toBe(T0 + 60_000);
    expect(parseReset("2026-11-29T12:02:00Z", T0)).toBe(T0 + 120_000);
    expect(parseReset("1.25", T0)).toBe(T0 + 1250);
    // Exactly 10^9 and 10^12 are still seconds to wait and epoch seconds ("above" them, not at).
    expect(parseReset("1000000000", T0)).toBe(T0 + 1e12);
    expect(parseReset("1000000000000", T0)).toBe(1e15);
    expect(parseReset("x5", T0)).toBeNull();
    expect(parseReset("soon", T0)).toBeNull();
    expect(parseReset("", T0)).toBeNull();
    expect(parseReset(undefined, T0)).toBeNull();
  });

  it("parseRetryAfter: seconds (with decimals) or an HTTP date, as ms to wait", () => {
    expect(parseRetryAfter("2", T0)).toBe(2000);
    expect(parseRetryAfter("0.25", T0)).toBe(250);
    expect(parseRetryAfter("Sun, 29 Nov 2026 12:00:10 GMT", T0)).toBe(10_000);
    expect(parseRetryAfter("Sun, 29 Nov 2026 11:59:00 GMT", T0)).toBe(0); // a date in the past
    expect(parseRetryAfter(" 5 ", T0)).toBe(5000);
    expect(parseRetryAfter("x5", T0)).toBeNull();
    expect(parseRetryAfter("5x", T0)).toBeNull();
    expect(parseRetryAfter("later", T0)).toBeNull();
    expect(parseRetryAfter(undefined, T0)).toBeNull();
  });

  it("parseRemaining: a number, or null for a value that says nothing", () => {
    expect(parseRemaining("0")).toBe(0);
    expect(parseRemaining(" 42 ")).toBe(42);
    expect(parseRemaining("-1")).toBe(-1);
    expect(parseRemaining("2.5")).toBe(2.5);
    expect(parseRemaining("2.25")).toBe(2.25);
    expect(parseRemaining("x5")).toBeNull();
    expect(parseRemaining("5x")).toBeNull();
    expect(parseRemaining("unknown")).toBeNull();
    expect(parseRemaining("")).toBeNull();
    expect(parseRemaining(undefined)).toBeNull();
  });
});
