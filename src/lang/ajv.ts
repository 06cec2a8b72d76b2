import { existsSync } from "node:fs";
import {
  Ajv,
  Ajv2020,
  addFormats,
  type ErrorObject,
  type AjvOptions as Options,
  type ValidateFunction,
} from "../vendor/config-libs.js";
import { loadBundle } from "../vendor/load-bundle.js";
import { isDateTime, isEmail } from "./fast-formats.js";

export type { ErrorObject, ValidateFunction };
export type AjvInstance = InstanceType<typeof Ajv>;

const DRAFT_07 = new Set([
  "http://json-schema.org/draft-07/schema#",
  "http://json-schema.org/draft-07/schema",
  "https://json-schema.org/draft-07/schema#",
  "https://json-schema.org/draft-07/schema",
]);
const DRAFT_2020 = new Set([
  "https://json-schema.org/draft/2020-12/schema",
  "https://json-schema.org/draft/2020-12/schema#",
  "http://json-schema.org/draft/2020-12/schema",
]);

export type Draft = "draft-07" | "2020-12";

/** The draft a record schema asks for with `$schema` (draft-07 when it names none). */
export function schemaDraft(schema: Record<string, unknown>): Draft {
  const id = schema.$schema;
  if (id === undefined || (typeof id === "string" && DRAFT_07.has(id))) return "draft-07";
  if (typeof id === "string" && DRAFT_2020.has(id)) return "2020-12";
  throw new Error(
    `unsupported \`$schema\` ${JSON.stringify(id)}: use draft-07 (http://json-schema.org/draft-07/schema#) or 2020-12 (https://json-schema.org/draft/2020-12/schema)`,
  );
}

/** One validator instance per draft, shared by the run (creating one with formats is costly). */
const instances = new Map<Draft, AjvInstance>();
const compiled = new WeakMap<object, ValidateFunction>();
const byText = new Map<string, ValidateFunction>();

const META_SCHEMA_ID: Record<Draft, string> = {
  "draft-07": "http://json-schema.org/draft-07/schema",
  "2020-12": "https://json-schema.org/draft/2020-12/schema",
};
// Keep these options identical to the build's in scripts/gen-validator.mjs.
const META_VALIDATOR_OPTIONS: Options = { strict: false, allErrors: true };
const metaValidators = new Map<Draft, ValidateFunction>();

/**
 * The validator of a draft's meta-schema. The build precompiles both (scripts/gen-validator.mjs →
 * dist/lang/meta-<draft>.cjs): ajv would otherwise compile the meta-schema at the first
 * record schema of every start, about 45 ms. From sources (tests) it is compiled here.
 */
export function metaSchemaValidator(draft: Draft): ValidateFunction {
  let validate = metaValidators.get(draft);
  if (validate) return validate;
  // `../records/`: the same path from dist/records/ and from the bundle in dist/app/.
  const built = new URL(`../lang/meta-${draft}.cjs`, import.meta.url);
  if (existsSync(built)) {
    const mod = loadBundle(built);
    validate = (mod.default ?? mod) as ValidateFunction;
  } else {
    const ajv = draft === "2020-12" ? new Ajv2020(META_VALIDATOR_OPTIONS) : new Ajv(META_VALIDATOR_OPTIONS);
    validate = ajv.getSchema(META_SCHEMA_ID[draft])!;
  }
  metaValidators.set(draft, validate);
  return validate;
}

/** Throws ajv's own "schema is invalid: …" when a schema breaks its draft's meta-schema. */
function checkMetaSchema(schema: object, draft: Draft): void {
  const validate = metaSchemaValidator(draft);
  if (validate(schema)) return;
  const text = (validate.errors ?? []).map((e) => `data${e.instancePath} ${e.message}`).join(", ");
  throw new Error(`schema is invalid: ${text}`);
}

function newRecordAjv(draft: Draft): AjvInstance {
  // The meta-schema check is ours (checkMetaSchema), with a precompiled validator; it also
  // accepts every spelling of a draft's URI that schemaDraft does, where ajv knows one.
  const opts: Options = { strict: false, allErrors: true, verbose: true, validateSchema: false };
  const ajv = draft === "2020-12" ? new Ajv2020(opts) : new Ajv(opts);
  addFormats(ajv);
  // Same semantics as ajv-formats' date-time, about twice as fast (it runs for every record).
  type Format = { compare?: (a: string, b: string) => number };
  const full = (ajv as unknown as { formats: Record<string, Format> }).formats["date-time"];
  ajv.addFormat("date-time", { type: "string", validate: isDateTime, compare: full?.compare });
  // And `email`: the same answers as its regex, about three times as fast.
  ajv.addFormat("email", { type: "string", validate: isEmail });
  return ajv as AjvInstance;
}

/**
 * Compiles a record schema with the validator of its draft and every ajv-formats format, once
 * per schema object (loading checks it, the run reuses it).
 */
export function compileRecordSchema(schema: unknown): ValidateFunction {
  if (!schema || typeof schema !== "object" || Array.isArray(schema)) {
    throw new Error("a JSON Schema is an object");
  }
  const hit = compiled.get(schema);
  if (hit) return hit;
  // Several streams or pipelines often read the same schema file: compile its text once.
  const text = JSON.stringify(schema);
  const same = byText.get(text);
  if (same) {
    compiled.set(schema, same);
    return same;
  }
  const draft = schemaDraft(schema as Record<string, unknown>);
  checkMetaSchema(schema, draft);
  let ajv = instances.get(draft);
  if (!ajv) instances.set(draft, (ajv = newRecordAjv(draft)));
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(schema as object);
  } catch (err) {
    // Two schemas with the same `$id` (two pipelines, say) cannot share an instance.
    if (!/already exists/.test((err as Error).message)) throw err;
    validate = newRecordAjv(draft).compile(schema as object);
  }
  compiled.set(schema, validate);
  byText.set(text, validate);
  return validate;
}

/**
 * The string formats of the record validator of `schema`'s draft, as it checks them (the byte
 * check, records/byte-check.ts, asks for them): a function of the string, or null for a format
 * the validator does not check on a string alone (a number format such as `int32`, an async or
 * unknown one).
 */
export function recordStringFormats(schema: unknown): (name: string) => ((s: string) => boolean) | null {
  const draft =
    schema && typeof schema === "object" && !Array.isArray(schema)
      ? schemaDraft(schema as Record<string, unknown>)
      : "draft-07";
  let ajv = instances.get(draft);
  if (!ajv) instances.set(draft, (ajv = newRecordAjv(draft)));
  const formats = (ajv as unknown as { formats: Record<string, unknown> }).formats;
  return (name) => {
    if (!Object.hasOwn(formats, name)) return null;
    const f = formats[name];
    if (f === true) return () => true; // known, not checked (`password`, `binary`)
    if (f instanceof RegExp) return (s) => f.test(s);
    if (typeof f === "function") return f as (s: string) => boolean;
    if (!f || typeof f !== "object") return null;
    const def = f as { type?: string; async?: boolean; validate?: unknown };
    if (def.async || (def.type !== undefined && def.type !== "string")) return null;
    const v = def.validate;
    if (v instanceof RegExp) return (s) => v.test(s);
    // Called as ajv calls it: a method of its definition.
    return typeof v === "function" ? (s) => (v as (s: string) => boolean).call(def, s) : null;
  };
}
