import { closest } from "../errors.js";
import type { Stream } from "../pipeline-types.gen.js";
import { isMap } from "../plain-values.js";
import { type RuleIssue, ruleIssue } from "./rule.js";

/**
 * `streams.<name>.parent` and the keys that need one: a parent is another stream, parents make
 * no cycle, and `include_parent` / `on_partition_error` are written on child streams only.
 */
export function checkParents(streams: Record<string, Stream>): RuleIssue[] {
  const names = Object.keys(streams);
  const issues: RuleIssue[] = [];
  for (const name of names) {
    const s = streams[name];
    if (s && typeof s === "object") issues.push(...checkParent(name, s, streams));
  }
  return [...issues, ...checkCycles(streams)];
}

function checkParent(name: string, s: Stream, streams: Record<string, Stream>): RuleIssue[] {
  const names = Object.keys(streams);
  const issues: RuleIssue[] = [];
  const at = (key: string) => ["streams", name, key];
  if (typeof s.parent === "string") {
    if (s.parent === name)
      issues.push(ruleIssue("parent_cycle", at("parent"), `stream \`${name}\` cannot be its own parent`));
    else if (!streams[s.parent]) {
      const g = closest(
        s.parent,
        names.filter((n) => n !== name),
      );
      issues.push(
        ruleIssue(
          "unknown_parent",
          at("parent"),
          `no stream \`${s.parent}\`${g ? ` (did you mean \`${g}\`?)` : ""}; streams are ${names.join(", ")}`,
        ),
      );
    }
  }
  if (s.include_parent !== undefined && s.parent === undefined)
    issues.push(
      ruleIssue("conflict", at("include_parent"), "`include_parent` needs `parent`", { key: true }),
    );
  if (s.on_partition_error !== undefined && s.parent === undefined)
    issues.push(
      ruleIssue(
        "conflict",
        at("on_partition_error"),
        "`on_partition_error` applies to child streams (with `parent`)",
        {
          key: true,
        },
      ),
    );
  return issues;
}

/** Parent cycles (a → b → a), each reported once, at the stream it is first found from. */
function checkCycles(streams: Record<string, Stream>): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const reported = new Set<string>();
  const parentOf = (name: string): unknown => {
    const s = streams[name];
    return isMap(s) ? s.parent : undefined;
  };
  for (const start of Object.keys(streams)) {
    const chain: string[] = [start];
    let cur = parentOf(start);
    while (typeof cur === "string" && streams[cur] && cur !== start && !chain.includes(cur)) {
      chain.push(cur);
      cur = parentOf(cur);
    }
    if (cur === start && chain.length > 1 && !chain.some((c) => reported.has(c))) {
      for (const c of chain) reported.add(c);
      issues.push(
        ruleIssue(
          "parent_cycle",
          ["streams", start, "parent"],
          `parent cycle: ${[...chain, start].join(" → ")}`,
        ),
      );
    }
  }
  return issues;
}
