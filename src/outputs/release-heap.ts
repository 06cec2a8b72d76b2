import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * V8's full garbage collection (`gc()` of `--expose-gc`), made available without the flag on the
 * command line: the flag is set at run time and the function taken from a new context, where V8
 * installs it. Null when this V8 does not give it.
 */
let gc: (() => void) | null | undefined;

function collector(): (() => void) | null {
  if (gc !== undefined) return gc;
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === "function") return (gc = own as () => void);
  try {
    setFlagsFromString("--expose-gc");
    const f: unknown = runInNewContext("gc");
    gc = typeof f === "function" ? (f as () => void) : null;
  } catch {
    gc = null;
  }
  return gc;
}

/**
 * Staged text (characters) from which a load is worth a full collection first: below it, the
 * young generation alone is about what a collection would give back.
 */
export const RELEASE_HEAP_FROM_CHARS = 4 * 1024 * 1024;

/**
 * A long run's staging collects the heap every this many characters staged, from twice as many:
 * during a long fetch V8 lets its old generation fill with garbage before it collects it, and
 * the peak RSS of a 2,000,000-record run came from there (Node's heap beside DuckDB's library).
 * Measured at 2,000,000 records (about 360 MiB staged): peak RSS 210 → 182 MiB, each collection
 * 15–35 ms; a 200,000-record run (36 MiB) has none.
 */
export const RELEASE_HEAP_EVERY_CHARS = 32 * 1024 * 1024;

let releases = 0;

/** How many collections releaseHeap ran in this process (for tests). */
export function heapReleases(): number {
  return releases;
}

/**
 * Runs a full garbage collection when a stream staged `stagedChars` ≥ RELEASE_HEAP_FROM_CHARS:
 * called while DuckDB loads the staged records on its own thread (Node's thread waits for it
 * anyway), so that the pages of JavaScript heap the fetching left as garbage (tens of MiB after
 * 200,000 records) go back to the system before DuckDB's memory peaks — the process's peak RSS is
 * the sum of both. Measured on the bench's 200,000 records: peak RSS about 10 MiB lower for duckdb
 * and 5 MiB for parquet. Returns whether it collected.
 */
export function releaseHeap(stagedChars: number): boolean {
  if (stagedChars < RELEASE_HEAP_FROM_CHARS) return false;
  const f = collector();
  if (!f) return false;
  f();
  releases++;
  return true;
}

/** Bytes of JavaScript heap in use (after a collection: what the run keeps). */
export function heapInUse(): number {
  return getHeapStatistics().used_heap_size;
}
