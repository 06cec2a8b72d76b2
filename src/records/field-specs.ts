import type { FieldPlan } from "../compile/plan.js";
import { fillTemplate, parseTemplate } from "../config/templates.js";
import { stringifyJson } from "../shared/json-text.js";

/** A value that a field's `type` could not convert: the record is invalid (never the run). */
export interface ConversionError {
  field: string;
  type: string;
  /** The value as it came, shortened for reports. */
  value: unknown;
  message: string;
}

/** Conversion errors of a record, kept on it under a symbol (not a field: never written). */
export const FIELD_ERRORS: unique symbol = Symbol("field conversion errors");

export type Converted = { ok: true; value: unknown } | { ok: false; message: string };

const INTEGER = /^[+-]?\d+$/;
const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const ISO =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))$/;

/** 146,097 days: the Gregorian calendar repeats every 400 years. */
const GREGORIAN_400_YEARS_MS = 146_097 * 86_400_000;

const fail = (message: string): Converted => ({ ok: false, message });
const ok = (value: unknown): Converted => ({ ok: true, value });

/** `integer`: a number with no fraction, or a string of an optional sign and digits (spaces trimmed). */
export function toInteger(v: unknown): Converted {
  if (typeof v === "bigint") return ok(v);
  if (typeof v === "number") return Number.isInteger(v) ? ok(v) : fail("is not an integer");
  if (typeof v === "string") {
    const t = v.trim();
    if (!INTEGER.test(t)) return fail("is not an integer");
    const n = Number(t);
    return ok(Number.isSafeInteger(n) ? n : BigInt(t));
  }
  return fail("is not an integer");
}

/** `number`: a number, or a string in JSON number syntax (spaces trimmed). */
export function toNumber(v: unknown): Converted {
  if (typeof v === "number" || typeof v === "bigint") return ok(v);
  if (typeof v === "string") {
    const t = v.trim();
    if (!NUMBER.test(t)) return fail("is not a number");
    const n = Number(t);
    // An integer beyond 2^53 keeps its digits, as in a JSON body (parseJson): a BigInt.
    if (Number.isInteger(n) && !Number.isSafeInteger(n) && INTEGER.test(t)) return ok(BigInt(t));
    return Number.isFinite(n) ? ok(n) : fail("is out of range for a number");
  }
  return fail("is not a number");
}

/** `boolean`: true / false, or the strings `true` / `false` in any case. */
export function toBoolean(v: unknown): Converted {
  if (typeof v === "boolean") return ok(v);
  if (typeof v === "string") {
    const t = v.trim().toLowerCase();
    if (t === "true") return ok(true);
    if (t === "false") return ok(false);
  }
  return fail("is not `true` or `false`");
}

