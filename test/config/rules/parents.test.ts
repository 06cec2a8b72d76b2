import { describe, expect, it } from "vitest";
import { checkParents } from "../../../src/config/rules/parents.js";
import { codes } from "./helpers.js";

describe("rules/parents", () => {
  it("a parent is another stream", () => {
    expect(codes(checkParents({ a: { path: "/a", parent: "a" } }))).toEqual([
      ["parent_cycle", "streams.a.parent"],
    ]);
    const unknown = checkParents({ users: { path: "/u" }, repos: { path: "/r", parent: "user" } });
    expect(codes(unknown)).toEqual([["unknown_parent", "streams.repos.parent"]]);
    expect(unknown[0].message).toContain("did you mean `users`");
  });

  it("a cycle is reported once", () => {
    const issues = checkParents({
      a: { path: "/a", parent: "c" },
      b: { path: "/b", parent: "a" },
      c: { path: "/c", parent: "b" },
    });
    expect(codes(issues)).toEqual([["parent_cycle", "streams.a.parent"]]);
    expect(issues[0].message).toBe("parent cycle: a → c → b → a");
  });

  it("include_parent and on_partition_error belong to child streams", () => {
    expect(
      codes(checkParents({ a: { path: "/a", include_parent: { x: "$.x" }, on_partition_error: "skip" } })),
    ).toEqual([
      ["conflict", "streams.a.include_parent"],
      ["conflict", "streams.a.on_partition_error"],
    ]);
    expect(
      checkParents({ p: { path: "/p" }, c: { path: "/c", parent: "p", include_parent: { x: "$.x" } } }),
    ).toEqual([]);
  });
});
