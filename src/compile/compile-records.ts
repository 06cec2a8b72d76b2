import { DEFAULTS } from "../config/defaults.gen.js";
import type { FieldSpec, ResponseRule, Source, Stream } from "../config/pipeline-types.gen.js";
import { compileJsonPath } from "../lang/jsonpath.js";
import { parseDuration } from "../shared/units.js";
import type { FieldPlan, ResponsePlan, ResponseRulePlan } from "./plan.js";

/** `fields`: a JSONPath, `{ path, type, from, default }` or `{ value }`. */
export function compileFields(fields: Stream["fields"]): FieldPlan[] | null {
  if (!fields) return null;
  return Object.entries(fields).map(([name, spec]): FieldPlan => {
    if (typeof spec === "string") return { name, path: spec, multi: compileJsonPath(spec).multi };
    const s = spec as FieldSpec & { default?: unknown; value?: unknown };
    if (Object.hasOwn(s, "value")) return { name, path: "", multi: false, value: s.value };
    const path = s.path ?? "$";
    const out: FieldPlan = { name, path, multi: compileJsonPath(path).multi };
    if (s.type) out.type = s.type;
    if (s.from) out.from = s.from;
    if (Object.hasOwn(s, "default")) out.default = s.default;
    return out;
  });
}

/** Stream rules first, then the source's, then `error_path` as the last rule. */
export function compileRules(name: string, stream: Stream, source: Source): ResponseRulePlan[] {
  const rules = [
    ...(stream.on_response ?? []).map((r, i) => compileRule(r, `streams.${name}.on_response[${i}]`)),
    ...(source.on_response ?? []).map((r, i) => compileRule(r, `source.on_response[${i}]`)),
  ];
  if (stream.error_path)
    rules.push({
      at: `streams.${name}.error_path`,
      statuses: null,
      classes: [2],
      match: stream.error_path,
      hasEquals: false,
      equals: undefined,
      bodyContains: null,
      action: "fail",
      message: null,
      waitMs: null,
    });
  return rules;
}

function compileRule(r: ResponseRule, at: string): ResponseRulePlan {
  const conds = r.status === undefined ? [] : Array.isArray(r.status) ? r.status : [r.status];
  const statuses = conds.filter((c): c is number => typeof c === "number");
  const classes = conds.filter((c): c is string => typeof c === "string").map((c) => Number(c[0]));
  const hasEquals = Object.hasOwn(r, "equals");
  return {
    at,
    statuses: statuses.length ? statuses : null,
    classes: classes.length ? classes : null,
    match: r.match ?? null,
    hasEquals,
    equals: hasEquals ? (r.equals as unknown) : undefined,
    bodyContains: r.body_contains ?? null,
    action: r.action,
    message: r.message ?? null,
    waitMs: r.wait === undefined ? null : parseDuration(r.wait),
  };
}

export function compileResponse(r: Stream["response"]): ResponsePlan {
  return {
    format: r?.format ?? DEFAULTS.response.format,
    csv: {
      delimiter: r?.csv?.delimiter ?? DEFAULTS.response_csv.delimiter,
      header: r?.csv?.header ?? DEFAULTS.response_csv.header,
    },
    compression: r?.compression ?? DEFAULTS.response.compression,
  };
}

/** `exclude: [a.b]` → `[["a", "b"]]`. */
export function compileExclude(exclude: Stream["exclude"]): string[][] | null {
  return exclude?.length ? exclude.map((p) => p.split(".")) : null;
}
