/** The Link header parser (link-header.ts): what made us keep it over the npm packages. */
import { describe, expect, it } from "vitest";
import { parseLinkHeader } from "../../src/http/link-header.js";

const rels = (header: string | string[]) => parseLinkHeader(header).map((l) => [l.url, l.rels]);

describe("parseLinkHeader", () => {
  it("reads every link with its rels, URLs holding commas and semicolons, several header lines", () => {
    expect(rels('<https://a.test/x?page=2>; rel="next", <https://a.test/x?page=9>; rel="last"')).toEqual([
      ["https://a.test/x?page=2", ["next"]],
      ["https://a.test/x?page=9", ["last"]],
    ]);
    expect(rels('<https://a.test/x?a=1,2;b>; rel="next prev"')).toEqual([
      ["https://a.test/x?a=1,2;b", ["next", "prev"]],
    ]);
    expect(rels(['<https://a.test/1>; rel="prev"', '<https://a.test/3>; rel="next"'])).toEqual([
      ["https://a.test/1", ["prev"]],
      ["https://a.test/3", ["next"]],
    ]);
  });

  it("rel is case-insensitive; the first of a repeated parameter counts", () => {
    expect(rels("<https://a.test/2>; REL=Next; rel=prev")).toEqual([["https://a.test/2", ["next"]]]);
  });

  it("quoted values keep their commas, semicolons and escaped quotes", () => {
    const [link] = parseLinkHeader('<https://a.test/2>; title="a, \\"b\\"; c"; rel="next"');
    expect(link.params.title).toBe('a, "b"; c');
    expect(link.rels).toEqual(["next"]);
  });

  it("a malformed link-value is skipped and the good ones are kept", () => {
    expect(rels('garbage; rel="x", <https://a.test/3>; rel="next"')).toEqual([
      ["https://a.test/3", ["next"]],
    ]);
    expect(rels('<https://a.test/3>; rel="next", <unclosed')).toEqual([["https://a.test/3", ["next"]]]);
  });

  it("a long header (a long cursor URL) is read whole", () => {
    const url = `https://a.test/x?cursor=${"c".repeat(5000)}`;
    expect(rels(`<${url}>; rel="next"`)).toEqual([[url, ["next"]]]);
  });

  it("nothing, for no header", () => {
    expect(parseLinkHeader(undefined)).toEqual([]);
    expect(parseLinkHeader("")).toEqual([]);
  });
});
