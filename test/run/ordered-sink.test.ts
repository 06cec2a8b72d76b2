import { describe, expect, it } from "vitest";
import { OrderedSink } from "../../src/run/ordered-sink.js";

const tick = () => new Promise((r) => setImmediate(r));

describe("OrderedSink", () => {
  it("writes lanes in index order whatever order they finish in", async () => {
    const out: Record<string, unknown>[] = [];
    const sink = new OrderedSink((row) => void out.push(row));
    const [a, b, c] = [sink.lane(0), sink.lane(1), sink.lane(2)];
    await c.write({ v: "c1" });
    await b.write({ v: "b1" });
    await a.write({ v: "a1" });
    await c.close();
    await a.write({ v: "a2" });
    await a.close();
    await b.close();
    expect(out.map((r) => r.v)).toEqual(["a1", "a2", "b1", "c1"]);
  });

  it("an atomic lane writes nothing before it closes, even at the head; discard drops it whole", async () => {
    const out: Record<string, unknown>[] = [];
    const sink = new OrderedSink((row) => void out.push(row));
    const [a, b, c] = [sink.lane(0, true), sink.lane(1, true), sink.lane(2, true)];
    await a.write({ v: "a1" });
    await b.write({ v: "b1" });
    await c.write({ v: "c1" });
    expect(out).toEqual([]); // `a` is the head, but atomic
    expect(a.discard()).toBe(0);
    await a.close();
    await b.write({ v: "b2" });
    await tick();
    expect(out).toEqual([]); // `b` is now the head: still held back until it closes
    await b.close();
    await c.close();
    expect(out.map((r) => r.v)).toEqual(["b1", "b2", "c1"]);
  });

  it("an atomic lane past `cap` records is written early (memory stays bounded) and discard says how many", async () => {
    const out: Record<string, unknown>[] = [];
    const sink = new OrderedSink((row) => void out.push(row), 3);
    const a = sink.lane(0, true);
    for (let i = 1; i <= 5; i++) await a.write({ v: i });
    expect(out.map((r) => r.v)).toEqual([1, 2, 3]);
    expect(a.discard()).toBe(3);
    await a.close();
    expect(out.map((r) => r.v)).toEqual([1, 2, 3]);
  });

  it("room() holds back new lanes while `total` records wait behind a slow head, and lets them go as it drains", async () => {
    const out: Record<string, unknown>[] = [];
    const sink = new OrderedSink((row) => void out.push(row), 100, 5);
    const head = sink.lane(0);
    const quick = [sink.lane(1), sink.lane(2)];
    for (const [i, lane] of quick.entries()) {
      for (let k = 0; k < 3; k++) await lane.write({ v: `${i + 1}.${k}` });
      await lane.close();
    }
    // 6 records wait for the head: no room for a 4th lane.
    let roomy = false;
    const room = sink.room().then(() => (roomy = true));
    await tick();
    expect(roomy).toBe(false);
    await head.write({ v: "0.0" }); // the head writes straight through
    await tick();
    expect(roomy).toBe(false);
    await head.close(); // the waiting lanes are written: room again
    await room;
    expect(out.map((r) => r.v)).toEqual(["0.0", "1.0", "1.1", "1.2", "2.0", "2.1", "2.2"]);
  });

  it("room() does not wait once the stream has failed", async () => {
    const sink = new OrderedSink(() => undefined, 100, 1);
    sink.lane(0);
    const b = sink.lane(1);
    await b.write({ v: 1 });
    const room = sink.room();
    sink.stop();
    await room;
  });

  it("after a failed write, stop() releases a lane waiting for its turn (no hang)", async () => {
    const sink = new OrderedSink((row) => {
      if (row.bad) throw new Error("invalid record");
      return undefined;
    }, 2);
    const head = sink.lane(0);
    const failing = sink.lane(1);
    await failing.write({ bad: true });
    await failing.close();
    const waiting = sink.lane(2);
    await waiting.write({ v: 1 });
    const blocked = waiting.write({ v: 2 }); // its buffer is full: it waits for its turn
    // The head ends; writing lane 1's records fails, as `invalid_records: fail` does.
    await expect(head.close()).rejects.toThrow("invalid record");
    sink.stop();
    await expect(blocked).rejects.toThrow("the stream failed");
    await expect(waiting.write({ v: 3 })).rejects.toThrow("the stream failed");
  });

  it("a lane that closes while the previous head's advance is flushing it is committed once, and no lane is skipped", async () => {
    // Slow writes and an asynchronous commit (a checkpoint): lane 1 closes while lane 0's close is
    // still flushing lane 1's buffered records. Two advances at once used to move the head twice,
    // leaving lane 2's records buffered for ever (lost, the stream still `ok`).
    const out: string[] = [];
    const done: number[] = [];
    const sink = new OrderedSink(
      (row) => new Promise<void>((r) => setImmediate(() => r(void out.push(row.v as string)))),
      5000,
      20000,
      async (i) => {
        await tick();
        done.push(i);
      },
    );
    const [a, b, c] = [sink.lane(0), sink.lane(1), sink.lane(2)];
    await b.write({ v: "b1" });
    await b.write({ v: "b2" });
    await c.write({ v: "c1" });
    const closingA = a.close();
    // Let lane 0's commit finish and the flush of lane 1 start, then close lane 1 and lane 2.
    await tick();
    await tick();
    const closingB = b.close();
    const closingC = c.close();
    await Promise.all([closingA, closingB, closingC]);
    expect(out).toEqual(["b1", "b2", "c1"]);
    expect(done).toEqual([0, 1, 2]);
  });
});
