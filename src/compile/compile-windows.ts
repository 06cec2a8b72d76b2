import { DEFAULTS } from "../config/defaults.gen.js";
import type { Stream } from "../config/pipeline-types.gen.js";
import { parseTemplate } from "../config/templates.js";
import { parseDuration } from "../shared/units.js";
import type { StreamPlan } from "./plan.js";

/** `values`, `write`, `windows`, and the parent values that identify a partition. */
export function compileListsAndWindows(
  s: Stream,
): Pick<StreamPlan, "values" | "write" | "windows" | "partitionFields"> {
  const w = s.windows;
  return {
    values: s.values === undefined ? null : valuesOf(s.values),
    write: s.write ?? DEFAULTS.stream.write,
    windows: w
      ? {
          stepMs: parseDuration(w.step),
          start: w.start,
          end: w.end ?? DEFAULTS.windows.end,
          format: w.format ?? DEFAULTS.windows.format,
          lookbackMs: parseDuration(w.lookback ?? DEFAULTS.windows.lookback),
        }
      : null,
    partitionFields: s.parent === undefined ? [] : parentPaths([s.path, s.params, s.headers, s.body]),
  };
}

/**
 * The list's records: a map as it is, a scalar as `{ value: <scalar> }`. A string (one env
 * template, filled) is split on commas, spaces trimmed, empty items dropped: an env value set
 * but empty is an empty list.
 */
export function valuesOf(values: unknown): Record<string, unknown>[] {
  const items = Array.isArray(values)
    ? values
    : String(values)
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "");
  return items.map((v) =>
    v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v },
  );
}

/** Every `${parent.a.b}` in the request's strings, once each, in order of first use. */
function parentPaths(values: unknown[]): string[][] {
  const seen = new Map<string, string[]>();
  const visit = (v: unknown): void => {
    if (typeof v === "string") {
      let parts: ReturnType<typeof parseTemplate>["parts"];
      try {
        parts = parseTemplate(v).parts;
      } catch {
        return;
      }
      for (const p of parts)
        if (typeof p !== "string" && p.ns === "parent") seen.set(p.path.join("."), p.path);
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === "object") Object.values(v).forEach(visit);
  };
  values.forEach(visit);
  return [...seen.values()];
}
