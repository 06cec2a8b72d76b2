// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${parent.…}` templates
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type TempProject, tempProject } from "../run/helpers.js";
import { type BodyServer, bodyServer, expected, FORMATS, readRecords, runFormat } from "./helpers.js";

/**
 * Attack class: field names that every JavaScript object inherits or that set its prototype
 * (`__proto__`, `constructor`, `toString`, `hasOwnProperty`). A record that has them keeps them
 * as plain fields; a record without them has none — in every output format, in keys, templates,
 * flattening and the quarantine.
 */

const PROTO_RECORDS = `{"data":[
  {"id":1,"__proto__":{"x":1},"constructor":"c1","toString":"t1","hasOwnProperty":"h1"},
  {"id":2,"name":"b"},
  {"id":3,"__proto__":"p3"}
]}`;

let server: BodyServer;
let project: TempProject;
beforeAll(async () => {
  server = await bodyServer({
    "/items": PROTO_RECORDS,
    "/keyed": `{"data":[{"id":1},{"id":2},{"id":3,"toString":"k"},{"id":4,"toString":"k"}]}`,
    "/nested": `{"data":[{"id":1,"__proto__":"p","meta":{"constructor":"c","__proto__":{"y":2}}},{"id":2,"meta":{}}]}`,
    "/parents": `{"data":[{"id":7}]}`,
    "/children/7": `{"data":[{"n":1}]}`,
    "/invalid": `{"data":[{"id":"not a number","__proto__":"kept","constructor":"kept too"}]}`,
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project = tempProject("pipelines-proto-");
});
afterEach(() => project.cleanup());

describe.each(FORMATS)("reserved field names, output %s", (format) => {
  it("keeps `__proto__`, `constructor`, `toString` as fields, and invents none for records without them", async () => {
    const r = await runFormat(project, server.url, format, { items: ["path: /items", "records: $.data"] });
    expect(r.stream("items").status).toBe("ok");
    expect(await readRecords(project, format, "items")).toEqual(
      expected(
        { id: "1", ["__proto__"]: '{"x":1}', constructor: "c1", toString: "t1", hasOwnProperty: "h1" },
        { id: "2", name: "b" },
        { id: "3", ["__proto__"]: "p3" },
      ),
    );
  });

  it("primary_key: toString — records without the field are not duplicates of each other", async () => {
    const r = await runFormat(project, server.url, format, {
      keyed: ["path: /keyed", "records: $.data", "primary_key: toString"],
    });
    expect(r.stream("keyed").status).toBe("ok");
    expect(r.stream("keyed").records.duplicates).toBe(1);
    expect((await readRecords(project, format, "keyed")).map((x) => x.id)).toEqual(["1", "2", "4"]);
  });

  it("flatten keeps a `__proto__` field and nested reserved names", async () => {
    const r = await runFormat(project, server.url, format, {
      nested: ["path: /nested", "records: $.data", "flatten: true"],
    });
    expect(r.stream("nested").status).toBe("ok");
    expect(await readRecords(project, format, "nested")).toEqual(
      expected(
        { id: "1", ["__proto__"]: "p", meta_constructor: "c", meta___proto___y: "2" },
        { id: "2", meta: "{}" },
      ),
    );
  });

  it("include_parent and `${parent.…}` read only the parent's own fields", async () => {
    const r = await runFormat(project, server.url, format, {
      parents: ["path: /parents", "records: $.data"],
      children: [
        "parent: parents",
        "path: /children/${parent.id}",
        "records: $.data",
        "include_parent: { parent_id: id, parent_ctor: constructor, parent_str: toString }",
      ],
    });
    expect(r.stream("children").status).toBe("ok");
    expect(await readRecords(project, format, "children")).toEqual(expected({ n: "1", parent_id: "7" }));
  });

  it("a template naming an inherited parent field is a missing value, not the function's text", async () => {
    const r = await runFormat(project, server.url, format, {
      parents: ["path: /parents", "records: $.data"],
      children: ["parent: parents", "path: /children/${parent.toString}", "records: $.data"],
    });
    const child = r.stream("children");
    expect(child.status).toBe("failed");
    expect(child.error?.message).toContain("`${parent.toString}` is missing");
    expect(server.requests.some((u) => u.includes("native"))).toBe(false);
  });

  it("the quarantine (redacted, with a secret configured) keeps `__proto__` and `constructor`", async () => {
    const r = await runFormat(
      project,
      server.url,
      format,
      {
        invalid: [
          "path: /invalid",
          "records: $.data",
          "schema: { type: object, properties: { id: { type: integer } } }",
        ],
      },
      {
        source: "auth: { type: bearer, token: '${env.TOKEN}' }",
        extra: ["validation:", "  invalid_records: skip", "  max_invalid_ratio: 1"],
        env: { TOKEN: "a-secret-token-value" },
      },
    );
    expect(r.stream("invalid").records.invalid).toBe(1);
    const qdir = path.dirname(project.file("out/x"));
    const qfile = path.join(qdir, format === "sqlite" ? "p.invalid.invalid.jsonl" : "invalid.invalid.jsonl");
    const line = JSON.parse(readFileSync(qfile, "utf8").trim()) as { record: object };
    expect(Object.entries(line.record)).toEqual([
      ["id", "not a number"],
      ["__proto__", "kept"],
      ["constructor", "kept too"],
    ]);
  });
});
