import { DEFAULTS } from "../defaults.gen.js";
import type { Output } from "../pipeline-types.gen.js";
import { type RuleIssue, ruleIssue } from "./rule.js";

/** `output`: one file per stream (a file format with several streams needs `${stream}` in the path). */
export function checkOutput(output: Output | undefined, streamNames: readonly string[]): RuleIssue[] {
  const format = output?.format ?? DEFAULTS.output.format;
  const outputPath = output?.path;
  if (
    typeof outputPath === "string" &&
    format !== "sqlite" &&
    streamNames.length > 1 &&
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal `${stream}` placeholder
    !outputPath.includes("${stream}")
  )
    return [
      ruleIssue(
        "conflict",
        ["output", "path"],
        `every stream would write to the same file: add \`\${stream}\` to the path (e.g. \`out/\${pipeline}/\${stream}.${format}\`)`,
      ),
    ];
  return [];
}
