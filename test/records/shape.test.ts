/** The shaper (records/shape.ts): select → fields → flatten → include_parent. */
import { describe, expect, it } from "vitest";
import { compileJsonPath } from "../../src/lang/jsonpath.js";
import { compileShaper, flatten, getPath, type Row, type ShapePlan } from "../../src/records/shape.js";

/** A plan with only what the test sets; `fields` as name → path, multi as the compiler sets it. */
function shaper(plan: {
  records?: string;
  fields?: Record<string, string>;
  flatten?: string;
  includeParent?: Record<string, string[]>;
}) {
  const p: ShapePlan = {
    name: "s",
    exclude: null,
    filter: null,
    records: plan.records ?? "$",
    fields: plan.fields
      ? Object.entries(plan.fields).map(([name, path]) => ({
          name,
          path,
          multi: compileJsonPath(path).multi,
        }))
      : null,
    flatten: plan.flatten === undefined ? null : { separator: plan.flatten },
    includeParent: plan.includeParent
      ? Object.entries(plan.includeParent).map(([field, from]) => ({ field, from }))
      : null,
  };
  const s = compileShaper(p);
  // Without `filter` no record is dropped: shape gives a record every time.
  return { select: s.select, shape: (record: unknown, parent?: Row): Row => s.shape(record, parent)! };
}

describe("select: the records of a page", () => {
  it("`$`: an array body is the records; an object is one record; null is none", () => {
    const s = shaper({ records: "$" });
    expect(s.select([{ id: 1 }, { id: 2 }])).toEqual([{ id: 1 }, { id: 2 }]);
    expect(s.select({ id: 1 })).toEqual([{ id: 1 }]);
    expect(s.select(null)).toEqual([]);
    expect(s.select(undefined)).toEqual([]);
  });

  it("a member path: its array, or its one object; missing or null is no records", () => {
    const s = shaper({ records: "$.data" });
    expect(s.select({ data: [{ id: 1 }, { id: 2 }] })).toEqual([{ id: 1 }, { id: 2 }]);
    expect(s.select({ data: { id: 1 } })).toEqual([{ id: 1 }]);
    expect(s.select({ data: null })).toEqual([]);
    expect(s.select({ other: [] })).toEqual([]);
    expect(s.select({ data: [] })).toEqual([]);
  });

  it("a multi-match path: every match, in order", () => {
    const s = shaper({ records: "$.groups[*].items[*]" });
    const body = { groups: [{ items: [{ id: 1 }, { id: 2 }] }, { items: [] }, { items: [{ id: 3 }] }] };
    expect(s.select(body)).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
  });

  it("a multi-match path with one match that is an array: its elements are the records", () => {
    const s = shaper({ records: "$.pages[*]" });
    expect(s.select({ pages: [[{ id: 1 }, { id: 2 }]] })).toEqual([{ id: 1 }, { id: 2 }]);
  });
});

