import { describe, expect, it } from "vitest";
import { formatNumber } from "../../src/shared/format.js";

describe("formatNumber", () => {
  it("writes numbers as en-US Intl.NumberFormat does (integers without loading ICU)", () => {
    const intl = new Intl.NumberFormat("en-US");
    const values = [
      0,
      -0,
      1,
      -1,
      7,
      999,
      1000,
      -1000,
      1001,
      12_345,
      999_999,
      1_000_000,
      -1_234_567,
      2_000_000_000,
      Number.MAX_SAFE_INTEGER,
      -Number.MAX_SAFE_INTEGER,
      2 ** 53,
      1e21,
      0.5,
      0.125,
      1234.5678,
      -0.0004,
      1.0005,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ];
    for (const v of values) expect(formatNumber(v), String(v)).toBe(intl.format(v));
    for (let n = 1; n < 1e15; n = n * 7 + 3) {
      expect(formatNumber(n)).toBe(intl.format(n));
      expect(formatNumber(-n)).toBe(intl.format(-n));
    }
  });
});
