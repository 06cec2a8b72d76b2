import { quote, RunError, TransportError } from "../shared/errors.js";
import { plural } from "../shared/format.js";
import { stringifyJson } from "../shared/json-text.js";
import type { Redactor } from "../shared/secrets.js";
import type { HttpRequest, HttpResponse } from "./client.js";
import type { StopReason } from "./paginators/paginator.js";
import type { RequestStats } from "./request-stats.js";
import { describeMatch, type ResponseRules, type RuleDecision } from "./response-rules.js";

/**
 * What a response means for the request that got it, by the stream's `on_response` rules:
 * done, retry, refresh the credentials, or left to the status (builtin); and the errors a rule's
 * `fail` makes.
 */

/** How requests are named in messages (the executor): URLs and bodies masked. */
export interface Describer {
  readonly redactor: Redactor;
  describe(req: HttpRequest): string;
  redactUrl(url: string): string;
}

/** How a stream fetches: its response rules, and how a streamed body is read. */
export interface FetchHow {
  rules?: ResponseRules;
  /**
   * Reads a streamed 2xx body (HttpRequest.streamed). A TransportError it throws (a reset or a
   * truncated body mid-way) is retried as a new attempt, within `retry.max_attempts`.
   */
  consume?: (r: HttpResponse) => Promise<void>;
  /**
   * The request sequence's own signal (a queue job's: its worker's session has none). Unlike
   * `cancel` (a page no longer needed), it also ends a request on the wire and a body being read.
   */
  stop?: AbortSignal;
}

export type RuleStep =
  | { kind: "done" }
  | { kind: "builtin" }
  | { kind: "retry"; decision: RuleDecision }
  | { kind: "refresh"; decision: RuleDecision };

/**
 * A streamed body is read here, inside the attempt: a transport fault while it is read (a reset,
 * a truncated body) comes back to be retried like any other; null when it was read (or needs no reading).
 */
export async function consumeBody(res: HttpResponse, how: FetchHow): Promise<TransportError | null> {
  if (!res.stream || !how.consume || res.ignored) return null;
  try {
    await how.consume(res);
    return null;
  } catch (err) {
    if (err instanceof TransportError) return err;
    throw err;
  }
}

function countIgnored(stats: RequestStats, status: number): void {
  stats.ignored.count++;
  stats.ignored.statuses[status] = (stats.ignored.statuses[status] ?? 0) + 1;
}

export function count(stats: RequestStats, cause: string): void {
  stats.retries[cause] = (stats.retries[cause] ?? 0) + 1;
}

/**
 * What the stream's `on_response` rules make of a response: `done` (a success, or ignored: the
 * response is returned), `retry`, `refresh`, or `builtin` (no rule holds: the status decides).
 * `fail` throws here.
 */
export function applyRule(
  shown: Describer,
  request: HttpRequest,
  r: HttpResponse,
  how: FetchHow,
  stats: RequestStats,
  attempt: number,
  refreshed: boolean,
): RuleStep {
  const decision = how.rules?.decide(r, r.stream !== undefined) ?? null;
  const ok = r.status >= 200 && r.status < 300;
  if (!decision) return ok ? { kind: "done" } : { kind: "builtin" };
  // A streamed 2xx body that a rule decided on is never read: given up, its connection freed.
  if (r.stream) {
    r.discard?.();
    r.stream = undefined;
  }
  switch (decision.rule.action) {
    case "ignore":
      countIgnored(stats, r.status);
      r.ignored = { at: decision.rule.at, message: decision.rule.message };
      return { kind: "done" };
    case "fail":
      throw ruleError(shown, request, r, decision, attempt);
    case "retry":
      return { kind: "retry", decision };
    case "refresh_auth":
      if (refreshed) throw ruleError(shown, request, r, decision, attempt, " (after a token refresh)");
      return { kind: "refresh", decision };
  }
}

/** A rule's `fail` (or a retry or refresh that did not help): the rule, what it matched, its message. */
export function ruleError(
  shown: Describer,
  req: HttpRequest,
  r: HttpResponse,
  d: RuleDecision,
  attempts: number,
  note = "",
): RunError {
  const mask = shown.redactor;
  const matched = d.matched === undefined ? "" : describeMatch(d);
  if (d.rule.at.endsWith(".error_path"))
    return new RunError(
      "api_error",
      `${shown.describe(req)} answered ${r.status} with an error at ${d.rule.match}: ${quote(typeof d.matched === "string" ? d.matched : stringifyJson(d.matched), mask)}`,
      { status: r.status },
    );
  const body = r.status >= 200 && r.status < 300 ? "" : quote(r.body, mask);
  return new RunError(
    d.rule.action === "fail" && r.status >= 200 && r.status < 300 ? "api_error" : "http",
    `${shown.describe(req)} answered ${r.status}${matched ? ` (${quote(matched, mask, 200)})` : ""} after ${plural(attempts, "attempt")}${note}: ${d.rule.message ? `${quote(d.rule.message, mask)} ` : ""}(on_response rule ${d.rule.at}, action ${d.rule.action})${body ? `: ${body}` : ""}`,
    { status: r.status, attempts, rule: d.rule.at },
  );
}

/** How a sequence ends on an `ignore` rule: after its first page, cut short (checkpoints.ts). */
export function ignoredStop(status: number, at: string, page: number): StopReason {
  return page === 1
    ? { code: "ignored", message: `answered ${status}, ignored by on_response (${at})` }
    : {
        code: "ignored_later",
        message: `page ${page} answered ${status}, ignored by on_response (${at}): the pages after it were not read, so the position is not saved`,
        warning: true,
      };
}
