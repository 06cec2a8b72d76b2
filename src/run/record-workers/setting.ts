import { availableParallelism } from "node:os";

/**
 * `source.workers` resolved: how many threads do record work, the main thread included (1: the
 * main thread alone). `auto`: min(cores − 1, 4) worker threads beside the main thread, and at
 * least one on a machine with two cores (measured: one worker thread beside the main one is where
 * a streamed export gains; see docs/page-workers-design.md and bench/exports.mjs).
 */
export function resolveWorkers(setting: number | "auto" | undefined, cores = availableParallelism()): number {
  if (setting === undefined) return 1;
  if (setting !== "auto") return setting;
  return cores < 2 ? 1 : 1 + Math.min(cores - 1, 4);
}
