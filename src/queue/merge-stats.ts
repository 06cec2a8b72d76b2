import type { RequestStats } from "../http/request-stats.js";
import type { StreamResult } from "../run/stream-result.js";
import type { UnitOutcome } from "./jobs.js";

/** Adds a worker's counters to the stream's result, as if the pull had run here. */
export function mergeOutcome(result: StreamResult, o: UnitOutcome): void {
  result.pages += o.pages;
  result.records.filtered += o.filtered;
  result.records.seen += o.filtered;
  result.suspicions.push(...o.suspicions);
  if (o.requests) mergeRequests(result.requests, o.requests);
}

function mergeRequests(into: RequestStats, add: RequestStats): void {
  into.requests += add.requests;
  for (const [k, n] of Object.entries(add.retries)) into.retries[k] = (into.retries[k] ?? 0) + n;
  into.rateLimitWaits.count += add.rateLimitWaits.count;
  into.rateLimitWaits.ms += add.rateLimitWaits.ms;
  into.movedPermanently.count += add.movedPermanently.count;
  into.movedPermanently.first ??= add.movedPermanently.first;
  into.unreadableRemaining.count += add.unreadableRemaining.count;
  into.unreadableRemaining.first ??= add.unreadableRemaining.first;
  into.ignored.count += add.ignored.count;
  for (const [k, n] of Object.entries(add.ignored.statuses))
    into.ignored.statuses[k] = (into.ignored.statuses[k] ?? 0) + n;
  into.ignored.partitions ||= add.ignored.partitions;
}
