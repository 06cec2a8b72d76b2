import { describe, expect, it } from "vitest";
import { resolveWorkers } from "../../src/run/record-workers/setting.js";

/** `source.workers` → threads doing record work, the main thread included (1: main thread only). */
describe("source.workers", () => {
  it("a number is taken as it is; absent (a caller without the setting) is the main thread alone", () => {
    expect(resolveWorkers(1, 16)).toBe(1);
    expect(resolveWorkers(3, 2)).toBe(3);
    expect(resolveWorkers(undefined, 16)).toBe(1);
  });

  it("auto: no worker thread below 4 cores (measured: no gain without a spare core), else min(cores − 1, 4) beside the main thread", () => {
    expect([1, 2, 3].map((c) => resolveWorkers("auto", c))).toEqual([1, 1, 1]);
    expect([4, 5, 8, 64].map((c) => resolveWorkers("auto", c))).toEqual([4, 5, 5, 5]);
  });
});
