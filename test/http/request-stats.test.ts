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
