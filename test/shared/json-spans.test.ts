/**
 * scanPage / canonicalSpans (src/shared/json-spans.ts): a page's records and the paginator's values
 * found in its bytes without parsing them. What the scan says must be what JSON.parse says, or the
 * scan must say null (the page is then parsed as before): never a wrong span or value.
 */
import { describe, expect, it } from "vitest";
import { canonicalLineEnd, lineMembers } from "../../src/shared/canonical-line.js";
import {
  canonicalFlags,
  canonicalSpans,
  LINE_CANONICAL,
  LINE_NOT,
  LINE_UNTRIED,
  type PageScan,
  scanPage,
  scanPaths,
} from "../../src/shared/json-spans.js";
import { parseJson, stringifyJson } from "../../src/shared/json-text.js";

/** scanPage with the paths prepared (scanPaths); null when they cannot be scanned at all. */
const scanOf = (
  b: Uint8Array,
  records: readonly string[],
  paths: readonly (readonly string[])[],
  strict = true,
) => {
  const prepared = scanPaths(records, paths, strict);
  return prepared && scanPage(b, prepared);
};
const bytes = (s: string) => Buffer.from(s, "utf8");
const texts = (b: Buffer, scan: PageScan) => {
  const out: string[] = [];
  for (let j = 0; j < scan.spans.length; j += 2)
    out.push(b.toString("utf8", scan.spans[j], scan.spans[j + 1]));
  return out;
};
const pathValue = (b: Buffer, scan: PageScan, j: number) =>
  scan.values[2 * j] < 0
    ? undefined
    : parseJson(b.toString("utf8", scan.values[2 * j], scan.values[2 * j + 1]));

