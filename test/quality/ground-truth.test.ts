import { describe, expect, it } from "vitest";
import type { RecordError } from "../../src/records/quality.js";
import type { ErrorGroup } from "../../src/report/report-types.js";
import {
  QUALITY_SCHEMA,
  type QualityServer,
  qualityDataset,
  qualityRecord,
} from "../server/quality-dataset.js";
import {
  cli,
  cursorStream,
  latestReport,
  type Project,
  pipelineYaml,
  type QuarantineLine,
  qualityFixture,
  readJsonl,
  streamReport,
  TRUTH,
} from "./helpers.js";

let server: QualityServer;
let p: Project;
qualityFixture(
  (s, project) => {
    server = s;
    p = project;
  },
  { schema: false },
);

const examples = (ids: number[], value: (id: number) => unknown) =>
  ids.slice(0, 5).map((id) => ({ record_id: String(id), value: value(id) }));

/** The error groups every run over the quality dataset must report, most frequent first. */
function expectedGroups(): ErrorGroup[] {
  return [
    {
      schema_path: "#/properties/price/type",
      field: "/price",
      keyword: "type",
      message: "must be number",
      count: 6,
      expected: "number",
      actual_types: { string: 6 },
      examples: examples(TRUTH.priceString, (id) => (id + 0.5).toFixed(2)),
    },
    {
      schema_path: "#/properties/category/type",
      field: "/category",
      keyword: "type",
      message: "must be string",
      count: 5,
      expected: "string",
      actual_types: { null: 5 },
      examples: examples(TRUTH.categoryNull, () => null),
    },
    {
      schema_path: "#/required",
      field: "/name",
      keyword: "required",
      message: "required field `name` is missing",
      count: 4,
      expected: "present",
      actual_types: { missing: 4 },
      examples: examples(TRUTH.nameMissing, () => null),
    },
    {
      schema_path: "#/properties/status/enum",
      field: "/status",
      keyword: "enum",
      message: "must be equal to one of the allowed values",
      count: 4,
      expected: 'one of "active", "inactive"',
      actual_types: { string: 4 },
      examples: examples(TRUTH.statusEnum, () => "archived"),
    },
    {
      schema_path: "#/properties/updated_at/format",
      field: "/updated_at",
      keyword: "format",
      message: 'must match format "date-time"',
      count: 3,
      expected: "format date-time",
      actual_types: { string: 3 },
      examples: examples(TRUTH.dateBad, () => "yesterday"),
    },
    {
      schema_path: "#/properties/variants/items/properties/sku/type",
      field: "/variants/*/sku",
      keyword: "type",
      message: "must be string",
      count: 2,
      expected: "string",
      actual_types: { integer: 2 },
      examples: examples(TRUTH.skuNumber, (id) => id),
    },
  ];
}

const DRIFT = {
  policy: "warn",
  breached: false,
  new_fields: [{ field: "legacy_code", count: 2, examples: ["L25", "L50"], first_record: "25" }],
  missing_fields: ["discontinued_at"],
  type_changes: [
    { field: "price", expected: ["number"], actual: { number: 54, string: 6 } },
    { field: "category", expected: ["string"], actual: { string: 55, null: 5 } },
  ],
  always_null: ["notes", "extra_null"],
};

