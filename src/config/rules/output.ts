import { DEFAULTS } from "../defaults.gen.js";
import type { Output, Stream } from "../pipeline-types.gen.js";
import { fillTemplate, parseTemplate } from "../templates.js";
import { type RuleIssue, ruleIssue } from "./rule.js";

/** Formats that write every stream into one place (no `${stream}` needed in `path`). */
const SHARED_PATH_FORMATS = new Set(["sqlite", "singer", "duckdb"]);
// biome-ignore lint/suspicious/noTemplateCurlyInString: the literal `${stream}` placeholder
const STREAM_TABLE = "${stream}";
/** Formats that write tables: `table` and `nested` are theirs. */
const TABLE_FORMATS = new Set(["postgres", "duckdb"]);
/** Formats that can add `_run_id` and `_loaded_at` to every row. */
const METADATA_FORMATS = new Set(["postgres", "duckdb", "parquet"]);

/**
 * `output`: one file per stream (a file format with several streams needs `${stream}` in the
 * path); postgres needs `url`; `url`, `schema`, `table`, `metadata_columns` and `nested` belong
 * to the formats that use them; `nested: tables` links child rows by the parent's primary key,
 * so every stream needs one.
 */
export function checkOutput(output: Output | undefined, streams: Record<string, Stream>): RuleIssue[] {
  const format = output?.format ?? DEFAULTS.output.format;
  const outputPath = output?.path;
  const streamNames = Object.keys(streams);
  const issues: RuleIssue[] = [];
  if (
    typeof outputPath === "string" &&
    !SHARED_PATH_FORMATS.has(format) &&
    streamNames.length > 1 &&
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal `${stream}` placeholder
    !outputPath.includes("${stream}")
  )
    issues.push(
      ruleIssue(
        "conflict",
        ["output", "path"],
        `every stream would write to the same file: add \`\${stream}\` to the path (e.g. \`out/\${pipeline}/\${stream}.${format}\`)`,
      ),
    );
  issues.push(...sharedTables(output, format, streams));
  if (!output || typeof output !== "object") return issues;
  if (format === "postgres" && output.url === undefined)
    issues.push(
      ruleIssue(
        "missing_key",
        ["output"],
        // biome-ignore lint/suspicious/noTemplateCurlyInString: shows the user what to write
        "`output.format: postgres` needs `url`, the server's connection URL (a secret: `url: ${env.DATABASE_URL}`)",
        { key: true },
      ),
    );
  const misplaced = (key: string, where: string) =>
    issues.push(
      ruleIssue(
        "conflict",
        ["output", key],
        `\`output.${key}\` is a setting of ${where}; this output is \`${format}\``,
        {
          key: true,
        },
      ),
    );
  for (const key of ["url", "schema"] as const)
    if (output[key] !== undefined && format !== "postgres") misplaced(key, "postgres");
  for (const key of ["table", "nested"] as const)
    if (output[key] !== undefined && !TABLE_FORMATS.has(format))
      misplaced(key, "the database formats (postgres, duckdb)");
  if (output.metadata_columns !== undefined && !METADATA_FORMATS.has(format))
    misplaced("metadata_columns", "postgres, duckdb and parquet");
  if (output.nested === "tables" && TABLE_FORMATS.has(format)) {
    for (const [name, s] of Object.entries(streams)) {
      if (s && typeof s === "object" && s.primary_key === undefined)
        issues.push(
          ruleIssue(
            "missing_key",
            ["streams", name],
            "`output.nested: tables` links child rows to their parent row by primary key: this stream needs `primary_key`",
            { key: true },
          ),
        );
    }
  }
  return issues;
}

/**
 * Two streams of a pipeline writing one table of a database (postgres, duckdb, sqlite): their
 * loads would share a staging table and replace or mix each other's rows. A `table` without
 * `${stream}` gives every stream the same one; DuckDB and SQLite names ignore case, so streams
 * `Users` and `users` would write one table there (PostgreSQL quotes names: two tables).
 */
function sharedTables(
  output: Output | undefined,
  format: string,
  streams: Record<string, Stream>,
): RuleIssue[] {
  if (!TABLE_FORMATS.has(format) && format !== "sqlite") return [];
  const writing = Object.entries(streams).filter(
    ([, s]) => !(s && typeof s === "object" && s.write === false),
  );
  if (writing.length < 2) return [];
  // A file per stream (duckdb, sqlite: `path` with `${stream}`) holds one stream's tables only.
  const perStream = (text: string | undefined) => {
    if (typeof text !== "string") return false;
    try {
      return parseTemplate(text).parts.some((p) => typeof p !== "string" && p.ns === "stream");
    } catch {
      return false;
    }
  };
  if (format !== "postgres" && perStream(output?.path)) return [];
  const template = format !== "sqlite" && typeof output?.table === "string" ? output.table : STREAM_TABLE;
  // The table of each stream as compile-output.ts fills it (`${ stream }` is `${stream}`).
  const tableOf = (stream: string) => {
    try {
      return fillTemplate(parseTemplate(template).parts, (ns) => (ns === "stream" ? stream : `\u0000${ns}`));
    } catch {
      return template;
    }
  };
  if (!perStream(template))
    return [
      ruleIssue(
        "conflict",
        ["output", "table"],
        `every stream would write to the same table: add \`\${stream}\` to \`table\` (e.g. \`\${stream}\` or \`raw_\${stream}\`)`,
      ),
    ];
  const issues: RuleIssue[] = [];
  const seen = new Map<string, string>();
  const keyOf = (table: string) => (format === "postgres" ? table : table.toLowerCase());
  // Each table has `<table>__invalid` beside it (postgres, duckdb): no stream may write that one.
  const invalid = new Map<string, string>();
  if (format !== "sqlite")
    for (const [name] of writing) invalid.set(keyOf(`${tableOf(name)}__invalid`), name);
  for (const [name] of writing) {
    const own = tableOf(name);
    const owner = invalid.get(keyOf(own));
    if (owner !== undefined && owner !== name)
      issues.push(
        ruleIssue(
          "conflict",
          ["streams", name],
          `stream \`${name}\` would write table \`${own}\`, where stream \`${owner}\`'s invalid records go: rename one stream`,
          { key: true },
        ),
      );
  }
  for (const [name] of writing) {
    const table = tableOf(name);
    const key = format === "postgres" ? table : table.toLowerCase();
    const other = seen.get(key);
    if (other === undefined) {
      seen.set(key, name);
      continue;
    }
    issues.push(
      ruleIssue(
        "conflict",
        ["streams", name],
        `streams \`${other}\` and \`${name}\` would write one table (\`${table}\`${format === "postgres" ? "" : `: ${format} table names ignore case`}): rename one stream, or set \`write: false\` on it`,
        { key: true },
      ),
    );
  }
  return issues;
}
