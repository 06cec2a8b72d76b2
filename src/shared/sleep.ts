import { setTimeout as delay } from "node:timers/promises";

/** Resolves after `ms`, or rejects (an AbortError) as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason ?? new Error("aborted"));
  if (ms <= 0) return Promise.resolve();
  return delay(ms, undefined, { signal });
}
