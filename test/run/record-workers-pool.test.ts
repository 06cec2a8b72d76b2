import { afterEach, describe, expect, it } from "vitest";
import { aliveRecordWorkers, RecordWorkerPool } from "../../src/run/record-workers/pool.js";
import { RunError } from "../../src/shared/errors.js";

/**
 * The record worker pool (src/run/record-workers/pool.ts) with the `echo` kind of test-kinds.ts,
 * run from the sources (the worker loads worker.ts through tsx, as the built CLI loads its bundle).
 */
type Echo = { text: string; n: number; thread: number };
const unit = (text: string, delayMs = 0) => {
  const bytes = new Uint8Array(Buffer.from(text));
  return [{ bytes, delayMs }, [bytes.buffer as ArrayBuffer]] as const;
};
const pools: RecordWorkerPool[] = [];
function pool(size: number, opts: { maxInFlight?: number; signal?: AbortSignal } = {}) {
  const p = new RecordWorkerPool(size, opts);
  pools.push(p);
  return p;
}
afterEach(async () => {
  for (const p of pools.splice(0)) await p.terminate();
});

async function noThreadsLeft(): Promise<void> {
  while (aliveRecordWorkers() > 0) await new Promise((r) => setTimeout(r, 10));
}

describe("record worker pool", () => {
  it("resolves results in submission order across workers, whatever order they finish in", async () => {
    const p = pool(2, { maxInFlight: 8 });
    const s = p.open<{ bytes: Uint8Array; delayMs: number }, Echo, { units: number }>(
      "echo",
      { prefix: "> " },
      { spread: true },
    );
    const order: number[] = [];
    // Even units are slow, odd ones fast: the second worker finishes first every time.
    const results = Array.from({ length: 8 }, (_, i) => {
      const [payload, transfer] = unit(`u${i}`, i % 2 === 0 ? 40 : 0);
      return s.submit(payload, [...transfer]).then((r) => {
        order.push(i);
        return r;
      });
    });
    const all = await Promise.all(results);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(all.map((r) => r.text)).toEqual(Array.from({ length: 8 }, (_, i) => `> U${i}`));
    // Two threads, each with its own state: lane 0 saw units 0, 2, 4, 6.
    expect(new Set(all.map((r) => r.thread)).size).toBe(2);
    expect(all.map((r) => r.n)).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
    expect(await s.end()).toEqual([{ units: 4 }, { units: 4 }]);
  });

  it("keeps a session's units in one worker, in order, and bounds the units in flight", async () => {
    const p = pool(2, { maxInFlight: 3 });
    const s = p.open<{ bytes: Uint8Array; delayMs: number }, Echo>("echo", { prefix: "" });
    let most = 0;
    const results: Promise<Echo>[] = [];
    for (let i = 0; i < 10; i++) {
      const wait = s.room();
      if (wait) await wait;
      const [payload, transfer] = unit(`x${i}`, 5);
      results.push(s.submit(payload, [...transfer]));
      most = Math.max(most, s.inFlight);
      expect(s.inFlight).toBeLessThanOrEqual(3);
    }
    expect(most).toBe(3);
    const all = await Promise.all(results);
    expect(all.map((r) => r.n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(new Set(all.map((r) => r.thread)).size).toBe(1);
    // The transferred buffer left this thread.
    const [payload, transfer] = unit("gone");
    void s.submit(payload, [...transfer]);
    expect(payload.bytes.byteLength).toBe(0);
  });

  it("surfaces a worker's RunError with its kind and details, and fails the session's later units", async () => {
    const s = pool(1).open<{ bytes: Uint8Array }, Echo>("echo", { prefix: "" });
    const ok = s.submit(...unit("a"));
    const bad = s.submit(...unit("fail"));
    const after = s.submit(...unit("b"));
    expect((await ok).text).toBe("A");
    const err = await bad.catch((e) => e);
    expect(err).toBeInstanceOf(RunError);
    expect(err).toMatchObject({
      kind: "bad_body",
      message: "line 3 of the unit is malformed",
      details: { line: 3 },
    });
    await expect(after).rejects.toMatchObject({ kind: "bad_body" });
  });

  it("a worker that dies rejects what it owed with an internal RunError", async () => {
    const s = pool(1).open<{ bytes: Uint8Array }, Echo>("echo", { prefix: "" });
    const dead = s.submit(...unit("crash", 0));
    const err = await dead.catch((e) => e);
    expect(err).toBeInstanceOf(RunError);
    expect(err.kind).toBe("internal");
    expect(err.message).toMatch(/record worker stopped \(exit code 7\)/);
  });

  it("abort (the run's signal, Ctrl-C) rejects the units in flight and leaves no thread", async () => {
    const ac = new AbortController();
    const p = pool(2, { signal: ac.signal });
    const s = p.open<{ bytes: Uint8Array; delayMs: number }, Echo>("echo", { prefix: "" }, { spread: true });
    await Promise.all([s.submit(...unit("up")), s.submit(...unit("up"))]);
    expect(aliveRecordWorkers()).toBe(2);
    const slow = [s.submit(...unit("a", 60_000)), s.submit(...unit("b", 60_000))];
    ac.abort();
    for (const r of slow) await expect(r).rejects.toMatchObject({ kind: "aborted" });
    await noThreadsLeft();
    expect(p.threads).toBe(0);
    expect(() => p.open("echo", { prefix: "" })).toThrow(RunError);
  });

  it("an unknown kind fails its units, not the pool", async () => {
    const p = pool(1);
    const s = p.open<{ bytes: Uint8Array }, Echo>("nope", {});
    await expect(s.submit(...unit("a"))).rejects.toMatchObject({ message: /no record worker kind "nope"/ });
    const t = p.open<{ bytes: Uint8Array }, Echo>("echo", { prefix: "" });
    expect((await t.submit(...unit("a"))).text).toBe("A");
  });
});
