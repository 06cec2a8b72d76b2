import type { SourcePlan } from "../compile/plan.js";
import { quote, RunError } from "../shared/errors.js";
import type { HttpRequest, HttpResponse } from "./client.js";
import { checkMove } from "./origin-policy.js";
import type { RequestStats } from "./request-stats.js";
import type { Describer } from "./response-steps.js";

export const REDIRECTS = new Set([301, 302, 303, 307, 308]);
export const MAX_REDIRECTS = 5;

/**
 * The request a redirect (`r`, the answer to `current`) leads to: within the API's origin with
 * its credentials, to an origin of `allowed_hosts` without them, to any other origin not at all
 * (an error names it); 303, and 301/302 after a POST, continue with a GET, as browsers and
 * fetch() do. `request` is the first request of the chain, `hops` the redirects followed so far.
 */
export function redirected(
  shown: Describer,
  source: SourcePlan,
  request: HttpRequest,
  current: HttpRequest,
  r: HttpResponse,
  hops: number,
  stats: RequestStats,
): HttpRequest {
  const location = r.headers.location;
  let next: URL;
  try {
    next = new URL(location, current.url);
  } catch {
    throw new RunError(
      "http",
      `${shown.describe(current)} answered ${r.status} with a Location that is not a URL: ${quote(location, shown.redactor)}`,
      { status: r.status },
    );
  }
  const toGet = r.status === 303 || ((r.status === 301 || r.status === 302) && current.method === "POST");
  // A 307/308 resends the body: never one that carries a secret to another origin.
  checkMove(source, {
    how: `${shown.describe(current)} redirects (${r.status}) to`,
    via: "redirect",
    url: next.toString(),
    body: toGet ? undefined : current.body,
    mask: (t) => shown.redactor.text(t),
    showUrl: (u) => shown.redactUrl(u),
    details: { status: r.status },
  });
  if (hops >= MAX_REDIRECTS) {
    throw new RunError(
      "http",
      `${shown.describe(request)} was redirected more than ${MAX_REDIRECTS} times (last: ${r.status} to ${shown.redactUrl(next.toString())})`,
      { status: r.status },
    );
  }
  if (r.status === 301 || r.status === 308) {
    stats.movedPermanently.count++;
    stats.movedPermanently.first ??= `${shown.redactUrl(current.url)} → ${shown.redactUrl(next.toString())}`;
  }
  return toGet
    ? { ...current, url: next.toString(), method: "GET", body: undefined }
    : { ...current, url: next.toString() };
}
