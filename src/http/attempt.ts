import { interrupted, RunError, TransportError } from "../shared/errors.js";
import { type Redactor, SENSITIVE_HEADERS } from "../shared/secrets.js";
import { sleep } from "../shared/sleep.js";
import type { AuthProvider } from "./auth/auth.js";
import type { HttpClient, HttpRequest, HttpResponse } from "./client.js";
import type { RequestBudget } from "./rate-budget.js";
import { noteRateLimitWait, type RequestStats } from "./request-stats.js";
import type { Semaphore } from "./semaphore.js";

/** One attempt of a request, and the waits around it (slot, budget, backoff). */

/** The waits of one request: their signal, and a backoff pause. */
export interface Waits {
  signal: AbortSignal | undefined;
  pause(ms: number): Promise<void>;
}

/** What an attempt uses of the executor's session. */
export interface AttemptDeps {
  client: HttpClient;
  auth: AuthProvider;
  budget: RequestBudget;
  slots: Semaphore;
  signal?: AbortSignal;
}

/** The session's signal and a sequence's own (FetchHow.stop), as one. */
export function ownSignal(session: AbortSignal | undefined, stop: AbortSignal | undefined) {
  if (!stop || stop === session) return session;
  return session ? AbortSignal.any([session, stop]) : stop;
}

/** Times one attempt gives up its budget slot to renew a token that aged out while it waited. */
const MAX_RENEWALS = 3;

export const withdrawn = () => new RunError("aborted", "withdrawn: the page is no longer needed");

/**
 * The signal for waits (slot, budget, backoff): the run's, and `cancel` (a page no longer
 * needed) which ends them at once; `pause` is a backoff that ends with the right error.
 */
export function waitsFor(signal: AbortSignal | undefined, cancel?: AbortSignal): Waits {
  // One signal given twice (a streamed body's stop is the run's own): no composite. Node 20 keeps
  // every composite signal made from a long-lived one in that signal's list until it aborts.
  const waitSignal =
    cancel && signal && cancel !== signal ? AbortSignal.any([signal, cancel]) : (cancel ?? signal);
  const pause = async (ms: number) => {
    try {
      await sleep(ms, waitSignal);
    } catch {
      throw signal?.aborted ? interrupted() : withdrawn();
    }
  };
  return { signal: waitSignal, pause };
}

/**
 * One attempt: a connection slot first, then credentials, then the budget (its stamp is then
 * taken right before the request goes out, not while it waits for a slot), the request. The
 * budget's slot counts from the moment the request is written on the socket (`done` as the
 * client's `onSent`), or from its failure when it never gets that far. Credentials come before
 * the budget: a token refresh takes a budget slot of its own, and a slot taken counts until its
 * request is written, so a refresh waiting behind slots that wait for it would never end. A
 * transport failure is returned, to be retried or not by the caller.
 */
export async function sendAttempt(
  deps: AttemptDeps,
  base: HttpRequest,
  sameOrigin: boolean,
  stats: RequestStats,
  waits: Waits,
  cancel: AbortSignal | undefined,
  /**
   * The session's signal with the sequence's own (FetchHow.stop), when it has one (ownSignal): it
   * ends the wait for credentials and the request on the wire too.
   */
  own: AbortSignal | undefined,
): Promise<{ res: HttpResponse | null; failure: TransportError | null; sent: HttpRequest }> {
  const { client, auth, budget, slots } = deps;
  if (cancel?.aborted) throw withdrawn();
  let release: () => void;
  try {
    release = await slots.acquire(waits.signal);
  } catch (err) {
    if (own?.aborted) throw interrupted();
    if (cancel?.aborted) throw withdrawn();
    throw err;
  }
  let sent: HttpRequest = base;
  let ticket: { done: () => void } | null = null;
  try {
    if (cancel?.aborted) throw withdrawn();
    let req = sameOrigin ? await auth.apply(base, own, stats) : base;
    for (let renewals = 0; ; renewals++) {
      if (cancel?.aborted) throw withdrawn();
      const { waited, done } = await budget.begin(waits.signal);
      ticket = { done };
      if (waited > 0) {
        const now = Date.now();
        noteRateLimitWait(stats, now - waited, now);
      }
      // The token may have aged out while the request waited for its slot (a per-minute or
      // per-day budget): then the slot is given up — counted from now, as if used, so nothing
      // goes out uncounted —, the token refreshed with no slot held, and a new slot taken. At most
      // MAX_RENEWALS times: a token that outlives no wait for a slot (a lifetime shorter than the
      // budget's spacing) goes out as it is, and a 401 refreshes it once more.
      if (!sameOrigin || !auth.applyIfFresh || renewals >= MAX_RENEWALS) break;
      const fresh = auth.applyIfFresh(base);
      if (fresh) {
        req = fresh;
        break;
      }
      done();
      ticket = null;
      req = await auth.apply(base, own, stats);
    }
    if (cancel?.aborted) throw withdrawn();
    sent = req;
    stats.requests++;
    return { res: await client.send(req, own, ticket?.done), failure: null, sent };
  } catch (err) {
    if (err instanceof TransportError) return { res: null, failure: err, sent };
    if (own?.aborted) throw interrupted();
    if (cancel?.aborted) throw withdrawn();
    throw err;
  } finally {
    ticket?.done();
    release();
  }
}

/** The request without its credentials (headers that are sensitive or carry a secret value). */
export function stripCredentials(req: HttpRequest, redactor: Redactor): HttpRequest {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (SENSITIVE_HEADERS.has(k.toLowerCase())) continue;
    if (redactor.text(v) !== v) continue; // a header carrying a secret value
    headers[k] = v;
  }
  return { ...req, headers };
}
