import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { compileRecordSchema } from "../../src/lang/ajv.js";
import { dataset, startApiServer, type TestServer } from "../server/api-server.js";
import { cli, newProject, type Project } from "./helpers.js";

let server: TestServer;
let p: Project;
beforeAll(async () => {
  server = await startApiServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
  p = newProject();
  p.write("pipelines/catalog.yaml", catalogYaml(25));
});
afterEach(() => p.cleanup());

const N = 60;

/** Two streams over the test server's dirty dataset: records as served, and shaped by `fields`. */
function catalogYaml(limit: number): string {
  const stream = [
    "    path: /cursor/items",
    `    params: { n: ${N}, limit: ${limit}, dataset: dirty }`,
    "    records: $.data",
    "    paginate: { type: cursor, cursor: $.next_cursor }",
  ];
  return [
    "source:",
    `  base_url: ${server.url}`,
    "streams:",
    "  raw:",
    ...stream,
    "  shaped:",
    ...stream,
    "    fields:",
    "      id: $.id",
    "      login: $.owner.login",
    "      legacy: $.legacy_code",
    "      tags: $.tags[*]",
    "      updated_at: $.updated_at",
    "",
  ].join("\n");
}

const RAW_FILE = "schemas/catalog.raw.schema.json";
const SHAPED_FILE = "schemas/catalog.shaped.schema.json";

/** What `infer` must draft from the 60 dirty records (price is a string when id % 10 == 0). */
const RAW_SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  title: "catalog raw record",
  description: "Inferred by `pipelines infer` from 60 records. Review before use.",
  type: "object",
  properties: {
    id: { type: "integer" },
    name: { type: "string" },
    email: { type: "string", format: "email" },
    updated_at: { type: "string", format: "date-time" },
    price: { type: ["string", "number"] },
    tags: { type: "array", items: { type: "string" } },
    owner: {
      type: "object",
      properties: { login: { type: "string" }, id: { type: "integer" } },
      required: ["login", "id"],
    },
    legacy_code: { type: "string" },
  },
  // legacy_code (ids 25 and 50 only) is the one field not in every record.
  required: ["id", "name", "email", "updated_at", "price", "tags", "owner"],
};

const shapedRows = () =>
  dataset("dirty", N).map((r) => ({
    id: r.id,
    login: (r.owner as { login: string }).login,
    legacy: r.legacy_code ?? null,
    tags: r.tags,
    updated_at: r.updated_at,
  }));

