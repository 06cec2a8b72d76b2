import { checkJsonPath } from "../../lang/jsonpath.js";
import type { ConfigErrorCode, ConfigIssue } from "../errors.js";
import type { KeyPath } from "../yaml-source.js";

/**
 * What the component rules (rules/*.ts) share. A rule is a function of one component of the
 * config, typed on the generated types (pipeline-types.gen.ts), that returns the problems it
 * finds by key path; the loader adds the file positions.
 *
 * Rules run after the format check, and also when it reported issues (every issue is reported
 * at once): a value the format rejected may have another shape than its type says, so rules
 * test a value's type before they rely on it.
 */
export interface RuleIssue extends Pick<ConfigIssue, "expected" | "found" | "hint"> {
  code: ConfigErrorCode;
  path: KeyPath;
  message: string;
  /** At the key rather than at its value (a missing or misplaced key). */
  key?: boolean;
}

export function ruleIssue(
  code: ConfigErrorCode,
  path: KeyPath,
  message: string,
  extra: Omit<RuleIssue, "code" | "path" | "message"> = {},
): RuleIssue {
  return { code, path, message, ...extra };
}

/** An HTTP header name (RFC 9110 token). */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A JSONPath that does not parse; nothing for a value that is no string (the format says so). */
export function jsonPathIssues(path: KeyPath, value: unknown): RuleIssue[] {
  if (typeof value !== "string") return [];
  const err = checkJsonPath(value);
  return err
    ? [
        ruleIssue("bad_jsonpath", path, `JSONPath does not parse: ${err}`, {
          found: value,
          expected: "a JSONPath like `$.data`",
        }),
      ]
    : [];
}

/** The value of `key` in a map of any type (a key its type may not have: the format reports it). */
export function keyValue(map: object, key: string): unknown {
  return Object.hasOwn(map, key) ? (map as Record<string, unknown>)[key] : undefined;
}
