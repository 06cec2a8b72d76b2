import { DEFAULTS } from "../defaults.gen.js";
import { closest } from "../errors.js";
import type { Output, Stream } from "../pipeline-types.gen.js";
import type { KeyPath } from "../yaml-source.js";
import { jsonPathIssues, type RuleIssue, ruleIssue } from "./rule.js";

/**
 * `streams.<name>` (its own keys; `paginate`, `parent` and `schema` have their own rules):
 * JSONPaths parse, a body goes with POST, key fields are output fields, merge has a key.
 */
export function checkStream(name: string, s: Stream, output: Output | undefined): RuleIssue[] {
  const at = (...rest: (string | number)[]): KeyPath => ["streams", name, ...rest];
  const issues = [
    ...jsonPathIssues(at("records"), s.records),
    ...jsonPathIssues(at("error_path"), s.error_path),
  ];
  if (s.fields && typeof s.fields === "object")
    for (const [f, p] of Object.entries(s.fields)) issues.push(...jsonPathIssues(at("fields", f), p));
  const method = s.method ?? DEFAULTS.stream.method;
  if (s.body !== undefined && method !== "POST")
    issues.push(
      ruleIssue("conflict", at("body"), "a `body` is sent only with `method: POST`", { key: true }),
    );
  if (s.incremental?.in === "body" && method !== "POST")
    issues.push(ruleIssue("conflict", at("incremental", "in"), "`in: body` needs `method: POST`"));
  issues.push(...checkFieldNames(s, at));
  if ((output?.mode ?? DEFAULTS.output.mode) === "merge" && s.primary_key === undefined)
    issues.push(
      ruleIssue(
        "missing_key",
        at(),
        "`output.mode: merge` upserts by primary key: this stream needs `primary_key`",
        {
          key: true,
        },
      ),
    );
  return issues;
}

/** Output field names the other keys refer to, when they are known without data. */
function checkFieldNames(s: Stream, at: (...rest: (string | number)[]) => KeyPath): RuleIssue[] {
  if (!s.fields || typeof s.fields !== "object" || s.flatten) return [];
  const fieldNames = new Set([...Object.keys(s.fields), ...Object.keys(s.include_parent ?? {})]);
  const notAField = (k: string, path: KeyPath) => {
    const g = closest(k, fieldNames);
    return ruleIssue(
      "bad_value",
      path,
      `\`${k}\` is not an output field${g ? ` (did you mean \`${g}\`?)` : ""}; fields are ${[...fieldNames].join(", ")}`,
    );
  };
  const pk = s.primary_key;
  const keys: unknown[] = Array.isArray(pk) ? pk : typeof pk === "string" ? [pk] : [];
  const issues = keys.flatMap((k, i) =>
    typeof k === "string" && k !== "" && !fieldNames.has(k)
      ? [notAField(k, Array.isArray(pk) ? at("primary_key", i) : at("primary_key"))]
      : [],
  );
  const cf = s.incremental?.cursor_field;
  if (typeof cf === "string" && !fieldNames.has(cf))
    issues.push(notAField(cf, at("incremental", "cursor_field")));
  return issues;
}
