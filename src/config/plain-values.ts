import type { KeyPath } from "./yaml-source.js";

/** Helpers for plain values: a YAML or project config file read as JavaScript. */

/** A map (an object that is not a list). */
export function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Every string in a plain value, with its key path. */
export function stringsOf(value: unknown, at: (string | number)[]): [(string | number)[], string][] {
  if (typeof value === "string") return [[at, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => stringsOf(v, [...at, i]));
  if (value && typeof value === "object")
    return Object.entries(value).flatMap(([k, v]) => stringsOf(v, [...at, k]));
  return [];
}

/** Whether the key path leads to a value in `obj`. */
export function hasPath(obj: unknown, p: KeyPath): boolean {
  let cur: unknown = obj;
  for (const seg of p) {
    if (!cur || typeof cur !== "object" || !(seg in cur)) return false;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return true;
}

/** Maps merged key by key (`over` wins); lists and other values are replaced. */
export function deepMerge(base: Record<string, unknown>, over: unknown): unknown {
  if (!over || typeof over !== "object" || Array.isArray(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = base[k];
    out[k] = isMap(b) && isMap(v) ? deepMerge(b, v) : v;
  }
  return out;
}
