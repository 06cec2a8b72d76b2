import type { ResponseRulePlan } from "../compile/plan.js";
import { compileJsonPath } from "../lang/jsonpath.js";
import { quote, RunError } from "../shared/errors.js";
import { NOT_JSON, parseJsonBytes, stringifyJson } from "../shared/json-text.js";
import type { Redactor } from "../shared/secrets.js";
import type { HttpResponse } from "./client.js";

/** The rule that decided a response, and what its `match` found. */
export interface RuleDecision {
  rule: ResponseRulePlan;
  /** The first match of `match`, when the rule has one. */
  matched?: unknown;
}

/**
 * A stream's `on_response` rules (stream rules, then the source's, then `error_path`), compiled
 * once. `decide` returns the first rule whose conditions all hold, or null (the built-in
 * behaviour). `match` reads the JSON body, parsed once per response and kept for the page
 * (`parsedBody`); a body that is not JSON matches nothing. A streamed body (jsonl, csv: `bodyless`)
 * is never buffered, so `match` and `body_contains` do not hold on it.
 */
export class ResponseRules {
  private readonly compiled: { rule: ResponseRulePlan; path: ReturnType<typeof compileJsonPath> | null }[];

  constructor(rules: readonly ResponseRulePlan[]) {
    this.compiled = rules.map((rule) => ({ rule, path: rule.match ? compileJsonPath(rule.match) : null }));
  }

  get size(): number {
    return this.compiled.length;
  }

  decide(r: HttpResponse, bodyless = false): RuleDecision | null {
    for (const { rule, path } of this.compiled) {
      if (!statusHolds(rule, r.status)) continue;
      if (rule.bodyContains !== null && (bodyless || !r.body.includes(rule.bodyContains))) continue;
      if (path) {
        if (bodyless) continue;
        const body = parsedBody(r);
        if (body === NOT_JSON) continue;
        const m = path.first(body);
        if (rule.hasEquals ? !sameValue(m, rule.equals) : isEmpty(m)) continue;
        return { rule, matched: m };
      }
      return { rule };
    }
    return null;
  }
}

function statusHolds(rule: ResponseRulePlan, status: number): boolean {
  if (rule.statuses === null && rule.classes === null) return true;
  return (
    (rule.statuses?.includes(status) ?? false) || (rule.classes?.includes(Math.floor(status / 100)) ?? false)
  );
}

/** Empty for `match`: no match, null, false, "", [] or {}. */
export function isEmpty(v: unknown): boolean {
  return (
    v === undefined ||
    v === null ||
    v === false ||
    v === "" ||
    (Array.isArray(v) && v.length === 0) ||
    (typeof v === "object" && Object.keys(v as object).length === 0)
  );
}

/** `equals`: the same JSON value (a number rule matches a number, `"42"` matches only the string). */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  if (typeof a === "bigint" || typeof b === "bigint") {
    // A big integer equals the same number (a BigInt or an integral number), never a string.
    const int = (v: unknown) => typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v));
    return int(a) && int(b) && BigInt(a as number) === BigInt(b as number);
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  return stringifyJson(a) === stringifyJson(b);
}

export { NOT_JSON };

const parsed = new WeakMap<HttpResponse, unknown>();

/** The response's JSON body, parsed once (NOT_JSON when it is not JSON; null when empty). */
export function parsedBody(r: HttpResponse): unknown {
  if (parsed.has(r)) return parsed.get(r);
  const v = parseJsonBytes(r.body);
  parsed.set(r, v);
  return v;
}

/** What a rule found, for messages: `$.error = "ratelimited"`. */
export function describeMatch(d: RuleDecision): string {
  if (!d.rule.match) return "";
  const v = d.matched;
  return `${d.rule.match} = ${typeof v === "string" ? v : stringifyJson(v)}`;
}

/** A page's body as JSON (parsedBody), or a `not_json` error saying what came instead, masked. */
export function parseBody(
  response: HttpResponse,
  request: { method: string },
  executor: { redactUrl(url: string): string; readonly redactor: Redactor },
): unknown {
  const parsed = parsedBody(response); // parsed once: the rules may have read it already
  if (parsed !== NOT_JSON) return parsed;
  const type = response.headers["content-type"] ?? "no content-type";
  throw new RunError(
    "not_json",
    `${request.method} ${executor.redactUrl(response.url)} answered ${response.status} (${quote(type, executor.redactor, 100)}) with a body that is not JSON: ${quote(response.body, executor.redactor, 200)}`,
  );
}