/** `string`: a string as it is; numbers and booleans as their JSON text; objects and arrays fail. */
export function toText(v: unknown): Converted {
  if (typeof v === "string") return ok(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return ok(stringifyJson(v));
  return fail(`is ${Array.isArray(v) ? "an array" : "an object"}, not a string`);
}

/** `YYYY-MM-DDTHH:MM:SSZ`, with milliseconds only when they are not zero. */
export function isoUtc(ms: number): string | null {
  if (!Number.isFinite(ms)) return null;
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  if (Number.isNaN(y) || y < 0 || y > 9999) return null;
  const s = d.toISOString();
  return s.endsWith(".000Z") ? `${s.slice(0, 19)}Z` : s;
}

/**
 * Epoch seconds or ms → ms, a finer fraction cut toward the past (as an ISO fraction's digits
 * beyond ms are): 1704067199.9996 s is 23:59:59.999, never the next day. Whole seconds (the usual
 * case) need no text; a fraction of seconds is cut in its shortest decimal text, not in `n * 1000`
 * (1704067200.123 * 1000 is 1704067200122.9998).
 */
function epochMs(n: number, from: "epoch" | "epoch_ms"): number {
  if (from === "epoch_ms" || !Number.isFinite(n)) return Math.floor(n);
  if (Number.isInteger(n)) return n * 1000;
  const t = String(n);
  const dot = t.indexOf(".");
  if (dot < 0 || t.includes("e")) return Math.floor(n * 1000); // far outside the range, or under 1 µs
  const frac = t.slice(dot + 1);
  const ms = Number(t.slice(t[0] === "-" ? 1 : 0, dot)) * 1000 + Number(frac.slice(0, 3).padEnd(3, "0"));
  if (t[0] !== "-") return ms;
  return -ms - (frac.length > 3 ? 1 : 0); // -0.0005 s is before -0 ms: -1 ms
}

/** `date-time`: with `from`, epoch seconds or ms (numbers or numeric strings); without, ISO 8601 with an offset. */
export function toDateTime(v: unknown, from: FieldPlan["from"]): Converted {
  if (from) {
    let n: number;
    if (typeof v === "number") n = v;
    else if (typeof v === "bigint") n = Number(v);
    else if (typeof v === "string" && NUMBER.test(v.trim())) n = Number(v.trim());
    else return fail(`is not a number of ${from === "epoch" ? "seconds" : "milliseconds"}`);
    const out = isoUtc(epochMs(n, from));
    if (out !== null) return ok(out);
    // Seconds past year 9999 are most likely milliseconds (13 digits since 2001).
    const ms = from === "epoch" && Math.abs(n) >= 1e11 && isoUtc(Math.floor(n)) !== null;
    return fail(`is out of range for a date-time${ms ? " (milliseconds? use `from: epoch_ms`)" : ""}`);
  }
  if (typeof v !== "string")
    return fail("is not an ISO 8601 date-time (a number needs `from: epoch` or `epoch_ms`)");
  const m = ISO.exec(v.trim());
  if (!m) return fail("is not an ISO 8601 date-time with a time zone offset (`Z` or `+02:00`)");
  const [, Y, Mo, D, h, mi, s, frac, z, sign, oh, om] = m;
  // Date.UTC reads years 0–99 as 1900–1999: such a year (Go's zero time `0001-01-01T00:00:00Z`)
  // is computed 400 years later, when the Gregorian calendar is the same, and moved back.
  const early = +Y < 100;
  const local =
    Date.UTC(
      early ? +Y + 400 : +Y,
      +Mo - 1,
      +D,
      +h,
      +mi,
      s ? +s : 0,
      frac ? +frac.slice(0, 3).padEnd(3, "0") : 0,
    ) - (early ? GREGORIAN_400_YEARS_MS : 0);
  const check = new Date(local);
  if (
    check.getUTCFullYear() !== +Y ||
    check.getUTCMonth() !== +Mo - 1 ||
    check.getUTCDate() !== +D ||
    +h > 23 ||
    +mi > 59 ||
    (s !== undefined && +s > 59) ||
    (!z && (+oh > 23 || +om > 59))
  )
    return fail("is not a valid date-time");
  const offset = z ? 0 : (sign === "-" ? -1 : 1) * (+oh * 60 + +om) * 60_000;
  const out = isoUtc(local - offset);
  return out === null ? fail("is out of range for a date-time") : ok(out);
}

export function converter(f: FieldPlan): ((v: unknown) => Converted) | null {
  switch (f.type) {
    case "integer":
      return toInteger;
    case "number":
      return toNumber;
    case "boolean":
      return toBoolean;
    case "string":
      return toText;
    case "date-time":
      return (v) => toDateTime(v, f.from);
    default:
      return null;
  }
}

/** What a computed `{ value }` field may refer to besides `${parent.…}`. */
export interface RecordContext {
  runId: string;
  startedAt: string;
  pipeline: string;
  stream: string;
  /** The date window the records come from (`${window.start}`, `end`, `last`), on a windowed stream. */
  window?: { start: string; end: string; last: string } | null;
}

/**
 * A `{ value }` field: a constant as it is; a string with templates filled per record (env values
 * were filled when the file was loaded; `${run.id}`, `${run.started_at}`, `${pipeline}`, `${stream}`
 * are the run's; `${window.…}` the window's (ctx.window); `${parent.x}` the parent record's field,
 * empty when it has none).
 */
export function valueField(
  value: unknown,
  ctx: RecordContext,
  parentValue: (parent: Record<string, unknown> | undefined, path: string[]) => unknown,
): (parent: Record<string, unknown> | undefined) => unknown {
  if (typeof value !== "string") return () => value;
  const { parts, dynamic } = parseTemplate(value);
  const text = parts.map((p) => (typeof p === "string" ? p : "")).join("");
  if (!dynamic) return () => text;
  const usesParent = parts.some((p) => typeof p !== "string" && p.ns === "parent");
  const fixed = (ns: string, path: string[]): unknown =>
    ns === "run"
      ? path[0] === "id"
        ? ctx.runId
        : ctx.startedAt
      : ns === "pipeline"
        ? ctx.pipeline
        : ns === "stream"
          ? ctx.stream
          : ns === "window"
            ? ctx.window?.[path[0] as "start" | "end" | "last"]
            : undefined;
  if (!usesParent) {
    const once = fillTemplate(parts, fixed);
    return () => once;
  }
  return (parent) =>
    fillTemplate(parts, (ns, path) => (ns === "parent" ? parentValue(parent, path) : fixed(ns, path)));
}

/** Whether a `{ value }` field uses `${window.…}` (its shaper is then made per window). */
export function usesWindow(value: unknown): boolean {
  return (
    typeof value === "string" &&
    parseTemplate(value).parts.some((p) => typeof p !== "string" && p.ns === "window")
  );
}

/** The value as shown in a conversion error: long strings cut. */
export function shown(v: unknown): string {
  const t =
    typeof v === "string" ? JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v) : stringifyJson(v);
  return t.length > 80 ? `${t.slice(0, 77)}...` : t;
}
