import { checkFilter } from "../../lang/record-filter.js";
import { DEFAULTS } from "../defaults.gen.js";
import type { FieldSpec, ResponseRule, Source, Stream } from "../pipeline-types.gen.js";
import { isMap } from "../plain-values.js";
import type { KeyPath } from "../yaml-source.js";
import { jsonPathIssues, keyValue, type RuleIssue, ruleIssue } from "./rule.js";

/**
 * Format 1.1 record and response keys: `on_response` rules (source and stream), typed and
 * computed `fields`, `filter`, and `response` formats with the keys they cannot take.
 */
export function checkResponseRules(rules: unknown, at: KeyPath, authType: unknown): RuleIssue[] {
  if (!Array.isArray(rules)) return [];
  return rules.flatMap((r, i) =>
    isMap(r) ? checkRule(r as unknown as ResponseRule, [...at, i], authType) : [],
  );
}

function checkRule(rule: ResponseRule, at: KeyPath, authType: unknown): RuleIssue[] {
  const issues = jsonPathIssues([...at, "match"], rule.match);
  const has = (k: string) => keyValue(rule, k) !== undefined;
  // A misspelled condition (`stauts`) is the format check's unknown key: one problem, one issue.
  const known = ["status", "match", "equals", "body_contains", "action", "message", "wait"];
  const misspelled = Object.keys(rule).some((k) => !known.includes(k));
  if (!misspelled && !has("status") && !has("match") && !has("body_contains"))
    issues.push(
      ruleIssue(
        "missing_key",
        at,
        "a response rule needs a condition: `status`, `match` or `body_contains`",
        {
          key: true,
          expected: "`status`, `match` or `body_contains`",
        },
      ),
    );
  if (has("equals") && !has("match"))
    issues.push(
      ruleIssue("conflict", [...at, "equals"], "`equals` compares the first match of `match`: add `match`", {
        key: true,
      }),
    );
  if (has("wait") && rule.action !== "retry")
    issues.push(ruleIssue("conflict", [...at, "wait"], "`wait` goes with `action: retry`", { key: true }));
  if (rule.action === "refresh_auth" && authType !== "oauth2")
    issues.push(
      ruleIssue(
        "conflict",
        [...at, "action"],
        "`action: refresh_auth` gets a fresh OAuth2 token: it needs `source.auth.type: oauth2`",
        { found: typeof authType === "string" ? `auth.type ${authType}` : "no auth" },
      ),
    );
  return issues;
}

/** A stream's `fields` specs, `exclude`, `filter`, `on_response` and `response`. */
export function checkRecordKeys(name: string, s: Stream, source: Source | undefined): RuleIssue[] {
  const at = (...rest: (string | number)[]): KeyPath => ["streams", name, ...rest];
  const authType = isMap(source?.auth) ? keyValue(source.auth, "type") : undefined;
  const issues = checkResponseRules(s.on_response, at("on_response"), authType);
  if (isMap(s.fields))
    for (const [f, spec] of Object.entries(s.fields))
      if (isMap(spec)) issues.push(...checkFieldSpec(spec as FieldSpec, at("fields", f)));
  if (typeof s.filter === "string") {
    const err = checkFilter(s.filter);
    if (err)
      issues.push(
        ruleIssue("bad_value", at("filter"), err, {
          found: s.filter,
          expected: "a filter expression like `@.type != 'bot' && @.amount > 0`",
        }),
      );
  }
  if (Array.isArray(s.exclude))
    s.exclude.forEach((p, i) => {
      if (typeof p === "string" && (p.startsWith(".") || p.endsWith(".") || p.includes("..")))
        issues.push(ruleIssue("bad_value", at("exclude", i), `\`${p}\` is not a dotted path like \`a.b\``));
    });
  issues.push(...checkResponseFormat(s, at));
  return issues;
}

