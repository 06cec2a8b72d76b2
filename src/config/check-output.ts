import type { ConfigIssue } from "./errors.js";
import type { YamlSource } from "./yaml-source.js";

const TABLE_KEYS = ["table", "metadata_columns", "nested"] as const;
const DATABASE_FORMATS = new Set(["postgres", "duckdb"]);

/**
 * Cross-key rules of `output` for the database and singer formats: `url` is required for
 * postgres; `url`, `schema`, `table`, `metadata_columns` and `nested` belong to the formats that
 * use them; `nested: tables` links child rows by the parent's primary key, so every stream needs
 * one.
 */
export function checkOutput(cfg: Record<string, any>, src: YamlSource, issues: ConfigIssue[]): void {
  const output = cfg.output;
  if (!output || typeof output !== "object") return;
  const format = output.format ?? "jsonl";
  if (format === "postgres" && output.url === undefined)
    issues.push(
      src.issue(
        "missing_key",
        ["output"],
        // biome-ignore lint/suspicious/noTemplateCurlyInString: shows the user what to write
        "`output.format: postgres` needs `url`, the server's connection URL (a secret: `url: ${env.DATABASE_URL}`)",
        { key: true },
      ),
    );
  const misplaced = (key: string, where: string) =>
    issues.push(
      src.issue(
        "conflict",
        ["output", key],
        `\`output.${key}\` is a setting of ${where}; this output is \`${format}\``,
        { key: true },
      ),
    );
  for (const key of ["url", "schema"])
    if (output[key] !== undefined && format !== "postgres") misplaced(key, "postgres");
  for (const key of TABLE_KEYS)
    if (output[key] !== undefined && !DATABASE_FORMATS.has(format))
      misplaced(key, "the database formats (postgres, duckdb)");
  if (output.nested === "tables" && DATABASE_FORMATS.has(format)) {
    const streams = cfg.streams && typeof cfg.streams === "object" ? cfg.streams : {};
    for (const [name, s] of Object.entries(streams as Record<string, any>)) {
      if (s && typeof s === "object" && s.primary_key === undefined)
        issues.push(
          src.issue(
            "missing_key",
            ["streams", name],
            "`output.nested: tables` links child rows to their parent row by primary key: this stream needs `primary_key`",
            { key: true },
          ),
        );
    }
  }
}
