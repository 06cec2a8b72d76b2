// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${…}` template syntax
import { describe, expect, it } from "vitest";
import { checkOutput } from "../../../src/config/rules/output.js";
import { codes } from "./helpers.js";

describe("rules/output", () => {
  it("several streams in one file path without ${stream} conflict", () => {
    expect(codes(checkOutput({ path: "out/all.jsonl" }, ["a", "b"]))).toEqual([["conflict", "output.path"]]);
    expect(checkOutput({ path: "out/${stream}.jsonl" }, ["a", "b"])).toEqual([]);
    expect(checkOutput({ path: "out/a.jsonl" }, ["a"])).toEqual([]);
  });

  it("sqlite holds every stream in one file", () => {
    expect(checkOutput({ format: "sqlite", path: "out/all.db" }, ["a", "b"])).toEqual([]);
  });
});
