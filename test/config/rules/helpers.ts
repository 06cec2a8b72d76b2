import type { RuleIssue } from "../../../src/config/rules/rule.js";
import { formatKeyPath } from "../../../src/config/yaml-source.js";

/** Issues as `[code, key path]` pairs, for compact assertions. */
export function codes(issues: RuleIssue[]): [string, string][] {
  return issues.map((i) => [i.code, formatKeyPath(i.path)]);
}