/** The errors the quarantine file must list for one record (sorted by path, then keyword). */
function expectedErrors(id: number, draft2020: boolean): RecordError[] {
  const out: RecordError[] = [];
  const t = TRUTH;
  if (t.nameMissing.includes(id))
    out.push({
      path: "/name",
      keyword: "required",
      message: "required field `name` is missing",
      expected: "present",
      actual: "missing",
    });
  if (t.priceString.includes(id))
    out.push({
      path: "/price",
      keyword: "type",
      message: "must be number",
      expected: "number",
      actual: "string",
    });
  if (t.statusEnum.includes(id))
    out.push({
      path: "/status",
      keyword: "enum",
      message: "must be equal to one of the allowed values",
      expected: 'one of "active", "inactive"',
      actual: "string",
    });
  if (t.categoryNull.includes(id))
    out.push({
      path: "/category",
      keyword: "type",
      message: "must be string",
      expected: "string",
      actual: "null",
    });
  if (t.dateBad.includes(id))
    out.push({
      path: "/updated_at",
      keyword: "format",
      message: 'must match format "date-time"',
      expected: "format date-time",
      actual: "string",
    });
  if (t.skuNumber.includes(id))
    out.push({
      path: "/variants/1/sku",
      keyword: "type",
      message: "must be string",
      expected: "string",
      actual: "integer",
    });
  if (draft2020 && t.legacy.includes(id))
    out.push({
      path: "/discontinued_at",
      keyword: "dependentRequired",
      message: "required field `discontinued_at` is missing (`legacy_code` is present)",
      expected: "present",
      actual: "missing",
    });
  return sortErrors(out);
}

const sortErrors = (errors: RecordError[]) =>
  [...errors].sort((a, b) => a.path.localeCompare(b.path) || a.keyword.localeCompare(b.keyword));

/** Quarantine lines: exactly the invalid records, in stream order, each with its own errors. */
function checkQuarantine(file: string, draft2020: boolean) {
  const lines = readJsonl<QuarantineLine>(file);
  expect(lines.map((l) => l.record_id)).toEqual(TRUTH.invalid.map(String));
  for (const line of lines) {
    const id = Number(line.record_id);
    expect(Object.keys(line).sort()).toEqual(["errors", "record", "record_id"]);
    expect(line.record).toEqual(qualityRecord(id));
    expect(sortErrors(line.errors)).toEqual(expectedErrors(id, draft2020));
  }
}

