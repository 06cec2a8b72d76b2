import { describe, expect, it } from "vitest";
import { newRequestStats, noteRateLimitWait } from "../../src/http/request-stats.js";

describe("noteRateLimitWait: rate-limit waits counted as the stream's time held", () => {
  it("one pause that holds three requests is one wait of its length", () => {
    const s = newRequestStats();
    noteRateLimitWait(s, 1_000, 2_000); // the 429: Retry-After 1 s
    noteRateLimitWait(s, 1_100, 2_000); // a request held by the same pause
    noteRateLimitWait(s, 1_200, 2_003); // another, released 3 ms late by its timer
    expect(s.rateLimitWaits).toEqual({ count: 1, ms: 1_003 });
  });

  it("waits one after the other are each counted, whole", () => {
    const s = newRequestStats();
    noteRateLimitWait(s, 0, 500);
    noteRateLimitWait(s, 500, 800);
    noteRateLimitWait(s, 2_000, 2_250);
    expect(s.rateLimitWaits).toEqual({ count: 3, ms: 1_050 });
  });

  it("the budget's wait for the last millisecond of the API's pause is that pause's tail, not a new wait", () => {
    const s = newRequestStats();
    noteRateLimitWait(s, 1_000, 1_350, true); // the 429: Retry-After 0.35 s
    noteRateLimitWait(s, 1_350, 1_351); // its retry, released 1 ms early, waits out the budget's pause
    expect(s.rateLimitWaits).toEqual({ count: 1, ms: 351 });
    noteRateLimitWait(s, 1_352, 1_360); // still the tail
    noteRateLimitWait(s, 1_400, 1_500); // a wait of its own
    expect(s.rateLimitWaits).toEqual({ count: 2, ms: 459 });
  });

  it("a wait right after the budget's own wait is a new one (no tail without the API's pause)", () => {
    const s = newRequestStats();
    noteRateLimitWait(s, 0, 500);
    noteRateLimitWait(s, 501, 800);
    expect(s.rateLimitWaits).toEqual({ count: 2, ms: 799 });
  });

  it("a wait inside one already counted adds nothing; streams count apart", () => {
    const a = newRequestStats();
    const b = newRequestStats();
    noteRateLimitWait(a, 0, 1_000);
    noteRateLimitWait(a, 200, 900);
    noteRateLimitWait(b, 200, 900);
    expect(a.rateLimitWaits).toEqual({ count: 1, ms: 1_000 });
    expect(b.rateLimitWaits).toEqual({ count: 1, ms: 700 });
  });
});
