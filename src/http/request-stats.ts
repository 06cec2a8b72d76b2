import { plural } from "../shared/format.js";

/** Counters a stream keeps about its requests, shown in the summary and the report. */
export interface RequestStats {
  requests: number;
  /** Retries by cause: `status_503`, `reset`, `timeout`, `truncated`, `rate_limited`, `token_refresh`… */
  retries: Record<string, number>;
  rateLimitWaits: { count: number; ms: number };
  /** Redirects marked permanent (301, 308): the API moved, the pipeline should follow it. */
  movedPermanently: { count: number; first: string | null };
  /** Responses whose `rate_limit.remaining_header` was not a number (ignored), and the first value. */
  unreadableRemaining: { count: number; first: string | null };
  /** Responses an `on_response` rule ignored (each an empty last page), by status. */
  ignored: { count: number; statuses: Record<string, number>; partitions: boolean };
}

/** Where each stream's last counted rate-limit wait ends (epoch ms), and whether the API set it. */
const waitEnds = new WeakMap<RequestStats, { end: number; server: boolean }>();

/**
 * How long after the end of a pause the API asked for (Retry-After, a reset) a wait still counts
 * as its tail: the request held by the pause is released by a timer that may fire a millisecond
 * early against Date.now(), and then waits out the rest in the budget; a shared (Redis) pause is
 * rounded up to the next millisecond.
 */
const SERVER_PAUSE_TAIL_MS = 5;

/**
 * A rate-limit wait from `start` to `end` (epoch ms), counted as the stream's time held: the part
 * that overlaps a wait already counted is not counted again, and only a wait that starts after
 * the last one ended is a new one. A 429's pause holds every request of the pipeline: three
 * requests held by one 1 s pause are one wait of 1 s, not three (nor 3 s in a 1 s run). `server`:
 * the API asked for this wait; a wait that begins within SERVER_PAUSE_TAIL_MS of such a wait's
 * end is its tail, not a new wait.
 */
export function noteRateLimitWait(stats: RequestStats, start: number, end: number, server = false): void {
  const last = waitEnds.get(stats) ?? { end: Number.NEGATIVE_INFINITY, server: false };
  if (end <= last.end) return;
  const tail = last.server && start - last.end <= SERVER_PAUSE_TAIL_MS;
  if (start >= last.end && !tail) stats.rateLimitWaits.count++;
  stats.rateLimitWaits.ms += end - Math.max(start, last.end);
  waitEnds.set(stats, { end, server: server || tail });
}

export function newRequestStats(): RequestStats {
  return {
    requests: 0,
    retries: {},
    rateLimitWaits: { count: 0, ms: 0 },
    movedPermanently: { count: 0, first: null },
    unreadableRemaining: { count: 0, first: null },
    ignored: { count: 0, statuses: {}, partitions: false },
  };
}

/** The warnings a stream's request counters call for, in the summary and the report. */
export function requestWarnings(stats: RequestStats, remainingHeader: string | null): string[] {
  const out: string[] = [];
  const moved = stats.movedPermanently;
  if (moved.count) {
    out.push(
      `${moved.count} request${moved.count === 1 ? " was" : "s were"} redirected permanently (${moved.first}${moved.count > 1 ? ", …" : ""}): the API moved; point the pipeline at the new address`,
    );
  }
  const odd = stats.unreadableRemaining;
  if (odd.count) {
    out.push(
      `${plural(odd.count, "response")} had a \`${remainingHeader}\` header that is not a number (${odd.first}): ignored, no wait until reset was made for ${odd.count === 1 ? "it" : "them"}`,
    );
  }
  const ignored = stats.ignored;
  if (ignored.count) {
    const statuses = Object.keys(ignored.statuses).join(", ");
    const what = ignored.partitions ? "partition" : "response";
    out.push(
      `${plural(ignored.count, what)} answered ${statuses}, ignored (on_response: each ended as an empty last page)`,
    );
  }
  return out;
}
