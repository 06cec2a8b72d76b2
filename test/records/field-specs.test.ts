import { describe, expect, it } from "vitest";
import type { StreamPlan } from "../../src/compile/plan.js";
import {
  FIELD_ERRORS,
  toBoolean,
  toDateTime,
  toInteger,
  toNumber,
  toText,
} from "../../src/records/field-specs.js";
import { compileShaper } from "../../src/records/shape.js";

const ok = (value: unknown) => ({ ok: true, value });

describe("field conversions (exact rules of format 1.1)", () => {
  it("integer: optional sign and digits, spaces trimmed; fractions and exponents are not integers", () => {
    expect(toInteger("42")).toEqual(ok(42));
    expect(toInteger(" -42 ")).toEqual(ok(-42));
    expect(toInteger("+7")).toEqual(ok(7));
    expect(toInteger(42)).toEqual(ok(42));
    expect(toInteger("12345678901234567890")).toEqual(ok(12345678901234567890n));
    for (const bad of ["42.0", "1e3", "4.5", "", "abc", "0x10", true, 4.5, {}])
      expect(toInteger(bad).ok, String(bad)).toBe(false);
  });
  it("number: JSON number syntax", () => {
    expect(toNumber("4.50")).toEqual(ok(4.5));
    expect(toNumber("1e3")).toEqual(ok(1000));
    expect(toNumber("-0.5")).toEqual(ok(-0.5));
    expect(toNumber(3)).toEqual(ok(3));
    // An integer beyond 2^53 keeps its digits, as the same text in a JSON body does.
    expect(toNumber("9007199254740993")).toEqual(ok(9007199254740993n));
    expect(toNumber(" -12345678901234567890 ")).toEqual(ok(-12345678901234567890n));
    expect(toNumber("1e300")).toEqual(ok(1e300));
    for (const bad of ["+1", ".5", "1.", "01", "NaN", "Infinity", "1,5", true, null])
      expect(toNumber(bad).ok, String(bad)).toBe(false);
  });
  it("boolean: true/false in any case, nothing else", () => {
    expect(toBoolean("TRUE")).toEqual(ok(true));
    expect(toBoolean("False")).toEqual(ok(false));
    expect(toBoolean(true)).toEqual(ok(true));
    for (const bad of ["1", "0", "yes", 1, 0, "t"]) expect(toBoolean(bad).ok, String(bad)).toBe(false);
  });
  it("string: numbers and booleans as their JSON text", () => {
    expect(toText(4.5)).toEqual(ok("4.5"));
    expect(toText(true)).toEqual(ok("true"));
    expect(toText(12345678901234567890n)).toEqual(ok("12345678901234567890"));
    expect(toText("x")).toEqual(ok("x"));
    expect(toText({ a: 1 }).ok).toBe(false);
    expect(toText([1]).ok).toBe(false);
  });
  it("date-time from epoch seconds and milliseconds, numbers or numeric strings, to UTC", () => {
    expect(toDateTime(1704067200, "epoch")).toEqual(ok("2024-01-01T00:00:00Z"));
    expect(toDateTime("1704067200", "epoch")).toEqual(ok("2024-01-01T00:00:00Z"));
    expect(toDateTime(1704067200.5, "epoch")).toEqual(ok("2024-01-01T00:00:00.500Z"));
    expect(toDateTime(1704067200123, "epoch_ms")).toEqual(ok("2024-01-01T00:00:00.123Z"));
    expect(toDateTime("abc", "epoch").ok).toBe(false);
    // Milliseconds read as seconds: the error says what was probably meant.
    expect(toDateTime(1704067200123, "epoch")).toEqual({
      ok: false,
      message: "is out of range for a date-time (milliseconds? use `from: epoch_ms`)",
    });
    expect(toDateTime(1e20, "epoch_ms").ok).toBe(false);
  });
  it("date-time without from: ISO 8601 with an offset, to UTC; no offset is not accepted", () => {
    expect(toDateTime("2024-01-01T02:30:00+02:00", undefined)).toEqual(ok("2024-01-01T00:30:00Z"));
    expect(toDateTime("2023-12-31T23:00:00-0100", undefined)).toEqual(ok("2024-01-01T00:00:00Z"));
    expect(toDateTime("2024-01-01T00:00:00.250Z", undefined)).toEqual(ok("2024-01-01T00:00:00.250Z"));
    expect(toDateTime("2024-01-01T00:00:00.000Z", undefined)).toEqual(ok("2024-01-01T00:00:00Z"));
    for (const bad of ["2024-01-01T00:00:00", "2024-01-01", "2024-02-30T00:00:00Z", "yesterday", 1704067200])
      expect(toDateTime(bad, undefined).ok, String(bad)).toBe(false);
  });
  it("date-time from epoch: finer fractions than ms are cut, as ISO fractions are (never rounded into the next second)", () => {
    expect(toDateTime(1704067199.9996, "epoch")).toEqual(ok("2023-12-31T23:59:59.999Z"));
    expect(toDateTime("1704067200.1239", "epoch")).toEqual(ok("2024-01-01T00:00:00.123Z"));
    expect(toDateTime(1704067200.123, "epoch")).toEqual(ok("2024-01-01T00:00:00.123Z"));
    expect(toDateTime(1704067200.001, "epoch")).toEqual(ok("2024-01-01T00:00:00.001Z"));
    expect(toDateTime(1704067199999.9, "epoch_ms")).toEqual(ok("2023-12-31T23:59:59.999Z"));
    // Before 1970 the instant is cut the same way: toward the past.
    expect(toDateTime(-0.0005, "epoch")).toEqual(ok("1969-12-31T23:59:59.999Z"));
    expect(toDateTime(-1.5, "epoch")).toEqual(ok("1969-12-31T23:59:58.500Z"));
    expect(toDateTime(-1.5, "epoch_ms")).toEqual(ok("1969-12-31T23:59:59.998Z"));
    // An ISO fraction of many nines is cut too (as a double, 0.99999999999999999 is 1).
    expect(toDateTime("2024-01-01T23:59:59.99999999999999999Z", undefined)).toEqual(
      ok("2024-01-01T23:59:59.999Z"),
    );
  });
  it("date-time: years 0 to 99 are those years (Go's zero time), not 1900 to 1999", () => {
    expect(toDateTime("0001-01-01T00:00:00Z", undefined)).toEqual(ok("0001-01-01T00:00:00Z"));
    expect(toDateTime("0099-12-31T23:59:59.5Z", undefined)).toEqual(ok("0099-12-31T23:59:59.500Z"));
    expect(toDateTime("0004-02-29T00:00:00Z", undefined)).toEqual(ok("0004-02-29T00:00:00Z")); // a leap year
    expect(toDateTime("0001-01-01T00:30:00+01:00", undefined)).toEqual(ok("0000-12-31T23:30:00Z"));
    // What `from: epoch` writes for the first instant of year 0 reads back as the same instant.
    const zero = toDateTime(-62167219200, "epoch") as { value: string };
    expect(toDateTime(zero.value, undefined)).toEqual(ok("0000-01-01T00:00:00Z"));
    for (const bad of ["0003-02-29T00:00:00Z", "0000-01-01T00:30:00+01:00"])
      expect(toDateTime(bad, undefined).ok, bad).toBe(false);
  });
});

