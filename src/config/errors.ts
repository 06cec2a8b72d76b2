/**
 * Config errors are data: a code, the file, a position, the key path, expected vs found.
 * They are collected (never thrown at the first one) and printed together.
 */
export type ConfigErrorCode =
  | "bad_name"
  | "not_found"
  | "yaml_syntax"
  | "duplicate_key"
  | "unknown_key"
  | "missing_key"
  | "wrong_type"
  | "bad_value"
  | "unknown_type"
  | "bad_duration"
  | "bad_size"
  | "bad_url"
  | "bad_jsonpath"
  | "bad_template"
  | "unknown_namespace"
  | "missing_env"
  | "schema_missing"
  | "schema_invalid"
  | "unknown_parent"
  | "parent_cycle"
  | "conflict"
  | "project_config"
  | "file_too_large"
  | "not_a_file";

export interface ConfigIssue {
  code: ConfigErrorCode;
  file: string;
  line: number;
  column: number;
  /** Key path such as `streams.issues.paginate.type` ("" for the whole file). */
  path: string;
  message: string;
  expected?: string;
  found?: string;
  hint?: string;
  /** The source line and a caret under the column, when the file text is known. */
  excerpt?: string;
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join("\n"));
    this.name = "ConfigError";
    this.issues = issues;
  }
}

export function formatIssue(issue: ConfigIssue): string {
  const where = `${issue.file}:${issue.line}:${issue.column}`;
  const lines = [`${where}: error[${issue.code}] ${issue.path ? `\`${issue.path}\`: ` : ""}${issue.message}`];
  if (issue.excerpt) lines.push(issue.excerpt);
  if (issue.hint) lines.push(`  hint: ${issue.hint}`);
  return lines.join("\n");
}

/** The source line at `line` (1-based) with a caret under `column`. */
export function excerptAt(text: string, line: number, column: number): string | undefined {
  const src = text.split(/\r?\n/)[line - 1];
  if (src === undefined) return undefined;
  const gutter = String(line).padStart(4);
  return `${gutter} | ${src}\n${" ".repeat(gutter.length)} | ${" ".repeat(Math.max(0, column - 1))}^`;
}

/** Describe a found value in an error: `fast`, a number 3, a list, a map, null. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") return `\`${value.length > 60 ? `${value.slice(0, 57)}...` : value}\``;
  return `${typeof value === "number" ? "the number" : "the boolean"} \`${String(value)}\``;
}

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** The closest candidate to `word`, when it is close enough to be a likely typo. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  const lower = word.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(2, Math.floor(best.length / 3));
  return bestDistance <= limit || best.toLowerCase().startsWith(lower) || lower.startsWith(best.toLowerCase())
    ? best
    : undefined;
}

/**
 * In file order, and each mistake once: text merged into several places (`<<: *anchor`) is
 * checked at each of them, but written once; the issue names the other places in its hint.
 */
export function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  const byPlace = new Map<string, { issue: ConfigIssue; also: string[] }>();
  for (const issue of issues) {
    const key = `${issue.file}:${issue.line}:${issue.column}:${issue.code}:${issue.message}`;
    const seen = byPlace.get(key);
    if (!seen) byPlace.set(key, { issue, also: [] });
    else if (issue.path && issue.path !== seen.issue.path && !seen.also.includes(issue.path))
      seen.also.push(issue.path);
  }
  const out = [...byPlace.values()].map(({ issue, also }) => {
    if (!also.length) return issue;
    const merged = `also at ${also.map((p) => `\`${p}\``).join(", ")}, which merge${also.length === 1 ? "s" : ""} this text`;
    return { ...issue, hint: issue.hint ? `${issue.hint}; ${merged}` : merged };
  });
  return out.sort((a, b) =>
    a.file === b.file ? a.line - b.line || a.column - b.column : a.file < b.file ? -1 : 1,
  );
}
