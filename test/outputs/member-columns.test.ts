import { describe, expect, it } from "vitest";
import { MemberColumns } from "../../src/outputs/member-columns.js";

describe("MemberColumns", () => {
  it("looks a column up once per name and position, again where the name at a position changes", () => {
    const asked: string[] = [];
    const table = new Map([
      ["a", 1],
      ["b", 2],
    ]);
    const columns = new MemberColumns<number>((name) => {
      asked.push(name);
      return table.get(name);
    });
    expect([columns.at(0, "a"), columns.at(1, "b")]).toEqual([1, 2]);
    expect([columns.at(0, "a"), columns.at(1, "b")]).toEqual([1, 2]);
    expect(asked).toEqual(["a", "b"]);
    // Another record: `b` first; a name the table lacks is asked each time (not kept).
    expect([columns.at(0, "b"), columns.at(1, "c"), columns.at(1, "c")]).toEqual([2, undefined, undefined]);
    expect(asked).toEqual(["a", "b", "b", "c", "c"]);
    table.set("c", 3);
    expect(columns.at(1, "c")).toBe(3);
    expect(columns.at(1, "c")).toBe(3);
    expect(asked).toEqual(["a", "b", "b", "c", "c", "c"]);
  });
});
