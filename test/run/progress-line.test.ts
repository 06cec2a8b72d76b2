import { describe, expect, it } from "vitest";
import { progressLine } from "../../src/run/progress.js";
import { newStreamResult } from "../../src/run/stream-result.js";

const units = (kind: "windows" | "partitions", done: number, total: number) => ({
  kind,
  total,
  done,
  committed: done,
  incomplete: 0,
  checkpoints: true,
  windows: null,
});

describe("progressLine (listr2 and plain progress)", () => {
  it("shows windows done / total for a windowed stream", () => {
    const r = newStreamResult("events");
    r.status = "running";
    r.units = units("windows", 3, 12);
    expect(progressLine(r)).toContain("windows 3/12");
  });

  it("shows partitions done / total from the units when no parent counts are kept", () => {
    const r = newStreamResult("issues");
    r.status = "ok";
    r.units = units("partitions", 2, 5);
    expect(progressLine(r)).toContain("partitions 2/5");
  });

  it("shows both for the windows of each parent record", () => {
    const r = newStreamResult("events");
    r.status = "ok";
    r.units = units("windows", 7, 9);
    r.partitions = { total: 3, done: 2, failed: [] };
    expect(progressLine(r)).toBe("0 pages · 0 records · windows 7/9 · partitions 2/3");
  });
});