describe("scanPage", () => {
  it("finds each record and each value the paginator reads", () => {
    const b = bytes('{"data":[{"id":1},{"id":2,"s":"a,]}\\"b"}],"next_cursor":"c2","meta":{"next":null}}');
    const scan = scanOf(b, ["data"], [["next_cursor"], ["meta", "next"], ["missing"]])!;
    expect(texts(b, scan)).toEqual(['{"id":1}', '{"id":2,"s":"a,]}\\"b"}']);
    expect(scan.canonical).toEqual([]); // read later (after the next request left)
    expect(canonicalFlags(b, scan)).toEqual([1, 1]);
    expect(pathValue(b, scan, 0)).toBe("c2");
    expect(pathValue(b, scan, 1)).toBe(null);
    expect(pathValue(b, scan, 2)).toBe(undefined);
  });

  it("reads white space between tokens, and marks records that are not canonical", () => {
    const doc = { results: [{ a: 1 }, { b: [1, 2] }, "text", 3, null, { c: 1.5 }], page: { next: 7 } };
    const pretty = bytes(JSON.stringify(doc, null, 2));
    const scan = scanOf(pretty, ["results"], [["page", "next"]])!;
    expect(texts(pretty, scan).map((t) => JSON.parse(t))).toEqual(doc.results);
    expect(canonicalFlags(pretty, scan)).toEqual([0, 0, 0, 0, 0, 0]); // spaces inside, or not an object
    expect(pathValue(pretty, scan, 0)).toBe(7);
    const compact = bytes(` \n${JSON.stringify(doc)}\r\n`);
    expect(canonicalFlags(compact, scanOf(compact, ["results"], [])!)).toEqual([1, 1, 0, 0, 0, 1]);
  });

  it("reads records strictly while splitting; stops trying on a page after 8 that are not canonical", () => {
    const canonical = Array.from({ length: 3 }, (_, i) => `{"id":${i},"a":[1,{"b":"x"}]}`);
    const spaced = Array.from({ length: 9 }, (_, i) => `{"id": ${i}}`);
    const page = (records: string[]) => bytes(`{"data":[${records.join(",")}]}`);
    const mixed = [...canonical, spaced[0], '"text"', 7, ...canonical].map(String);
    expect(scanOf(page(mixed), ["data"], [])!.lines).toEqual([1, 1, 1, 0, 0, 0, 1, 1, 1]);
    // Eight misses in a row: the rest of the page is left to the byte check (LINE_UNTRIED).
    const late = scanOf(page([...spaced, ...canonical]), ["data"], [])!;
    expect(late.lines).toEqual([...Array(8).fill(LINE_NOT), ...Array(4).fill(LINE_UNTRIED)]);
    expect(texts(page([...spaced, ...canonical]), late)).toEqual([...spaced, ...canonical]);
    // Seven, then a canonical one: it goes on trying.
    const seven = scanOf(page([...spaced.slice(0, 7), ...canonical, ...spaced]), ["data"], [])!;
    expect(seven.lines!.slice(0, 10)).toEqual([...Array(7).fill(LINE_NOT), 1, 1, 1]);
  });

  it("skips a BOM first, as parseJson does", () => {
    const b = bytes('\ufeff {"data":[{"a":1}],"next":"n"}');
    const scan = scanOf(b, ["data"], [["next"]])!;
    expect(texts(b, scan)).toEqual(['{"a":1}']);
    expect(pathValue(b, scan, 0)).toBe("n");
    expect(scanOf(bytes(' \ufeff{"data":[]}'), ["data"], [])).toBeNull(); // not first: not JSON
  });

  it("leaves paths into arrays and the whole document to the parse", () => {
    // `$.cursors.0` and `$.next.length` read members of an array (JSONPath walks them).
    expect(scanOf(bytes('{"data":[],"cursors":["c1"]}'), ["data"], [["cursors", "0"]])).toBeNull();
    expect(scanOf(bytes('{"data":[],"next":[1,2]}'), ["data"], [["next", "length"]])).toBeNull();
    expect(scanOf(bytes('[{"a":1}]'), [], [["length"]])).toBeNull();
    expect(scanOf(bytes('{"data":[]}'), ["data"], [[]])).toBeNull();
    // Into a string, a number or null: nothing there (as JSONPath finds nothing).
    const b = bytes('{"data":[],"next":"abc","n":null}');
    const scan = scanOf(
      b,
      ["data"],
      [
        ["next", "length"],
        ["n", "x"],
      ],
    )!;
    expect([pathValue(b, scan, 0), pathValue(b, scan, 1)]).toEqual([undefined, undefined]);
  });

  it("a root array for `$`; an empty array; deeper records paths", () => {
    const root = bytes('[{"a":1},{"a":2}]');
    expect(texts(root, scanOf(root, [], [])!)).toEqual(['{"a":1}', '{"a":2}']);
    expect(scanOf(bytes('{"data":[]}'), ["data"], [])!.spans).toEqual([]);
    const deep = bytes('{"response":{"x":[1,{"y":"]"}],"items":[{"k":"v"}]},"next":"n"}');
    const scan = scanOf(deep, ["response", "items"], [["next"], ["response", "x"]])!;
    expect(texts(deep, scan)).toEqual(['{"k":"v"}']);
    expect(pathValue(deep, scan, 0)).toBe("n");
    expect(pathValue(deep, scan, 1)).toEqual([1, { y: "]" }]);
  });

  it("is null where the bytes might not say what JSON.parse says", () => {
    const cases = [
      '{"d\\u0061ta":[{"a":1}]}', // an escaped name is `data` once parsed
      '{"data":[{"a":1}],"data":[{"a":2}]}', // twice: JSON.parse keeps the last
      '{"data":{"a":1}}', // not an array: one record
      '{"other":[]}', // no records array
      '[{"a":1}]', // an array where an object holds the records
      '{"data":[{"a":1}]} trailing',
      '{"data":[{"a":1}]',
      '{"data":[{"a":1},]}',
      "",
    ];
    for (const c of cases) expect(scanOf(bytes(c), ["data"], []), c).toBeNull();
    // A value's name twice: the parsed value is the last one.
    expect(scanOf(bytes('{"data":[],"next":"a","next":"b"}'), ["data"], [["next"]])).toBeNull();
    // A path that is both a value and a way into one.
    expect(scanOf(bytes('{"data":[],"m":{"n":1}}'), ["data"], [["m"], ["m", "n"]])).toBeNull();
  });

  it("never reads past the bytes, whatever they hold (every cut of a page, random bytes)", () => {
    const page = '{"data":[{"id":1,"s":"a\\"b","n":[1,{"x":null}]},{"id":2}],"next":"c"}';
    for (let cut = 0; cut < page.length; cut++) {
      const scan = scanOf(bytes(page.slice(0, cut)), ["data"], [["next"]]);
      expect(scan, page.slice(0, cut)).toBeNull();
    }
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const alphabet = '{}[]",:\\ab1 -.e';
    for (let n = 0; n < 3000; n++) {
      const len = rand() % 40;
      let s = "";
      for (let k = 0; k < len; k++) s += alphabet[rand() % alphabet.length];
      const scan = scanOf(bytes(`{"data":[${s}`), ["data"], [["next"]]);
      if (scan)
        for (let j = 0; j < scan.spans.length; j++) expect(scan.spans[j]).toBeLessThanOrEqual(len + 9);
    }
  });

  it("agrees with JSON.parse on generated pages: counts, values, canonical texts", () => {
    let seed = 11;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const values = [
      0,
      -0,
      1.5,
      1.0,
      1e21,
      0.0000001,
      123456789012345678901234567890n,
      "é",
      "a\u2028b",
      "\u00e9\\/",
      null,
      true,
      [],
      {},
    ];
    const raw = ["1.50", "2.0", "1E5", '"\\u00e9"', '"\\/"', "-0", "0.1", "12345678901234567890"];
    for (let n = 0; n < 300; n++) {
      const records: string[] = [];
      for (let r = rand(6); r > 0; r--) {
        const members: string[] = [];
        for (let m = rand(5); m > 0; m--) {
          const key = ["id", "a b", "é", "1x", "x", "__proto__"][rand(6)];
          const v = rand(3) === 0 ? raw[rand(raw.length)] : stringifyJson(values[rand(values.length)]);
          members.push(`${JSON.stringify(key)}:${v}`);
        }
        records.push(rand(4) === 0 ? `{ ${members.join(", ")} }` : `{${members.join(",")}}`);
      }
      const text = `{"data":[${records.join(rand(2) ? "," : " , ")}],"next":${rand(2) ? '"n"' : "null"}}`;
      const b = bytes(text);
      const parsed = parseJson(text) as { data: unknown[]; next: unknown };
      const scan = scanOf(b, ["data"], [["next"]]);
      expect(scan, text).not.toBeNull();
      expect(scan!.spans.length / 2).toBe(parsed.data.length);
      expect(pathValue(b, scan!, 0)).toBe(parsed.next);
      // The strict reading done while splitting says what it says on the record alone, and finds
      // the same ends as a scan that does not read them (no flags: `lines` null).
      const lines = scan!.lines!;
      expect(lines.length).toBe(parsed.data.length);
      for (let j = 0; j < lines.length; j++) {
        const [s0, e0] = [scan!.spans[2 * j], scan!.spans[2 * j + 1]];
        const alone = canonicalLineEnd(b, s0, e0, lineMembers()) === e0;
        if (lines[j] !== LINE_UNTRIED) expect(lines[j] === LINE_CANONICAL, text).toBe(alone);
      }
      const plain = scanOf(b, ["data"], [["next"]], false)!;
      expect(plain.lines).toBeNull();
      expect(plain.spans).toEqual(scan!.spans);
      const spans = canonicalSpans(b, scan!);
      const all = texts(b, scan!);
      all.forEach((t, i) => {
        expect(stringifyJson(parseJson(t)), t).toBe(stringifyJson(parsed.data[i]));
        if (spans && spans[2 * i] >= 0) expect(stringifyJson(parsed.data[i]), text).toBe(t);
      });
    }
  });
});

describe("canonicalSpans", () => {
  it("keeps canonical records' spans, -1 for the others, null for none or bytes that are not UTF-8", () => {
    const b = bytes('{"data":[{"a":1},{ "a":2 },{"a":3}]}');
    const scan = scanOf(b, ["data"], [])!;
    const spans = canonicalSpans(b, scan)!;
    expect(spans[2]).toBe(-1);
    expect(b.toString("utf8", spans[0], spans[1])).toBe('{"a":1}');
    expect(b.toString("utf8", spans[4], spans[5])).toBe('{"a":3}');
    expect(
      canonicalSpans(bytes('{"data":[{ "a":1 }]}'), scanOf(bytes('{"data":[{ "a":1 }]}'), ["data"], [])!),
    ).toBeNull();
    const latin1 = Buffer.concat([bytes('{"data":[{"a":"'), Buffer.from([0xe9]), bytes('"}]}')]);
    expect(canonicalSpans(latin1, scanOf(latin1, ["data"], [])!)).toBeNull();
  });
});
