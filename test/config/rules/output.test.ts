// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${…}` template syntax
import { describe, expect, it } from "vitest";
import type { Stream } from "../../../src/config/pipeline-types.gen.js";
import { checkOutput } from "../../../src/config/rules/output.js";
import { codes } from "./helpers.js";

/** Streams by name, with or without a primary key. */
function streams(names: string[], withKey = false): Record<string, Stream> {
  return Object.fromEntries(
    names.map((n) => [n, { path: `/${n}`, ...(withKey ? { primary_key: "id" } : {}) }]),
  );
}

describe("rules/output", () => {
  it("several streams in one file path without ${stream} conflict", () => {
    expect(codes(checkOutput({ path: "out/all.jsonl" }, streams(["a", "b"])))).toEqual([
      ["conflict", "output.path"],
    ]);
    expect(checkOutput({ path: "out/${stream}.jsonl" }, streams(["a", "b"]))).toEqual([]);
    expect(checkOutput({ path: "out/a.jsonl" }, streams(["a"]))).toEqual([]);
  });

  it("sqlite, duckdb and singer hold every stream in one place", () => {
    for (const format of ["sqlite", "duckdb", "singer"] as const)
      expect(checkOutput({ format, path: "out/all.x" }, streams(["a", "b"]))).toEqual([]);
  });

  it("postgres needs url", () => {
    expect(codes(checkOutput({ format: "postgres" }, streams(["a"])))).toEqual([["missing_key", "output"]]);
    expect(checkOutput({ format: "postgres", url: "postgres://h/db" }, streams(["a"]))).toEqual([]);
  });

  it("database keys belong to the formats that use them", () => {
    expect(
      codes(checkOutput({ format: "jsonl", url: "postgres://h/db", schema: "s" }, streams(["a"]))),
    ).toEqual([
      ["conflict", "output.url"],
      ["conflict", "output.schema"],
    ]);
    expect(codes(checkOutput({ format: "duckdb", schema: "s" }, streams(["a"])))).toEqual([
      ["conflict", "output.schema"],
    ]);
    expect(codes(checkOutput({ format: "parquet", table: "t", nested: "json" }, streams(["a"])))).toEqual([
      ["conflict", "output.table"],
      ["conflict", "output.nested"],
    ]);
    expect(checkOutput({ format: "parquet", metadata_columns: false }, streams(["a"]))).toEqual([]);
    expect(codes(checkOutput({ format: "csv", metadata_columns: false }, streams(["a"])))).toEqual([
      ["conflict", "output.metadata_columns"],
    ]);
  });

  it("nested: tables needs a primary key on every stream", () => {
    for (const format of ["postgres", "duckdb"] as const) {
      const out = {
        format,
        nested: "tables" as const,
        url: format === "postgres" ? "postgres://h/db" : undefined,
      };
      expect(codes(checkOutput(out, streams(["a", "b"])))).toEqual([
        ["missing_key", "streams.a"],
        ["missing_key", "streams.b"],
      ]);
      expect(checkOutput(out, streams(["a", "b"], true))).toEqual([]);
    }
  });
});