function checkFieldSpec(spec: FieldSpec, at: KeyPath): RuleIssue[] {
  const has = (k: string) => keyValue(spec, k) !== undefined;
  const issues = jsonPathIssues([...at, "path"], spec.path);
  if (has("path") === has("value"))
    issues.push(
      ruleIssue(
        has("path") ? "conflict" : "missing_key",
        at,
        has("path")
          ? "a field has a `path` (read from the record) or a `value` (a constant or template), not both"
          : "a field map needs `path` (a JSONPath into the record) or `value` (a constant or template)",
        { key: true },
      ),
    );
  if (has("value"))
    for (const k of ["type", "from", "default"])
      if (has(k))
        issues.push(
          ruleIssue("conflict", [...at, k], `\`${k}\` goes with \`path\`, not with \`value\``, { key: true }),
        );
  if (has("from") && spec.type !== "date-time")
    issues.push(
      ruleIssue(
        "conflict",
        [...at, "from"],
        "`from` reads epoch numbers into a date-time: it needs `type: date-time`",
        {
          key: true,
          found: typeof spec.type === "string" ? `type: ${spec.type}` : "no type",
        },
      ),
    );
  return issues;
}

const PAGINATE_PATHS = ["cursor", "has_more", "done", "total", "total_pages", "next"];
const STREAMED_PAGINATORS = ["none", "link_header", "offset", "page", "cursor"];

/** `jsonl` and `csv` are read as they arrive: no `records`, no JSONPath into the body for paging. */
function checkResponseFormat(s: Stream, at: (...rest: (string | number)[]) => KeyPath): RuleIssue[] {
  const format = isMap(s.response) ? (s.response.format ?? DEFAULTS.response.format) : "json";
  const issues: RuleIssue[] = [];
  if (s.response?.csv !== undefined && format !== "csv")
    issues.push(
      ruleIssue("conflict", at("response", "csv"), "`csv` options go with `format: csv`", {
        key: true,
        found: `format: ${format}`,
      }),
    );
  issues.push(...checkDelimiter(s, at));
  if (format !== "jsonl" && format !== "csv") return issues;
  const why = `with \`response.format: ${format}\` (the body is read as it arrives, record by record)`;
  if (s.records !== undefined)
    issues.push(
      ruleIssue("conflict", at("records"), `\`records\` is not used ${why}: remove it`, { key: true }),
    );
  const pg = s.paginate;
  if (isMap(pg)) {
    for (const k of PAGINATE_PATHS)
      if (keyValue(pg, k) !== undefined)
        issues.push(
          ruleIssue(
            "conflict",
            at("paginate", k),
            `\`${k}\` is a JSONPath into a JSON body: not available ${why}`,
            {
              key: true,
              hint: "use `link_header`, `offset`, `page` (counted in records) or `cursor` with `cursor_header`",
            },
          ),
        );
    const type = keyValue(pg, "type");
    if (typeof type === "string" && !STREAMED_PAGINATORS.includes(type))
      issues.push(
        ruleIssue(
          "conflict",
          at("paginate", "type"),
          `\`type: ${type}\` reads the next page from a JSON body: not available ${why}`,
          {
            hint: "use `link_header`, `offset`, `page` (counted in records) or `cursor` with `cursor_header`",
          },
        ),
      );
  }
  if (s.error_path !== undefined)
    issues.push(
      ruleIssue("conflict", at("error_path"), `\`error_path\` reads a JSON body: not available ${why}`, {
        key: true,
      }),
    );
  return issues;
}

/** A delimiter that is a quote or a line break would cut cells where rows or quoted cells end. */
function checkDelimiter(s: Stream, at: (...rest: (string | number)[]) => KeyPath): RuleIssue[] {
  const csv = isMap(s.response) ? s.response.csv : undefined;
  const d = isMap(csv) ? keyValue(csv, "delimiter") : undefined;
  if (typeof d !== "string" || d === "") return [];
  const why =
    d === '"' || d === "\n" || d === "\r"
      ? "a double quote or a line break cannot separate cells"
      : d.length === 2 && d.codePointAt(0)! > 0xffff // one character in two UTF-16 units (the format allows it)
        ? "a character outside the Basic Multilingual Plane cannot be a delimiter"
        : null; // longer: the format check's `maxLength` says so
  if (!why) return [];
  return [
    ruleIssue("bad_value", at("response", "csv", "delimiter"), `\`delimiter\`: ${why}`, {
      found: JSON.stringify(d),
      expected: "one character such as `,`, `;`, `\\t` or `|`",
    }),
  ];
}
