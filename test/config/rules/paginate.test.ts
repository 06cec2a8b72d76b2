import { describe, expect, it } from "vitest";
import type { Stream } from "../../../src/config/pipeline-types.gen.js";
import { checkPaginate } from "../../../src/config/rules/paginate.js";
import { codes } from "./helpers.js";

const at = ["streams", "s", "paginate"];
const check = (stream: Stream) => codes(checkPaginate(stream, at));

describe("rules/paginate", () => {
  it("JSONPaths parse", () => {
    expect(check({ path: "/a", paginate: { type: "next_url", next: "$.next", has_more: "$[[" } })).toEqual([
      ["bad_jsonpath", "streams.s.paginate.has_more"],
    ]);
  });

  it("a cursor comes from the body or a header, not both or neither", () => {
    expect(check({ path: "/a", paginate: { type: "cursor" } })).toEqual([
      ["missing_key", "streams.s.paginate"],
    ]);
    expect(
      check({ path: "/a", paginate: { type: "cursor", cursor: "$.c", cursor_header: "X-Next" } }),
    ).toEqual([["conflict", "streams.s.paginate.cursor_header"]]);
    expect(check({ path: "/a", paginate: { type: "cursor", cursor: "$.c" } })).toEqual([]);
  });

  it("a cursor sent as a header has a header name; in a body, it needs POST", () => {
    expect(
      check({ path: "/a", paginate: { type: "cursor", cursor: "$.c", in: "header", param: "a b" } }),
    ).toEqual([["bad_value", "streams.s.paginate.param"]]);
    expect(check({ path: "/a", paginate: { type: "cursor", cursor: "$.c", in: "body" } })).toEqual([
      ["conflict", "streams.s.paginate.in"],
    ]);
    expect(
      check({ path: "/a", method: "POST", paginate: { type: "cursor", cursor: "$.c", in: "body" } }),
    ).toEqual([]);
  });

  it("a page size comes with its parameter (reported at the one written)", () => {
    expect(check({ path: "/a", paginate: { type: "page", size: 50 } })).toEqual([
      ["missing_key", "streams.s.paginate.size"],
    ]);
    expect(check({ path: "/a", paginate: { type: "page", size_param: "per_page" } })).toEqual([
      ["missing_key", "streams.s.paginate.size_param"],
    ]);
    expect(check({ path: "/a", paginate: { type: "page", size: 50, size_param: "per_page" } })).toEqual([]);
  });
});
