import type { FieldPlan, StreamPlan } from "../compile/plan.js";
import { type CompiledPath, compileJsonPath } from "../lang/jsonpath.js";
import { compileFilter } from "../lang/record-filter.js";
import { MAX_NESTING, nestingError, setOwn } from "../shared/json-text.js";
import {
  type ConversionError,
  converter,
  FIELD_ERRORS,
  type RecordContext,
  shown,
  usesWindow,
  valueField,
} from "./field-specs.js";

export type Row = Record<string, unknown>;

/**
 * Per-stream record handling compiled once: select (`records`) → `fields` → `exclude` → `flatten`
 * → `include_parent` → `filter`. The per-record functions do no parsing and no lookups by name.
 */
export interface Shaper {
  /** Records of a page: every match; a single matched array is unwrapped; null / no match → []. */
  select(body: unknown): unknown[];
  /**
   * The record as written, or null when `filter` drops it. A record a field's `type` could not
   * convert keeps the value as it came and carries its errors under FIELD_ERRORS (quality.ts makes
   * it invalid); it is not passed to `filter`.
   */
  shape(record: unknown, parent?: Row): Row | null;
  /**
   * The shaper for the records of one date window: itself, unless a `{ value }` field uses
   * `${window.…}` (then one compiled with the window's bounds).
   */
  forWindow(window: RecordContext["window"]): Shaper;
}

/** The parts of a stream's plan the shaper reads. */
export type ShapePlan = Pick<
  StreamPlan,
  "name" | "records" | "fields" | "exclude" | "flatten" | "includeParent" | "filter"
>;

export function compileShaper(stream: ShapePlan, ctx?: RecordContext): Shaper {
  const context = ctx ?? defaultContext(stream);
  const selector = compileJsonPath(stream.records);
  const select = (body: unknown): unknown[] => {
    if (stream.records === "$")
      return Array.isArray(body) ? body : body === null || body === undefined ? [] : [body];
    const matches = selector.all(body);
    if (matches.length === 1) {
      const only = matches[0];
      if (Array.isArray(only)) return only;
      return only === null || only === undefined ? [] : [only];
    }
    return matches.filter((m) => m !== undefined);
  };

  const steps: ((rec: unknown, parent?: Row) => unknown)[] = [];
  /** The conversion errors of the record being shaped (set by the fields step). */
  let pending: ConversionError[] | null = null;
  if (stream.fields) {
    const fields = stream.fields;
    steps.push(
      fieldsStep(fields, context, (e) => {
        (pending ??= []).push(e);
      }),
    );
  }
  if (stream.exclude) {
    const paths = stream.exclude;
    steps.push((rec) => {
      let out = rec;
      for (const p of paths) out = without(out, p, 0);
      return out;
    });
  }
  if (stream.flatten) {
    const sep = stream.flatten.separator;
    steps.push((rec) => (isPlainObject(rec) ? flatten(rec, sep) : rec));
  }
  if (stream.includeParent) {
    const copies = stream.includeParent;
    steps.push((rec, parent) => {
      const out: Row = isPlainObject(rec) ? { ...rec } : { value: rec };
      for (const c of copies) setOwn(out, c.field, parent ? (getPath(parent, c.from) ?? null) : null);
      return out;
    });
  }
  const filter = stream.filter ? compileFilter(stream.filter) : null;
  const shape = (record: unknown, parent?: Row): Row | null => {
    // A decoder may have found the record invalid already (a CSV row of the wrong width).
    pending =
      record !== null && typeof record === "object"
        ? (((record as Record<symbol, unknown>)[FIELD_ERRORS] as ConversionError[] | undefined) ?? null)
        : null;
    let rec = record;
    for (const step of steps) rec = step(rec, parent);
    const row = (isPlainObject(rec) ? rec : { value: rec }) as Row;
    if (pending) {
      // Invalid (quality.ts reads the errors): not passed to `filter`.
      (row as Record<symbol, unknown>)[FIELD_ERRORS] = pending;
      return row;
    }
    if (filter && !filter.test(row)) return null;
    return row;
  };
  const perWindow = stream.fields?.some((f) => usesWindow(f.value)) ?? false;
  const shaper: Shaper = {
    select,
    shape,
    forWindow: (window) => (perWindow && window ? compileShaper(stream, { ...context, window }) : shaper),
  };
  return shaper;
}

