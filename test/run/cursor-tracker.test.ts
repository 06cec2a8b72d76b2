import { describe, expect, it } from "vitest";
import { CursorTracker, compareCursor } from "../../src/run/incremental.js";
import { seeded } from "../helpers/seeded.js";

/**
 * CursorTracker keeps the largest cursor by compareCursor; date-times written alike are compared
 * as text (a shortcut): the same largest value, step by step, on mixed random values — days that
 * do not exist (Feb 30, which Date.parse moves to March), 24:00, leap seconds, fractions past the
 * millisecond, offsets, numbers and numeric strings.
 */
function randomCursor(rnd: () => number): string | number {
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const d2 = (n: number) => String(n).padStart(2, "0");
  const r = rnd();
  if (r < 0.1) return pick([1, 2, 10, 9.5, -3, 1e15]);
  if (r < 0.15) return pick(["10", "9", "9.50", "-1", "0012", "abc", "2024", "2024-01"]);
  const date = `${pick(["2023", "2024", "1999"])}-${d2(pick([1, 2, 3, 12, 13, 0]))}-${d2(pick([1, 28, 29, 30, 31, 0]))}`;
  const time = `${d2(pick([0, 12, 23, 24]))}:${d2(pick([0, 59, 60]))}:${d2(pick([0, 30, 59, 60]))}`;
  const frac = pick(["", "", ".5", ".123", ".1234", ".1239"]);
  const zone = pick(["Z", "Z", "Z", "+01:00", "z"]);
  return `${date}${pick(["T", "T", " "])}${time}${frac}${zone}`;
}

describe("CursorTracker", () => {
  it("keeps compareCursor's largest value (200 sequences of 300 mixed values)", () => {
    const rnd = seeded(11);
    for (let seq = 0; seq < 200; seq++) {
      const t = new CursorTracker("c");
      let max: string | number | null = null;
      for (let i = 0; i < 300; i++) {
        const v = randomCursor(rnd);
        t.offer(v);
        if (max === null || compareCursor(v, max) > 0) max = v;
        expect(t.max, `after ${JSON.stringify(v)}`).toEqual(max);
      }
    }
  });

  it("keeps compareCursor's larger of two values (20,000 pairs)", () => {
    const rnd = seeded(12);
    for (let i = 0; i < 20000; i++) {
      const a = randomCursor(rnd);
      const b = randomCursor(rnd);
      const t = new CursorTracker("c");
      t.offer(a);
      t.offer(b);
      expect(t.max, `${JSON.stringify(a)} then ${JSON.stringify(b)}`).toEqual(
        compareCursor(b, a) > 0 ? b : a,
      );
    }
  });

  // Days that do not exist are read by Date.parse as days of the next month: their text and their
  // instant order differently, so they are never compared as text.
  // Each pair: the larger, as compareCursor says, then the other.
  const pairs = [
    ["2024-02-31T12:00:00Z", "2024-03-01T00:00:00Z"], // March 2, 12:00 after March 1
    ["2024-04-31T06:00:00Z", "2024-05-01T03:00:00Z"],
    ["2023-02-29T12:00:00Z", "2023-03-01T06:00:00Z"], // February 29 is March 1: 12:00 after 06:00
    ["2024-01-02T00:00:01Z", "2024-01-01T24:00:00Z"],
    ["2024-01-01T00:00:00.1239Z", "2024-01-01T00:00:00.1234Z"], // the same millisecond: by text
    // Date.parse misreads fractions of ten digits and more: .0999999999 after .1000000000.
    ["2024-01-01T00:00:00.0999999999Z", "2024-01-01T00:00:00.1000000000Z"],
  ];
  it.each(pairs)("%s over %s, either first", (a, b) => {
    expect(compareCursor(a, b)).toBeGreaterThan(0);
    for (const [x, y] of [
      [a, b],
      [b, a],
    ]) {
      const t = new CursorTracker("c");
      t.offer(x);
      t.offer(y);
      expect(t.max).toBe(a);
    }
  });

  it("starts again from a max set from outside (a checkpoint sets it to null)", () => {
    const t = new CursorTracker("c");
    t.offer("2024-03-01T00:00:00Z");
    t.max = null;
    t.offer("2024-02-01T00:00:00Z");
    expect(t.max).toBe("2024-02-01T00:00:00Z");
    t.max = "2024-02-31T12:00:00Z"; // a day Date.parse moves to March 2
    t.offer("2024-03-01T00:00:00Z");
    expect(t.max).toBe("2024-02-31T12:00:00Z");
  });

  it("ignores what is not a cursor; a big integer is kept as its digits", () => {
    const t = new CursorTracker("c");
    for (const v of [null, undefined, true, {}, [], ""]) t.offer(v);
    expect(t.max).toBeNull();
    t.offer(12345678901234567890n);
    t.offer("9");
    expect(t.max).toBe("12345678901234567890");
  });
});
