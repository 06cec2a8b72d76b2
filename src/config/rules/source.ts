import { formatDuration, parseDuration } from "../../shared/units.js";
import { DEFAULTS } from "../defaults.gen.js";
import type { Source } from "../pipeline-types.gen.js";
import { type RuleIssue, ruleIssue } from "./rule.js";

/** `source`: a base URL that parses, retry delays in order, allowed hosts that are origins. */
export function checkSource(source: Source | undefined): RuleIssue[] {
  if (!source || typeof source !== "object") return [];
  return [...checkBaseUrl(source.base_url), ...checkRetry(source.retry), ...checkHosts(source.allowed_hosts)];
}

function checkBaseUrl(base: unknown): RuleIssue[] {
  // Only a base_url that has the format's shape (the format check reports the others once).
  if (typeof base !== "string" || !/^https?:\/\/[^\s/?#]+[^\s]*$/.test(base)) return [];
  try {
    new URL(base);
    return [];
  } catch {
    return [ruleIssue("bad_url", ["source", "base_url"], `\`${base}\` is not a valid URL`)];
  }
}

/** Milliseconds of a duration, or null when it does not parse (the format reports it). */
function ms(v: unknown): number | null {
  try {
    return typeof v === "string" || typeof v === "number" ? parseDuration(v) : null;
  } catch {
    return null;
  }
}

function checkRetry(retry: Source["retry"]): RuleIssue[] {
  if (!retry || typeof retry !== "object") return [];
  const initial = ms(retry.initial_delay ?? DEFAULTS.retry.initial_delay);
  const max = ms(retry.max_delay ?? DEFAULTS.retry.max_delay);
  if (initial === null || max === null || initial <= max) return [];
  return [
    ruleIssue(
      "conflict",
      ["source", "retry", retry.initial_delay !== undefined ? "initial_delay" : "max_delay"],
      `\`initial_delay\` (${formatDuration(initial)}) is longer than \`max_delay\` (${formatDuration(max)}): the first wait cannot exceed the longest one`,
    ),
  ];
}

function checkHosts(hosts: Source["allowed_hosts"]): RuleIssue[] {
  if (!Array.isArray(hosts)) return [];
  return hosts.flatMap((h, i) => {
    if (typeof h !== "string") return [];
    try {
      new URL(h.includes("://") ? h : `https://${h}`);
      return [];
    } catch {
      return [
        ruleIssue(
          "bad_url",
          ["source", "allowed_hosts", i],
          `\`${h}\` is not an origin like \`https://cdn.example.com\``,
        ),
      ];
    }
  });
}
