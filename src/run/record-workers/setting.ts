import { availableParallelism } from "node:os";

/** Below this many cores, `auto` keeps the record work on the main thread (see resolveWorkers). */
export const AUTO_MIN_CORES = 4;

/**
 * `source.workers` resolved: how many threads do record work, the main thread included (1: the
 * main thread alone, as before workers existed). `auto`: with at least 4 cores, min(cores − 1, 4)
 * worker threads beside the main thread; below that, none. Measured on 2 shared cores
 * (bench/exports.mjs, load 12–16): a worker thread beside the main one cost 17–24% more CPU and
 * about 40 MiB more peak RSS (183 vs 143 MiB: over the 150 MiB target) and was not faster, since
 * no core was spare; the gain needs a core of its own (docs/page-workers-design.md).
 */
export function resolveWorkers(setting: number | "auto" | undefined, cores = availableParallelism()): number {
  if (setting === undefined) return 1;
  if (setting !== "auto") return setting;
  return cores < AUTO_MIN_CORES ? 1 : 1 + Math.min(cores - 1, 4);
}
