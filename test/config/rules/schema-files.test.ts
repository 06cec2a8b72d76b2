import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readRecordSchemas } from "../../../src/config/rules/schema-files.js";
import { tempProject } from "../helpers.js";
import { codes } from "./helpers.js";

describe("rules/schema-files", () => {
  const { project, cleanup } = tempProject({
    "ok.schema.json": JSON.stringify({ type: "object" }),
    "broken.schema.json": "{",
    "wrong.schema.json": JSON.stringify({ type: "nope" }),
  });
  afterAll(cleanup);

  it("reads and compiles schema files and inline schemas", () => {
    const { schemas, issues } = readRecordSchemas(
      {
        a: { path: "/a", schema: "ok.schema.json" },
        b: { path: "/b", schema: { type: "object" } },
        c: { path: "/c" },
      },
      project,
    );
    expect(issues).toEqual([]);
    expect(schemas.get("a")).toEqual({
      schema: { type: "object" },
      file: path.join(project.schemasDir, "ok.schema.json"),
    });
    expect(schemas.get("b")).toEqual({ schema: { type: "object" }, file: null });
    expect(schemas.has("c")).toBe(false);
  });

  it("reports missing, unreadable and invalid schemas at the stream's `schema`", () => {
    const { schemas, issues } = readRecordSchemas(
      {
        a: { path: "/a", schema: "ok.schema.jsn" },
        b: { path: "/b", schema: "../secrets.json" },
        c: { path: "/c", schema: "broken.schema.json" },
        d: { path: "/d", schema: "wrong.schema.json" },
      },
      project,
    );
    expect(codes(issues)).toEqual([
      ["schema_missing", "streams.a.schema"],
      ["schema_missing", "streams.b.schema"],
      ["schema_invalid", "streams.c.schema"],
      ["schema_invalid", "streams.d.schema"],
    ]);
    expect(issues[0].message).toContain("did you mean `ok.schema.json`");
    expect(schemas.size).toBe(0);
  });
});
