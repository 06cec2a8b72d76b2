/**
 * A `pipelines worker` process runs its concurrency as several BullMQ workers (src/cli/cmd-worker.ts
 * `lanes`): each fetches jobs one Redis round trip at a time, so a burst of jobs is taken by
 * several fetch loops side by side. The split never changes how many jobs run at once.
 */
import { describe, expect, it } from "vitest";
import { lanes, MAX_LANES } from "../../src/cli/cmd-worker.js";

describe("worker lanes", () => {
  it("splits the concurrency into at most MAX_LANES workers, none idle, the total unchanged", () => {
    expect(lanes(1)).toEqual([1]);
    expect(lanes(0)).toEqual([1]);
    expect(lanes(2)).toEqual([1, 1]);
    expect(lanes(5)).toEqual([1, 1, 1, 1, 1]);
    expect(lanes(10)).toEqual([2, 2, 1, 1, 1, 1, 1, 1]);
    expect(lanes(64)).toEqual([8, 8, 8, 8, 8, 8, 8, 8]);
    for (let c = 1; c <= 200; c++) {
      const split = lanes(c);
      expect(split.length).toBe(Math.min(c, MAX_LANES));
      expect(split.reduce((a, b) => a + b, 0)).toBe(c);
      expect(Math.min(...split)).toBeGreaterThanOrEqual(1);
      expect(Math.max(...split) - Math.min(...split)).toBeLessThanOrEqual(1);
    }
  });
});
