/** JSONPath compilation (lang/jsonpath.ts): direct walks for simple paths, jsonpath-plus for the rest. */
import { JSONPath } from "jsonpath-plus";
import { afterEach, describe, expect, it, vi } from "vitest";
import { checkJsonPath, compileJsonPath } from "../../src/lang/jsonpath.js";

const DOC = {
  data: [
    { id: 1, x: 5, tags: ["a"] },
    { id: 2, x: 0, tags: [] },
    { id: 3, x: 9, tags: ["b", "c"] },
  ],
  "@odata.nextLink": "https://api.test/items?$skip=3",
  "a b": { "c.d": true },
  meta: { total: 3, next: null },
};

/** Counts the evaluations jsonpath-plus does (a spy that calls through). */
function librarySpy() {
  return vi.spyOn(JSONPath.prototype, "evaluate");
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("simple member paths are direct property walks", () => {
  const cases: [string, unknown][] = [
    ["$.meta.total", 3],
    ["$.data[0].id", 1],
    ["$['data'][2]['id']", 3],
    ["$.data[-1].id", 3],
    ["$.data[-3].id", 1],
    ["$['@odata.nextLink']", "https://api.test/items?$skip=3"],
    ['$["a b"]["c.d"]', true],
    ["$.meta.next", null],
  ];
  for (const [path, want] of cases) {
    it(`${path} → ${JSON.stringify(want)}, without jsonpath-plus`, () => {
      const spy = librarySpy();
      const p = compileJsonPath(path);
      expect(p.multi).toBe(false);
      expect(p.first(DOC)).toEqual(want);
      expect(p.all(DOC)).toEqual([want]);
      expect(spy).not.toHaveBeenCalled();
    });
  }

  it("a missing member: first is undefined, all is empty; a walk through a primitive stops", () => {
    for (const path of ["$.nope", "$.meta.total.x", "$.data[7].id", "$.data[-9]", "$.meta.next.x"]) {
      const p = compileJsonPath(path);
      expect(p.first(DOC), path).toBeUndefined();
      expect(p.all(DOC), path).toEqual([]);
    }
  });

  it("reads own fields only: inherited members are not there, `__proto__` as data is", () => {
    expect(compileJsonPath("$.constructor").first({})).toBeUndefined();
    expect(compileJsonPath("$.toString").first({ a: 1 })).toBeUndefined();
    const parsed = JSON.parse('{"__proto__": {"polluted": 1}}');
    expect(compileJsonPath("$.__proto__.polluted").first(parsed)).toBe(1);
    expect(compileJsonPath("$.__proto__.polluted").first({})).toBeUndefined();
  });

  it("an index on an object is its member of that name, as jsonpath-plus reads it", () => {
    expect(compileJsonPath("$.m[0]").first({ m: { "0": "zero" } })).toBe("zero");
    expect(compileJsonPath("$.m[-1]").first({ m: { "-1": "minus" } })).toBeUndefined();
  });

  it("the root `$` is the document itself", () => {
    expect(compileJsonPath("$").first(DOC)).toBe(DOC);
    expect(compileJsonPath("$").all([1, 2])).toEqual([[1, 2]]);
  });

  it("a path compiles once: the same compiled object comes back", () => {
    expect(compileJsonPath("$.meta.total")).toBe(compileJsonPath("$.meta.total"));
  });
});

describe("other paths go through jsonpath-plus", () => {
  const cases: [string, unknown[]][] = [
    ["$.data[*].id", [1, 2, 3]],
    ["$.data[-1:].id", [3]],
    ["$.data[-2:].id", [2, 3]],
    ["$.data[:2].id", [1, 2]],
    ["$.data[-1].tags[*]", ["b", "c"]],
    ["$.data[0,2].id", [1, 3]],
    ["$..id", [1, 2, 3]],
    ["$.data[?(@.x > 1)].id", [1, 3]],
    ["$.data[?(@.tags.length == 0)].id", [2]],
  ];
  for (const [path, want] of cases) {
    it(`${path} → ${JSON.stringify(want)}`, () => {
      const spy = librarySpy();
      const p = compileJsonPath(path);
      expect(p.all(DOC)).toEqual(want);
      expect(p.first(DOC)).toEqual(want[0]);
      expect(spy).toHaveBeenCalled();
    });
  }

  it("multi says whether a path can match several values", () => {
    for (const path of ["$.data[*]", "$.data[1:]", "$.data[?(@.x)]", "$..id", "$.data[0,1]", "$.*"]) {
      expect(compileJsonPath(path).multi, path).toBe(true);
    }
    expect(compileJsonPath("$.data[(@.length-1)]").multi).toBe(false);
  });

  it("no match: all is empty and first undefined; on a primitive document only `$` matches", () => {
    const p = compileJsonPath("$.data[?(@.x > 100)].id");
    expect(p.all(DOC)).toEqual([]);
    expect(p.first(DOC)).toBeUndefined();
    expect(compileJsonPath("$.data[*]").all(7)).toEqual([]);
    expect(compileJsonPath("$.data[*]").first(null)).toBeUndefined();
  });
});

describe("filters run in jsonpath-plus's safe evaluator, never native eval", () => {
  const key = "__pipelinesJsonpathProbe";
  afterEach(() => {
    delete (globalThis as Record<string, unknown>)[key];
  });
  const attempts = [
    `$.data[?(globalThis.${key} = 1)]`,
    `$.data[?(@.constructor.constructor('globalThis.${key} = 1')())]`,
    `$.data[?(eval('globalThis.${key} = 1'))]`,
    `$.data[?(Function('globalThis.${key} = 1')())]`,
    `$.data[?(process.env.${key} = '1')]`,
    `$.data[?(this.${key} = 1)]`,
  ];
  for (const path of attempts) {
    it(`${path}: parses, matches nothing, runs nothing`, () => {
      expect(checkJsonPath(path)).toBeNull();
      expect(compileJsonPath(path).all(DOC)).toEqual([]);
      expect((globalThis as Record<string, unknown>)[key]).toBeUndefined();
      expect(process.env[key]).toBeUndefined();
    });
  }

  it("`constructor` is not a member the evaluator reads", () => {
    // Natively every object has one, and this would match all three records.
    expect(compileJsonPath("$.data[?(@.constructor)].id").all(DOC)).toEqual([]);
  });
});

describe("syntax checks", () => {
  const bad: [string, RegExp][] = [
    ["data", /starts with `\$`/],
    ["$.", /expected a name or `\*` after `\.`/],
    ["$..", /expected a name, `\*` or `\[` after `\.\.`/],
    ["$.data[", /unclosed `\[`/],
    ["$.data[]", /empty `\[\]`/],
    ["$.data[?(@.x > )]", /filter `@\.x > ` in .* does not parse/],
    ["$.data[?()]", /empty filter expression/],
    ["$.data[x y]", /is not a name, index, slice/],
    ["$ .a", /unexpected ` ` at character 2/],
  ];
  for (const [path, message] of bad) {
    it(`${JSON.stringify(path)} is refused with a message`, () => {
      expect(checkJsonPath(path)).toMatch(message);
      expect(() => compileJsonPath(path)).toThrow(message);
    });
  }
});
