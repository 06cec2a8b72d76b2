import { describe, expect, it } from "vitest";
import { OrderedSink } from "../../src/run/ordered-sink.js";

const tick = () => new Promise((r) => setImmediate(r));

describe("OrderedSink", () => {
  it("writes lanes in index order whatever order they finish in", async () => {
    const out: unknown[] = [];
    const sink = new OrderedSink((row) => void out.push(row));
    const [a, b, c] = [sink.lane(0), sink.lane(1), sink.lane(2)];
    await c.write({ v: "c1" });
    await b.write({ v: "b1" });
    await a.write({ v: "a1" });
    await c.close();
    await a.write({ v: "a2" });
    await a.close();
    await b.close();
    expect(out.map((r: any) => r.v)).toEqual(["a1", "a2", "b1", "c1"]);
  });

  it("an atomic lane writes nothing before it closes, even at the head; discard drops it whole", async () => {
    const out: unknown[] = [];
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
    expect(out.map((r: any) => r.v)).toEqual(["b1", "b2", "c1"]);
  });

  it("an atomic lane past `cap` records is written early (memory stays bounded) and discard says how many", async () => {
    const out: unknown[] = [];
    const sink = new OrderedSink((row) => void out.push(row), 3);
    const a = sink.lane(0, true);
    for (let i = 1; i <= 5; i++) await a.write({ v: i });
    expect(out.map((r: any) => r.v)).toEqual([1, 2, 3]);
    expect(a.discard()).toBe(3);
    await a.close();
    expect(out.map((r: any) => r.v)).toEqual([1, 2, 3]);
  });
});
