/**
 * Record schemas are checked against their draft's meta-schema by a validator the build
 * precompiles (dist/lang/meta-<draft>.cjs), not by ajv's own `validateSchema` at each start.
 * These tests hold both (the precompiled one and the from-sources fallback) to ajv's verdict and
 * message on a corpus of valid and broken schemas.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import _Ajv from "ajv";
import _Ajv2020 from "ajv/dist/2020.js";
import _addFormats from "ajv-formats";
import { beforeAll, describe, expect, it } from "vitest";
import { compileRecordSchema, type Draft, metaSchemaValidator } from "../../src/lang/ajv.js";
import { ensureBuilt } from "../built.js";

const Ajv = ((_Ajv as any).default ?? _Ajv) as typeof _Ajv.default;
const Ajv2020 = ((_Ajv2020 as any).default ?? _Ajv2020) as typeof _Ajv2020.default;
const addFormats = ((_addFormats as any).default ?? _addFormats) as typeof _addFormats.default;
const REPO = fileURLToPath(new URL("../..", import.meta.url));
const require = createRequire(import.meta.url);

/** ajv's own check, as compileRecordSchema used to run it: the record options plus formats. */
const reference = new Map<Draft, InstanceType<typeof Ajv>>();
function ajvVerdict(draft: Draft, schema: unknown): string {
  let ajv = reference.get(draft);
  if (!ajv) {
    const opts = { strict: false, allErrors: true, verbose: true };
    ajv = draft === "2020-12" ? new Ajv2020(opts) : new Ajv(opts);
    addFormats(ajv);
    reference.set(draft, ajv);
  }
  const ok = ajv.validateSchema(schema as object) as boolean;
  return ok ? "valid" : `schema is invalid: ${ajv.errorsText(ajv.errors)}`;
}

function verdict(validate: (s: unknown) => boolean, schema: unknown): string {
  if (validate(schema)) return "valid";
  const errors = (validate as unknown as { errors: { instancePath: string; message: string }[] }).errors;
  return `schema is invalid: ${errors.map((e) => `data${e.instancePath} ${e.message}`).join(", ")}`;
}

// Broken values for keywords of both drafts; every one is also tried nested in `properties`.
const KEYWORDS: [string, unknown][] = [
  ["type", 12],
  ["type", "strin"],
  ["type", ["string", "strin"]],
  ["type", []],
  ["required", "id"],
  ["required", [1]],
  ["required", ["a", "a"]],
  ["properties", []],
  ["properties", { a: 1 }],
  ["minimum", "3"],
  ["maxLength", -1],
  ["minLength", 1.5],
  ["pattern", 5],
  ["items", 3],
  ["enum", "x"],
  ["additionalProperties", "no"],
  ["format", 5],
  ["$id", 5],
  ["anyOf", []],
  ["oneOf", {}],
  ["allOf", [1]],
  ["not", "x"],
  ["$ref", 5],
  ["multipleOf", 0],
  ["uniqueItems", "yes"],
  ["const", { any: "thing" }],
  ["dependencies", { a: 5 }],
  ["definitions", { a: 5 }],
  ["$defs", { a: 5 }],
  ["prefixItems", {}],
  ["unevaluatedProperties", "x"],
  ["dependentRequired", { a: "b" }],
  ["contains", 1],
  ["propertyNames", { type: "string", maxLength: 3 }],
  ["if", { required: ["a"] }],
];

function corpus(): unknown[] {
  const out: unknown[] = [
    true,
    false,
    {},
    { type: "object", properties: { id: { type: "integer" }, at: { type: "string", format: "date-time" } } },
    { type: "array", items: { type: ["string", "null"] }, minItems: 1 },
  ];
  for (const [k, v] of KEYWORDS) {
    out.push({ [k]: v });
    out.push({ type: "object", properties: { a: { [k]: v } } });
    out.push({ type: "object", properties: { a: { type: "array", items: { [k]: v } } } });
  }
  // Pairs of broken keywords, several errors at once (allErrors lists them all, in order).
  for (let i = 0; i + 1 < KEYWORDS.length; i += 3) {
    const [k1, v1] = KEYWORDS[i];
    const [k2, v2] = KEYWORDS[i + 1];
    out.push({ type: "object", properties: { a: { [k1]: v1 }, b: { [k2]: v2 } } });
  }
  return out;
}

const DRAFTS: Draft[] = ["draft-07", "2020-12"];

describe("record schemas against their meta-schema", () => {
  beforeAll(ensureBuilt, 300_000);
  const schemas = corpus();

  for (const draft of DRAFTS) {
    it(`${draft}: the precompiled validator of the build gives ajv's verdict and message`, () => {
      const file = path.join(REPO, "dist", "lang", `meta-${draft}.cjs`);
      expect(existsSync(file), `${file}: run \`npm run build\``).toBe(true);
      const mod = require(file);
      const precompiled = mod.default ?? mod;
      let invalid = 0;
      for (const schema of schemas) {
        const want = ajvVerdict(draft, schema);
        expect(verdict(precompiled, schema), JSON.stringify(schema)).toBe(want);
        if (want !== "valid") invalid++;
      }
      // The corpus really has broken schemas (a validator that accepts everything fails above).
      expect(invalid).toBeGreaterThan(60);
    });

    it(`${draft}: the from-sources validator agrees too`, () => {
      const validate = metaSchemaValidator(draft);
      for (const schema of schemas) expect(verdict(validate, schema)).toBe(ajvVerdict(draft, schema));
    });
  }

  it("a broken schema fails to compile with ajv's message", () => {
    expect(() => compileRecordSchema({ type: "object", properties: { id: { type: 12 } } })).toThrow(
      "schema is invalid: data/properties/id/type must be equal to one of the allowed values",
    );
    expect(() =>
      compileRecordSchema({
        $schema: "https://json-schema.org/draft/2020-12/schema",
        prefixItems: {},
      }),
    ).toThrow("schema is invalid: data/prefixItems must be array");
  });

  it("every spelling of a draft's URI that is accepted also compiles and validates", () => {
    // ajv knows one spelling per draft: these two used to fail with "no schema with key or ref".
    for (const $schema of [
      "https://json-schema.org/draft-07/schema#",
      "http://json-schema.org/draft-07/schema",
      "http://json-schema.org/draft/2020-12/schema",
      "https://json-schema.org/draft/2020-12/schema#",
    ]) {
      const validate = compileRecordSchema({
        $schema,
        type: "object",
        required: ["id"],
        properties: { id: { type: "integer" } },
      });
      expect(validate({ id: 1 }), $schema).toBe(true);
      expect(validate({ id: "1" }), $schema).toBe(false);
    }
  });
});