describe("shape", () => {
  it("without steps, a record is itself; a primitive becomes { value }", () => {
    const s = shaper({});
    const rec = { id: 1, nested: { a: 1 } };
    expect(s.shape(rec)).toBe(rec);
    expect(s.shape(7)).toEqual({ value: 7 });
    expect(s.shape(null)).toEqual({ value: null });
  });

  it("fields: one value per path, null when missing, a list for a multi-match path", () => {
    const s = shaper({
      fields: {
        id: "$.id",
        login: "$.owner.login",
        tags: "$.tags[*].name",
        last: "$.tags[-1:].name",
        gone: "$.x",
      },
    });
    expect(
      s.shape({ id: 1, owner: { login: "ann" }, tags: [{ name: "a" }, { name: "b" }], extra: 1 }),
    ).toEqual({
      id: 1,
      login: "ann",
      tags: ["a", "b"],
      last: ["b"],
      gone: null,
    });
    expect(s.shape({ id: 2, tags: [] })).toEqual({ id: 2, login: null, tags: [], last: [], gone: null });
  });

  it("fields keep a field named `__proto__` as data, without changing the record's prototype", () => {
    // (JSON.parse: in an object literal `__proto__:` would set the prototype.)
    const s = shaper({ fields: JSON.parse('{"__proto__": "$.p", "constructor": "$.c"}') });
    const out = s.shape(JSON.parse('{"p": {"polluted": true}, "c": 1}'));
    expect(Object.keys(out)).toEqual(["__proto__", "constructor"]);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, "__proto__")?.value).toEqual({ polluted: true });
    expect((out as { polluted?: unknown }).polluted).toBeUndefined();
    expect(out.constructor).toBe(1);
    const multi = shaper({ fields: JSON.parse('{"__proto__": "$.t[*]"}') }).shape({ t: [1, 2] });
    expect(Object.getOwnPropertyDescriptor(multi, "__proto__")?.value).toEqual([1, 2]);
    expect(Object.getPrototypeOf(multi)).toBe(Object.prototype);
  });

  it("flatten: nested objects become joined names; arrays and empty objects are values", () => {
    const s = shaper({ flatten: "__" });
    expect(s.shape({ a: { b: 1, c: { d: 2 } }, e: [{ f: 1 }], g: {}, h: null })).toEqual({
      a__b: 1,
      a__c__d: 2,
      e: [{ f: 1 }],
      g: {},
      h: null,
    });
    expect(shaper({ flatten: "." }).shape({ a: { b: 1 } })).toEqual({ "a.b": 1 });
  });

  it("flatten keeps `__proto__` keys as own fields", () => {
    const out = shaper({ flatten: "_" }).shape(JSON.parse('{"__proto__": {"x": 1}, "o": {"__proto__": 2}}'));
    expect(Object.keys(out)).toEqual(["__proto___x", "o___proto__"]);
    const top = flatten(JSON.parse('{"__proto__": 5}'), "_");
    expect(Object.keys(top)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(top)).toBe(Object.prototype);
  });

  it("flatten refuses nesting past the limit with a too_deep error", () => {
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 1100; i++) deep = { n: deep };
    expect(() => shaper({ flatten: "_" }).shape(deep)).toThrow(/nested more than/);
  });

  it("include_parent copies parent values (own fields only), null when absent, without changing the record", () => {
    const s = shaper({
      includeParent: { repo_id: ["id"], owner: ["owner", "login"], ctor: ["constructor"] },
    });
    const rec = { n: 1 };
    const out = s.shape(rec, { id: 9, owner: { login: "ann" } });
    expect(out).toEqual({ n: 1, repo_id: 9, owner: "ann", ctor: null });
    expect(rec).toEqual({ n: 1 });
    expect(s.shape({ n: 2 })).toEqual({ n: 2, repo_id: null, owner: null, ctor: null });
    expect(s.shape("x", { id: 1, owner: null })).toEqual({ value: "x", repo_id: 1, owner: null, ctor: null });
  });

  it("steps run in order: fields, then flatten, then include_parent (parent values are not flattened)", () => {
    const s = shaper({
      fields: { id: "$.id", meta: "$.meta" },
      flatten: "_",
      includeParent: { parent: ["info"] },
    });
    expect(s.shape({ id: 1, meta: { a: 1 }, dropped: { b: 2 } }, { info: { c: 3 } })).toEqual({
      id: 1,
      meta_a: 1,
      parent: { c: 3 },
    });
  });
});

describe("getPath", () => {
  it("walks own fields only", () => {
    expect(getPath({ a: { b: 2 } }, ["a", "b"])).toBe(2);
    expect(getPath({ a: 1 }, ["a", "b"])).toBeUndefined();
    expect(getPath({}, ["toString"])).toBeUndefined();
    expect(getPath(null, ["a"])).toBeUndefined();
    expect(getPath({ a: 1 }, [])).toEqual({ a: 1 });
  });
});
