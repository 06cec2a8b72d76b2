import { describe, expect, it } from "vitest";
import type { Output, Stream } from "../../../src/config/pipeline-types.gen.js";
import { checkStream } from "../../../src/config/rules/stream.js";
import { codes } from "./helpers.js";

const check = (stream: Stream, output?: Output) => codes(checkStream("s", stream, output));

describe("rules/stream", () => {
  it("JSONPaths parse (records, error_path, fields)", () => {
    expect(
      check({ path: "/a", records: "$[[", error_path: "$.ok", fields: { id: "$.id", bad: "$..[" } }),
    ).toEqual([
      ["bad_jsonpath", "streams.s.records"],
      ["bad_jsonpath", "streams.s.fields.bad"],
    ]);
  });

  it("a body, or an incremental value in the body, needs POST", () => {
    expect(check({ path: "/a", body: { q: 1 } })).toEqual([["conflict", "streams.s.body"]]);
    expect(check({ path: "/a", incremental: { cursor_field: "u", param: "since", in: "body" } })).toEqual([
      ["conflict", "streams.s.incremental.in"],
    ]);
    expect(check({ path: "/a", method: "POST", body: { q: 1 } })).toEqual([]);
  });

  it("primary key and cursor field name output fields, when `fields` says which", () => {
    const fields = { id: "$.id", updated: "$.u" };
    expect(
      check({
        path: "/a",
        fields,
        primary_key: ["id", "idd"],
        incremental: { cursor_field: "update", param: "since" },
      }),
    ).toEqual([
      ["bad_value", "streams.s.primary_key[1]"],
      ["bad_value", "streams.s.incremental.cursor_field"],
    ]);
    expect(check({ path: "/a", fields, primary_key: "idd" })).toEqual([
      ["bad_value", "streams.s.primary_key"],
    ]);
    // With `flatten`, output field names are known only from the data.
    expect(check({ path: "/a", fields, flatten: true, primary_key: "idd" })).toEqual([]);
  });

  it("`output.mode: merge` needs a primary key", () => {
    expect(check({ path: "/a" }, { mode: "merge" })).toEqual([["missing_key", "streams.s"]]);
    expect(check({ path: "/a", primary_key: "id" }, { mode: "merge" })).toEqual([]);
  });
});
