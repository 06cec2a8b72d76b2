import { seeded } from "./seeded.js";

/**
 * Random JSON records for the tests that compare rows made from a record's bytes with rows made
 * from its parse (test/outputs/csv-bytes.test.ts, test/outputs/page-rows.test.ts): strings that
 * make CSV quote, JSON escape, a spreadsheet run a formula or UTF-8 take several bytes; numbers at
 * JSON.stringify's edges; names every object inherits, index-like, empty, with quotes and commas.
 */
const CHARS = [
  "a",
  "Z",
  "0",
  "5",
  ",",
  '"',
  "\n",
  "\r",
  "\t",
  "=",
  "+",
  "-",
  "@",
  " ",
  "é",
  "😀",
  "\\",
  "/",
  "\u2028",
  "\u0000",
  "\u0001",
  "'",
  ".",
  "e",
];
const NAMES = [
  "id",
  "name",
  "a",
  "b",
  "a,b",
  'q"t',
  "constructor",
  "__proto__",
  "toString",
  "1",
  "20",
  "é",
  "😀",
  "sp ace",
  "=f",
  "\n",
  "",
  "x",
  "y",
];
/** Strings a spreadsheet could read as numbers, or run as formulas. */
const FORMULAS = ["-5", "+1.5e3", "=1+2", "@sum", "-", "+x", ".5", "-.5", "\t1", "1,5"];
const NUMBERS = [0, -0, 1, -7, 2.5, -0.125, 1e21, 1.5e-7, 123456789012345, 0.1, 1e15, -1e-5, 1e300, -1e-300];

/**
 * A generator of records' JSON texts: canonical (JSON.stringify's) unless `notCanonical` (the
 * share of records written with a space after a colon, which a parse reads the same).
 */
export function randomRecords(seed: number, notCanonical = 0): () => string {
  const rnd = seeded(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)];
  const text = (): string => {
    if (rnd() < 0.1) return "";
    if (rnd() < 0.1) return pick(FORMULAS);
    let s = "";
    for (let i = 1 + Math.floor(rnd() * 8); i > 0; i--) s += pick(CHARS);
    return s;
  };
  // Own properties, `__proto__` too (as JSON.parse makes them).
  const set = (o: Record<string, unknown>, name: string, v: unknown) =>
    Object.defineProperty(o, name, { value: v, enumerable: true, writable: true, configurable: true });
  const value = (depth: number): unknown => {
    const r = rnd();
    if (r < 0.3) return text();
    if (r < 0.45) return rnd() < 0.5 ? pick(NUMBERS) : Math.round((rnd() - 0.5) * 1e6) / 100;
    if (r < 0.55) return rnd() < 0.5;
    if (r < 0.65) return null;
    if (depth > 1) return "deep";
    const n = Math.floor(rnd() * 3);
    if (r < 0.8) return Array.from({ length: n }, () => value(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) set(o, pick(NAMES), value(depth + 1));
    return o;
  };
  return () => {
    const o: Record<string, unknown> = {};
    for (let i = Math.floor(rnd() * 7); i > 0; i--) set(o, pick(NAMES), value(0));
    if (rnd() < 0.7) o.id = Math.floor(rnd() * 50);
    const t = JSON.stringify(o);
    return rnd() < notCanonical ? t.replace(":", ": ") : t;
  };
}