function plan(extra: Partial<StreamPlan>): StreamPlan {
  return {
    name: "s",
    records: "$",
    fields: null,
    flatten: null,
    includeParent: null,
    ...extra,
  } as StreamPlan;
}

describe("shaping with field specs, exclude and filter", () => {
  it("converts, fills defaults for '' and null, renders values, and marks a failed conversion", () => {
    const shaper = compileShaper(
      plan({
        fields: [
          { name: "id", path: "$.id", multi: false, type: "integer" },
          { name: "amount", path: "$.amount", multi: false, type: "number", default: 0 },
          { name: "at", path: "$.ts", multi: false, type: "date-time", from: "epoch" },
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a field template, filled per record
          { name: "src", path: "", multi: false, value: "${pipeline}/${stream}/${run.id}" },
          { name: "k", path: "", multi: false, value: 7 },
        ],
      }),
      { runId: "r1", startedAt: "2024-01-01T00:00:00Z", pipeline: "p", stream: "s" },
    );
    expect(shaper.shape({ id: "42", amount: "", ts: 0 })).toEqual({
      id: 42,
      amount: 0,
      at: "1970-01-01T00:00:00Z",
      src: "p/s/r1",
      k: 7,
    });
    const bad = shaper.shape({ id: "4x", amount: null, ts: 1 })!;
    expect(bad.id).toBe("4x"); // the value as it came, for the quarantine
    const errs = (bad as Record<symbol, unknown>)[FIELD_ERRORS] as { field: string; message: string }[];
    expect(errs).toHaveLength(1);
    expect(errs[0].field).toBe("id");
    expect(errs[0].message).toContain('"4x"');
  });
  it("a parent value (`parent.x` in a field template) that is an object with a big integer is its JSON with every digit (not a crash)", () => {
    const shaper = compileShaper(
      plan({
        fields: [
          { name: "id", path: "$.id", multi: false },
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a field template, filled per record
          { name: "owner", path: "", multi: false, value: "${parent.owner}" },
        ],
      }),
    );
    expect(shaper.shape({ id: 1 }, { owner: { id: 12345678901234567890n, login: "acme" } })).toEqual({
      id: 1,
      owner: '{"id":12345678901234567890,"login":"acme"}',
    });
  });
  it("exclude removes dotted paths without changing the response's objects; filter drops records", () => {
    const shaper = compileShaper(
      plan({ exclude: [["big"], ["meta", "raw"]], filter: "@.type != 'bot' && @.amount > 0" }),
    );
    const rec = { type: "user", amount: 3, big: "x".repeat(10), meta: { raw: 1, keep: 2 } };
    expect(shaper.shape(rec)).toEqual({ type: "user", amount: 3, meta: { keep: 2 } });
    expect(rec.meta.raw).toBe(1);
    expect(shaper.shape({ type: "bot", amount: 3 })).toBeNull();
    expect(shaper.shape({ type: "user", amount: 0 })).toBeNull();
  });
  it("a record whose conversion failed is not passed to filter (it is invalid, not filtered)", () => {
    const shaper = compileShaper(
      plan({ fields: [{ name: "n", path: "$.n", multi: false, type: "integer" }], filter: "@.n > 0" }),
    );
    const row = shaper.shape({ n: "nope" });
    expect(row).not.toBeNull();
    expect((row as Record<symbol, unknown>)[FIELD_ERRORS]).toBeTruthy();
  });
});
