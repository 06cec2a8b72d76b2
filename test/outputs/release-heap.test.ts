/**
 * releaseHeap (src/outputs/release-heap.ts): the full collection the DuckDB and Parquet writers
 * run while DuckDB loads a large stream, without `--expose-gc` on the command line.
 */
import { setImmediate as turn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { RELEASE_HEAP_FROM_CHARS, releaseHeap } from "../../src/outputs/release-heap.js";

/** A WeakRef to an object nothing else holds (made in an earlier turn: V8 keeps a new target for the turn). */
async function unreachable(): Promise<WeakRef<object>> {
  const ref = new WeakRef({ payload: new Array(1000).fill("x") });
  await turn();
  await turn();
  return ref;
}

describe("releaseHeap", () => {
  it("collects the heap's garbage (a full collection: an unreachable object is gone)", async () => {
    const ref = await unreachable();
    expect(releaseHeap(RELEASE_HEAP_FROM_CHARS)).toBe(true);
    expect(ref.deref()).toBeUndefined();
  });

  it("does nothing for a small stream (below RELEASE_HEAP_FROM_CHARS staged)", () => {
    expect(releaseHeap(RELEASE_HEAP_FROM_CHARS - 1)).toBe(false);
  });
});
