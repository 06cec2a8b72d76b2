import type { StreamPlan } from "../compile/plan.js";
import { type CompiledPath, compileJsonPath } from "../lang/jsonpath.js";
import { MAX_NESTING, nestingError, setOwn } from "../shared/json-text.js";

export type Row = Record<string, unknown>;

/**
 * Per-stream record handling compiled once: select (`records`) → `fields` → `flatten` →
 * `include_parent`. The per-record functions do no parsing and no lookups by name.
 */
export interface Shaper {
  /** Records of a page: every match; a single matched array is unwrapped; null / no match → []. */
  select(body: unknown): unknown[];
  shape(record: unknown, parent?: Row): Row;
}

/** The parts of a stream's plan the shaper reads. */
export type ShapePlan = Pick<StreamPlan, "records" | "fields" | "flatten" | "includeParent">;

export function compileShaper(stream: ShapePlan): Shaper {
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
  if (stream.fields) {
    const fields = stream.fields.map((f) => ({
      name: f.name,
      path: compileJsonPath(f.path) as CompiledPath,
      multi: f.multi,
    }));
    steps.push((rec) => {
      const out: Row = {};
      for (const f of fields) {
        if (f.multi) setOwn(out, f.name, f.path.all(rec));
        else {
          const v = f.path.first(rec);
          setOwn(out, f.name, v === undefined ? null : v);
        }
      }
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
  const shape = (record: unknown, parent?: Row): Row => {
    let rec = record;
    for (const step of steps) rec = step(rec, parent);
    return (isPlainObject(rec) ? rec : { value: rec }) as Row;
  };
  return { select, shape };
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