describe("the report counts match the generated ground truth exactly", () => {
  it("draft-07 schema file, cursor pagination", async () => {
    p.write("schemas/item.schema.json", JSON.stringify(QUALITY_SCHEMA, null, 2));
    p.write(
      "pipelines/shop.yaml",
      pipelineYaml({ url: server.url, stream: cursorStream(), validation: "{ max_invalid_ratio: 0.5 }" }),
    );
    const r = await cli(p.dir, ["run", "shop"]);
    expect(r.code, r.stderr).toBe(0);

    const report = latestReport(p, "shop");
    expect(report.status).toBe("ok");
    expect(report.exit_code).toBe(0);
    const s = streamReport(report, "items");
    expect(s.status).toBe("ok");
    expect(s.stop_reason?.code).toBe("no_cursor");
    expect(s.pages).toBe(9); // 60 records, 7 a page
    expect(s.records).toEqual({ seen: 60, valid: 39, invalid: 21, written: 39, duplicates: 0, filtered: 0 });
    expect(TRUTH.invalid).toHaveLength(s.records.invalid);
    expect(s.invalid_ratio).toBe(0.35);
    expect(s.max_invalid_ratio).toBe(0.5);
    expect(s.invalid_policy).toBe("skip");
    expect(s.schema).toEqual({ file: "schemas/item.schema.json", draft: "draft-07" });
    expect(s.output).toEqual({
      path: "out/shop/items.jsonl",
      format: "jsonl",
      mode: "replace",
      committed: true,
    });
    expect(s.quarantine).toBe("out/shop/items.invalid.jsonl");
    expect(s.errors).toEqual(expectedGroups());
    expect(s.drift).toEqual(DRIFT);

    // Field statistics: schema order first, then fields outside the schema in first-seen order.
    expect(s.fields.map((f) => [f.name, f.in_schema, f.present, f.nulls])).toEqual([
      ["id", true, 60, 0],
      ["name", true, 56, 0],
      ["price", true, 60, 0],
      ["status", true, 60, 0],
      ["category", true, 60, 5],
      ["updated_at", true, 60, 0],
      ["notes", true, 60, 60],
      ["variants", true, 60, 0],
      ["discontinued_at", true, 0, 0],
      ["extra_null", false, 60, 60],
      ["legacy_code", false, 2, 0],
    ]);
    expect(s.fields.find((f) => f.name === "price")?.types).toEqual({ number: 54, string: 6 });

    // Written: exactly the valid records, in order; quarantined: exactly the invalid ones.
    const valid = qualityDataset().filter((rec) => !TRUTH.invalid.includes(rec.id as number));
    expect(readJsonl(p.file("out/shop/items.jsonl"))).toEqual(valid);
    checkQuarantine(p.file("out/shop/items.invalid.jsonl"), false);
  });

  it("2020-12 inline schema, page pagination: the 2020-12 keyword is enforced too", async () => {
    const schema = {
      ...QUALITY_SCHEMA,
      $schema: "https://json-schema.org/draft/2020-12/schema",
      // Only a 2020-12 validator knows this keyword: records 25 and 50 (legacy_code) break it.
      dependentRequired: { legacy_code: ["discontinued_at"] },
    };
    p.write(
      "pipelines/shop.yaml",
      pipelineYaml({
        url: server.url,
        stream: [
          "path: /page/items",
          "params: { per_page: 8 }",
          "records: $.results",
          "paginate: { type: page }",
          "primary_key: id",
          `schema: ${JSON.stringify(schema)}`,
        ],
        validation: "{ max_invalid_ratio: 0.5 }",
      }),
    );
    const r = await cli(p.dir, ["run", "shop"]);
    expect(r.code, r.stderr).toBe(0);
    const s = streamReport(latestReport(p, "shop"), "items");
    expect(s.schema).toEqual({ file: null, draft: "2020-12" });
    expect(s.stop_reason?.code).toBe("empty_page");
    expect(s.pages).toBe(9); // 8 pages of records and the empty one
    // 25 and 50 were invalid already: the same 21 records, one more error group.
    expect(s.records).toEqual({ seen: 60, valid: 39, invalid: 21, written: 39, duplicates: 0, filtered: 0 });
    expect(s.invalid_ratio).toBe(0.35);
    const groups = expectedGroups();
    groups.splice(5, 0, {
      schema_path: "#/dependentRequired",
      field: "/discontinued_at",
      keyword: "dependentRequired",
      message: "required field `discontinued_at` is missing (`legacy_code` is present)",
      count: 2,
      expected: "present",
      actual_types: { missing: 2 },
      examples: examples(TRUTH.legacy, () => null),
    });
    expect(s.errors).toEqual(groups);
    expect(s.drift).toEqual(DRIFT);
    checkQuarantine(p.file("out/shop/items.invalid.jsonl"), true);
  });

  it("without a primary key, example record ids are positions in the stream", async () => {
    p.write("schemas/item.schema.json", JSON.stringify(QUALITY_SCHEMA));
    const stream = cursorStream().filter((l) => !l.startsWith("primary_key"));
    // Only the first 20 records (7 invalid): positions equal ids.
    stream[1] = "params: { limit: 7, n: 20 }";
    p.write(
      "pipelines/shop.yaml",
      pipelineYaml({ url: server.url, stream, validation: "{ max_invalid_ratio: 0.5 }" }),
    );
    const r = await cli(p.dir, ["run", "shop"]);
    expect(r.code, r.stderr).toBe(0);
    const s = streamReport(latestReport(p, "shop"), "items");
    const invalid = TRUTH.invalid.filter((id) => id <= 20);
    expect(s.records).toEqual({
      seen: 20,
      valid: 20 - invalid.length,
      invalid: invalid.length,
      written: 13,
      duplicates: 0,
      filtered: 0,
    });
    expect(s.invalid_ratio).toBe(0.35);
    expect(s.errors.find((g) => g.field === "/price")?.examples).toEqual([
      { record_id: "#10", value: "10.50" },
      { record_id: "#20", value: "20.50" },
    ]);
    expect(s.drift?.new_fields).toEqual([]);
    expect(s.drift?.missing_fields).toEqual(["discontinued_at"]);
    expect(readJsonl(p.file("out/shop/items.invalid.jsonl")).map((l) => l.record_id)).toEqual(
      invalid.map((id) => `#${id}`),
    );
  });
});