describe("pipelines infer", () => {
  it("drafts a schema per stream: types with null, required, formats, nested objects and arrays", async () => {
    const r = await cli(p.dir, ["infer", "catalog"]);
    expect(r.code, r.stderr).toBe(0);
    const raw = JSON.parse(p.read(RAW_FILE));
    expect(raw).toEqual(RAW_SCHEMA);
    const shaped = JSON.parse(p.read(SHAPED_FILE));
    expect(shaped.properties).toEqual({
      id: { type: "integer" },
      login: { type: "string" },
      legacy: { type: ["string", "null"] },
      tags: { type: "array", items: { type: "string" } },
      updated_at: { type: "string", format: "date-time" },
    });
    // `fields` writes every field in every record (null when the path matches nothing).
    expect(shaped.required).toEqual(["id", "login", "legacy", "tags", "updated_at"]);
    expect(r.stderr).toContain("raw: inferred from 60 records (3 pages) → schemas/catalog.raw.schema.json");
    expect(r.stdout).toMatch(/legacy_code +string {2}optional/);

    // The drafts accept every record they were inferred from.
    const validateRaw = compileRecordSchema(raw);
    for (const rec of dataset("dirty", N))
      expect(validateRaw(rec), JSON.stringify(validateRaw.errors)).toBe(true);
    const validateShaped = compileRecordSchema(shaped);
    for (const row of shapedRows())
      expect(validateShaped(row), JSON.stringify(validateShaped.errors)).toBe(true);
    // ... and are not vacuous: a record of the wrong shape fails.
    expect(validateRaw({ ...dataset("dirty", 1)[0], updated_at: "soon" })).toBe(false);
    expect(validateRaw({ id: 1 })).toBe(false);
  });

  it("a drafted schema used by `run` finds no invalid records in the same data", async () => {
    expect((await cli(p.dir, ["infer", "catalog", "--stream", "raw"])).code).toBe(0);
    p.write(
      "pipelines/catalog.yaml",
      `${catalogYaml(25)}`.replace("  shaped:", "    schema: catalog.raw.schema.json\n  shaped:"),
    );
    const r = await cli(p.dir, ["run", "catalog", "--stream", "raw"]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(p.read("reports/catalog/latest.json"));
    expect(report.streams[0].records).toMatchObject({ seen: 60, valid: 60, invalid: 0 });
    expect(report.streams[0].drift.new_fields).toEqual([]);
    expect(report.streams[0].drift.type_changes).toEqual([]);
  });

  it("refuses to overwrite without --force (exit 2, file unchanged, no request sent) and overwrites with it", async () => {
    expect((await cli(p.dir, ["infer", "catalog", "--stream", "raw"])).code).toBe(0);
    p.write(RAW_FILE, "hand-edited\n");
    server.reset();

    const refused = await cli(p.dir, ["infer", "catalog", "--stream", "raw"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      "schemas/catalog.raw.schema.json already exists; use --force to overwrite",
    );
    expect(p.read(RAW_FILE)).toBe("hand-edited\n");
    expect(server.requests).toEqual([]);

    // All streams: one target exists, so nothing is fetched or written at all.
    const all = await cli(p.dir, ["infer", "catalog"]);
    expect(all.code).toBe(2);
    expect(p.exists(SHAPED_FILE)).toBe(false);
    expect(server.requests).toEqual([]);

    const forced = await cli(p.dir, ["infer", "catalog", "--stream", "raw", "--force"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(p.read(RAW_FILE))).toEqual(RAW_SCHEMA);
    expect(server.requests.length).toBe(3);
  });

  it("--sample 10 fetches only the pages that hold 10 records", async () => {
    p.write("pipelines/catalog.yaml", catalogYaml(4));
    const r = await cli(p.dir, ["infer", "catalog", "--stream", "raw", "--sample", "10"]);
    expect(r.code, r.stderr).toBe(0);
    // Pages of 4: 4 + 4 + 2 of the third page; the other 50 records are never asked for.
    expect(server.requests.map((q) => q.path)).toEqual(["/cursor/items", "/cursor/items", "/cursor/items"]);
    const schema = JSON.parse(p.read(RAW_FILE));
    expect(schema.description).toContain("from 10 records");
    expect(r.stderr).toContain("raw: inferred from 10 records (3 pages)");
    // ids 1..10: price is a string only for id 10, legacy_code never appears.
    expect(schema.properties.price).toEqual({ type: ["string", "number"] });
    expect(schema.properties.legacy_code).toBeUndefined();
    expect(p.exists(SHAPED_FILE)).toBe(false);
  });

  it("zero records: exit 1, the records path named, no schema written", async () => {
    p.write("pipelines/catalog.yaml", catalogYaml(25).replaceAll("records: $.data", "records: $.items"));
    const r = await cli(p.dir, ["infer", "catalog", "--stream", "raw"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "raw: no records to infer from: 3 pages fetched, none with records at `$.items`",
    );
    expect(p.exists(RAW_FILE)).toBe(false);
  });

  it("an unknown --stream is a usage error before any request", async () => {
    const r = await cli(p.dir, ["infer", "catalog", "--stream", "nope"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("has no stream `nope`");
    expect(server.requests).toEqual([]);
  });
});

describe("inferred formats agree with the validator", () => {
  // Values that look like a format to a loose pattern but fail ajv-formats: a schema drafted from
  // them must not claim the format, or it would reject its own sample.
  const RECORDS = [
    {
      id: 1,
      at: "2024-01-01T10:00:00Z",
      short_at: "2024-01-01T10:00Z",
      day: "2024-01-31",
      bad_day: "2024-02-30",
      contact: "a@b.co",
      odd_contact: "x@y.z.",
      lines: [{ sku: "a", qty: 1 }, { sku: "b" }],
      meta: { source: "x" },
      empty: [],
    },
    {
      id: 2,
      at: "2024-01-02T10:00:00+01:00",
      short_at: "2024-01-02T10:00:00Z",
      day: "2024-02-29",
      bad_day: "2024-01-01",
      contact: "c@d.org",
      odd_contact: "q@r.st",
      lines: [],
      meta: null,
      empty: [],
    },
  ];
  let url: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const srv = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(RECORDS));
    });
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    close = () => new Promise<void>((resolve) => srv.close(() => resolve()));
  });
  afterAll(async () => {
    await close();
  });

  it("keeps a format only when every value passes the runner's format check; nested shapes merge", async () => {
    p.write(
      "pipelines/odd.yaml",
      ["source:", `  base_url: ${url}`, "streams:", "  rows:", "    path: /rows", ""].join("\n"),
    );
    const r = await cli(p.dir, ["infer", "odd"]);
    expect(r.code, r.stderr).toBe(0);
    const schema = JSON.parse(p.read("schemas/odd.rows.schema.json"));
    expect(schema.properties).toEqual({
      id: { type: "integer" },
      at: { type: "string", format: "date-time" },
      short_at: { type: "string" },
      day: { type: "string", format: "date" },
      bad_day: { type: "string" },
      contact: { type: "string", format: "email" },
      odd_contact: { type: "string" },
      // Array items merged over every array; `required` counts the objects, not the records.
      lines: {
        type: "array",
        items: {
          type: "object",
          properties: { sku: { type: "string" }, qty: { type: "integer" } },
          required: ["sku"],
        },
      },
      meta: { type: ["object", "null"], properties: { source: { type: "string" } }, required: ["source"] },
      empty: { type: "array" },
    });
    const validate = compileRecordSchema(schema);
    for (const rec of RECORDS) expect(validate(rec), JSON.stringify(validate.errors)).toBe(true);
  });
});
