/**
 * tailValues (src/shared/json-tail.ts): the members a cursor paginator reads, found at the two
 * ends of a page without scanning its records, so that the next request can leave first. A guess
 * the runner checks, but one that must be right whenever it is not null on a well-formed page:
 * a wrong one costs the API a request.
 */
import { describe, expect, it } from "vitest";
import { tailValues } from "../../src/shared/json-tail.js";
import { parseJson } from "../../src/shared/json-text.js";
import { seeded } from "../helpers/seeded.js";

const bytes = (s: string) => Buffer.from(s, "utf8");
const DATA = bytes("data");

/** The values tailValues finds for `names` in `doc`, parsed; null when it finds none. */
function read(doc: string, names: string[]): unknown[] | null {
  const b = bytes(doc);
  const t = tailValues(
    b,
    DATA,
    names.map((n) => bytes(n)),
  );
  return t && names.map((_, k) => parseJson(b.toString("utf8", t.spans[2 * k], t.spans[2 * k + 1])));
}

describe("tailValues", () => {
  it("reads the members after the records array, backwards from the end", () => {
    expect(read('{"data":[{"id":1},{"id":2}],"next_cursor":"c2"}', ["next_cursor"])).toEqual(["c2"]);
    expect(read('{"data":[1],"has_more":true,"next":123,"x":null}', ["next", "has_more"])).toEqual([
      123,
      true,
    ]);
    expect(
      read(' \n{ "data" : [ {"id":1} ] , "next" : "a b" , "done" : false }\n ', ["next", "done"]),
    ).toEqual(["a b", false]);
  });

  it("reads the members before the records array, forwards from the start", () => {
    expect(read('{"next":"n1","meta":{"a":[1,2]},"data":[{"id":1}]}', ["next"])).toEqual(["n1"]);
    // A cursor inside a record, or inside another object, is not the page's.
    expect(read('{"next":"top","data":[{"next":"inner"}]}', ["next"])).toEqual(["top"]);
    // Behind an object after the records, a member is not read (it could be the last of its name).
    expect(read('{"data":[{"id":1}],"next":"top","meta":{"next":"inner"}}', ["next"])).toBeNull();
  });

  it("keeps the last member of a name, as a parse does", () => {
    expect(read('{"data":[{"id":1}],"next":"first","next":"last"}', ["next"])).toEqual(["last"]);
    expect(read('{"next":"before","data":[{"id":1}],"next":"after"}', ["next"])).toEqual(["after"]);
  });

  it("reads strings with escapes and quotes as a parse does", () => {
    for (const v of ['a\\"b', "a\\\\", '\\\\\\"', "\\u00e9t\\u00e9", "c\\/d", ""]) {
      const doc = `{"data":[{"id":1}],"next":"${v}"}`;
      expect(read(doc, ["next"]), doc).toEqual([JSON.parse(doc).next]);
    }
  });

  it("is null when unsure: no records, a name not found, an escaped name, not an object", () => {
    expect(read('{"data":[],"next":"c"}', ["next"])).toBeNull(); // an empty page
    expect(read('{"data":[ ],"next":"c"}', ["next"])).toBeNull();
    expect(read('{"next":"c"}', ["next"])).toBeNull(); // no records array
    expect(read('{"data":{"id":1},"next":"c"}', ["next"])).toBeNull(); // not an array
    expect(read('{"data":[{"id":1}],"meta":{"next":"c"}}', ["next"])).toBeNull(); // not top-level
    expect(read('{"data":[{"id":1}],"n\\u0065xt":"c"}', ["next"])).toBeNull(); // escaped name
    expect(read('{"d\\u0061ta":[{"id":1}],"next":"c"}', ["next"])).toBeNull();
    expect(read('[{"id":1}]', ["next"])).toBeNull();
    expect(read('{"data":[{"id":1}],"next":"c"', ["next"])).toBeNull(); // cut short
    expect(read("", ["next"])).toBeNull();
    // A member between the records and a later object may hold the last value: not found.
    expect(read('{"data":[{"id":1}],"x":1,"meta":{},"next2":"c"}', ["next"])).toBeNull();
  });

  it("with the records at `$`: a non-empty array, and no names", () => {
    const at = (doc: string) => tailValues(bytes(doc), null, []);
    expect(at(' [{"id":1}]')).toEqual({ spans: [] });
    expect(at("[ ]")).toBeNull();
    expect(at('{"data":[1]}')).toBeNull();
    expect(tailValues(bytes('[{"id":1}]'), null, [bytes("next")])).toBeNull();
  });

  it("agrees with JSON.parse on random pages (or says null)", () => {
    const rnd = seeded(20261130);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
    const chars = ["a", '"', "\\", ",", ":", "{", "}", "[", "]", " ", "é", "😀", "n", "e", "x", "t"];
    const str = () => Array.from({ length: Math.floor(rnd() * 6) }, () => pick(chars)).join("");
    const num = () =>
      pick([
        () => Math.floor(rnd() * 1e6),
        () => -Math.floor(rnd() * 1e6) / 8,
        () => (rnd() - 0.5) * 1e22,
        () => 0,
      ])();
    const scalar = () => pick([() => str(), num, () => rnd() < 0.5, () => null])();
    /** JSON white space, as APIs write it. */
    const ws = () => pick(["", " ", "\t", "\r\n", "\n  "]);
    const value = (depth: number): unknown =>
      depth > 1 || rnd() < 0.6
        ? scalar()
        : rnd() < 0.5
          ? Array.from({ length: Math.floor(rnd() * 3) }, () => value(depth + 1))
          : Object.fromEntries(
              Array.from({ length: Math.floor(rnd() * 3) }, () => [
                pick(["next", "k", str()]),
                value(depth + 1),
              ]),
            );
    let found = 0;
    for (let n = 0; n < 3000; n++) {
      const members: string[] = [];
      // Names unique in the page (a name twice, before and after the records, is the one case a
      // guess may get wrong: see the doc of tailValues).
      const used = new Set<string>();
      const add = (name: string, v: unknown) => {
        if (used.has(name)) return;
        used.add(name);
        members.push(`${JSON.stringify(name)}${ws()}:${ws()}${JSON.stringify(v)}`);
      };
      for (let k = Math.floor(rnd() * 3); k > 0; k--)
        add(pick(["next", "meta", "has_more", str()]), value(0));
      const records = Array.from({ length: Math.floor(rnd() * 3) }, () => ({ id: n, s: str(), next: str() }));
      add("data", records);
      for (let k = Math.floor(rnd() * 4); k > 0; k--) add(pick(["next", "has_more", "x", str()]), value(0));
      const text = `${ws()}{${ws()}${members.join(`${ws()},${ws()}`)}${ws()}}${ws()}`;
      const parsed = parseJson(text) as Record<string, unknown>; // as the page's own read: big integers exact
      // A BOM first is read past (as the page's own read does).
      const doc = rnd() < 0.1 ? `\ufeff${text}` : text;
      const got = read(doc, ["next", "has_more"]);
      if (got === null) continue;
      found++;
      expect(records.length, doc).toBeGreaterThan(0);
      expect(got, doc).toEqual([parsed.next, parsed.has_more]);
    }
    expect(found).toBeGreaterThan(100);
  });
});