/** The `fields` step: plain JSONPaths on the fast path, else typed and computed fields. */
function fieldsStep(
  plans: FieldPlan[],
  ctx: RecordContext,
  failed: (e: ConversionError) => void,
): (rec: unknown, parent?: Row) => Row {
  const plain = plans.every((f) => f.type === undefined && f.value === undefined && f.default === undefined);
  if (plain) {
    const fields = plans.map((f) => ({
      name: f.name,
      path: compileJsonPath(f.path) as CompiledPath,
      multi: f.multi,
    }));
    return (rec) => {
      const out: Row = {};
      for (const f of fields) {
        if (f.multi) setOwn(out, f.name, f.path.all(rec));
        else {
          const v = f.path.first(rec);
          setOwn(out, f.name, v === undefined ? null : v);
        }
      }
      return out;
    };
  }
  const readers = plans.map((f) => fieldReader(f, ctx));
  return (rec, parent) => {
    const out: Row = {};
    for (const r of readers) {
      const v = r.read(rec, parent);
      if (v === CONVERSION_FAILED) {
        failed(r.lastError!);
        setOwn(out, r.name, r.raw);
      } else setOwn(out, r.name, v);
    }
    return out;
  };
}

const CONVERSION_FAILED = Symbol("conversion failed");

interface FieldReader {
  name: string;
  /** The value to write, or CONVERSION_FAILED (then `raw` and `lastError` say what and why). */
  read(rec: unknown, parent?: Row): unknown;
  raw: unknown;
  lastError: ConversionError | null;
}

/** One field of `fields`: a JSONPath, typed (`type`, `from`, `default`), or computed (`value`). */
function fieldReader(f: FieldPlan, ctx: RecordContext): FieldReader {
  const reader: FieldReader = { name: f.name, read: () => null, raw: undefined, lastError: null };
  if (f.value !== undefined || f.path === "") {
    const render = valueField(f.value ?? null, ctx, (parent, path) =>
      parent ? getPath(parent, path) : undefined,
    );
    reader.read = (_rec, parent) => render(parent);
    return reader;
  }
  const path = compileJsonPath(f.path);
  const convert = converter(f);
  const fallback = f.default === undefined ? null : f.default;
  const one = (v: unknown): unknown => {
    if (v === undefined || v === null || v === "") return fallback;
    if (!convert) return v;
    const c = convert(v);
    if (c.ok) return c.value;
    reader.raw = v;
    reader.lastError = {
      field: f.name,
      type: f.type!,
      value: v,
      message: `field \`${f.name}\`: ${shown(v)} ${c.message}${f.type === "date-time" ? "" : ` (type: ${f.type})`}`,
    };
    return CONVERSION_FAILED;
  };
  reader.read = f.multi
    ? (rec) => {
        const all = path.all(rec);
        const out: unknown[] = [];
        for (const v of all) {
          const c = one(v);
          if (c === CONVERSION_FAILED) {
            reader.raw = all;
            return c;
          }
          out.push(c);
        }
        return out;
      }
    : (rec) => one(path.first(rec));
  return reader;
}

function defaultContext(stream: { name: string }): RecordContext {
  return { runId: "", startedAt: new Date().toISOString(), pipeline: "", stream: stream.name };
}

/** `rec` without the dotted path `p` (objects along it copied, never changed in place). */
function without(rec: unknown, p: string[], i: number): unknown {
  if (!isPlainObject(rec) || !Object.hasOwn(rec, p[i])) return rec;
  const out: Row = { ...rec };
  if (i === p.length - 1) delete out[p[i]];
  else out[p[i]] = without(rec[p[i]], p, i + 1);
  return out;
}

export function isPlainObject(v: unknown): v is Row {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** `{a: {b: 1}}` → `{a_b: 1}`; arrays are values. */
export function flatten(rec: Row, sep: string, prefix = "", out: Row = {}, depth = 0): Row {
  if (depth >= MAX_NESTING) throw nestingError();
  for (const [k, v] of Object.entries(rec)) {
    const key = prefix ? `${prefix}${sep}${k}` : k;
    if (isPlainObject(v) && Object.keys(v).length > 0) flatten(v, sep, key, out, depth + 1);
    else setOwn(out, key, v);
  }
  return out;
}

/** The value at `path` (own fields only: `constructor` of a record without one is undefined). */
export function getPath(obj: unknown, path: readonly string[]): unknown {
  let cur: unknown = obj;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object" || !Object.hasOwn(cur, seg)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}
