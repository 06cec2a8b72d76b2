import { setTimeout as delay } from "node:timers/promises";
import { interrupted } from "./errors.js";

/** Resolves after `ms`, or rejects (an AbortError) as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason ?? new Error("aborted"));
  if (ms <= 0) return Promise.resolve();
  return delay(ms, undefined, { signal });
}

/**
 * `work`'s outcome, or `interrupted()` as soon as `signal` aborts (at once when it already has);
 * the listener is removed either way. `work` itself goes on: others may wait for it.
 */
export async function untilAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) throw interrupted();
  let leave = () => {};
  const left = new Promise<never>((_, reject) => {
    leave = () => reject(interrupted());
    signal.addEventListener("abort", leave, { once: true });
  });
  try {
    return await Promise.race([work, left]);
  } finally {
    signal.removeEventListener("abort", leave);
  }
}
