import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import type { ErrorObject, ValidateFunction } from "../lang/ajv.js";
import { loadBundle } from "../vendor/load-bundle.js";
import { type ConfigIssue, describeValue } from "./errors.js";
import { mapError } from "./format-messages.js";
import { PIPELINE_SCHEMA, type SchemaNode } from "./format-schema.js";
import type { KeyPath, YamlSource } from "./yaml-source.js";

const require = createRequire(import.meta.url);
let validator: ValidateFunction | null = null;
/**
 * The build precompiles the schema (scripts/gen-validator.mjs → dist/config/pipeline-validator.cjs;
 * the path names the folder so that it also holds from the bundle, dist/app/pipelines.cjs)
 * so a start does not pay for compiling it; from sources (tests), it is compiled here, with the
 * same options.
 */
function getValidator(): ValidateFunction {
  if (validator) return validator;
  const built = new URL("../config/pipeline-validator.cjs", import.meta.url);
  if (existsSync(built)) {
    const mod = loadBundle(built);
    validator = (mod.default ?? mod) as ValidateFunction;
  } else {
    const Ajv = require("ajv").default as new (
      options: Record<string, unknown>,
    ) => { compile: (schema: SchemaNode) => ValidateFunction };
    validator = new Ajv({ strict: false, allErrors: true, verbose: true, discriminator: true }).compile(
      PIPELINE_SCHEMA,
    );
  }
  return validator!;
}

/**
 * Validates a pipeline against schemas/pipeline.schema.json and turns ajv's errors into
 * positioned issues: unknown keys with "did you mean", expected vs found, one issue per place
 * (the words: format-messages.ts).
 */
export function checkFormat(
  config: unknown,
  src: YamlSource,
  mask: (text: string) => string,
  skip: (path: KeyPath) => boolean,
  describeLocation: (path: KeyPath) => Partial<ConfigIssue>,
): ConfigIssue[] {
  const validate = getValidator();
  if (validate(config)) return [];
  const errors = dropOneOfNoise(validate.errors ?? []);
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  // Values are masked before they are described (a long secret cut to 60 characters would no
  // longer be recognised afterwards).
  const show = (v: unknown) => describeValue(typeof v === "string" ? mask(v) : v);
  for (const err of errors) {
    if (err.keyword === "if") continue;
    const path = pointerToPath(err.instancePath, config);
    const made = mapError(err, path, show);
    if (!made) continue;
    const fullPath = made.keyPath;
    if (skip(fullPath)) continue;
    const key = `${made.keyPath.join("\u0000")}|${made.code}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push({
      ...src.issue(made.code, fullPath, made.message, { key: made.atKey, ...made.extra }),
      ...describeLocation(fullPath),
    });
  }
  return issues;
}

/**
 * A plain `oneOf` (flatten, primary_key) reports every branch. When exactly one branch has the
 * value's JSON type, that branch's errors say what is wrong (`{ sep: "." }` → unknown key `sep`);
 * otherwise the `oneOf` error alone says which types are expected.
 */
function dropOneOfNoise(errors: ErrorObject[]): ErrorObject[] {
  const drop = new Set<ErrorObject>();
  for (const e of errors) {
    const branches = (e.parentSchema as SchemaNode | undefined)?.oneOf;
    if (e.keyword !== "oneOf" || !Array.isArray(branches)) continue;
    const matching = branches.flatMap((b, i) => (hasType(b, e.data) ? [i] : []));
    const prefix = `${e.schemaPath}/`;
    for (const other of errors) {
      if (other === e || !other.schemaPath.startsWith(prefix)) continue;
      const branch = Number(other.schemaPath.slice(prefix.length).split("/")[0]);
      if (matching.length !== 1 || branch !== matching[0]) drop.add(other);
    }
    const kept = errors.some((o) => !drop.has(o) && o.schemaPath.startsWith(`${prefix}${matching[0]}/`));
    if (matching.length === 1 && kept) drop.add(e);
  }
  return errors.filter((e) => !drop.has(e));
}

function hasType(schema: SchemaNode, data: unknown): boolean {
  if (schema.type === undefined) return true;
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const actual =
    data === null
      ? "null"
      : Array.isArray(data)
        ? "array"
        : typeof data === "object"
          ? "object"
          : typeof data;
  return types.some(
    (t) => t === actual || (t === "integer" && typeof data === "number" && Number.isInteger(data)),
  );
}

/**
 * A JSON pointer as a key path. With `data`, a segment that indexes an array becomes a number,
 * so that `on_status[1]` is found in the YAML sequence (and printed as `[1]`, not `["1"]`).
 */
export function pointerToPath(pointer: string, data?: unknown): (string | number)[] {
  if (!pointer) return [];
  let cur: unknown = data;
  return pointer
    .slice(1)
    .split("/")
    .map((raw) => {
      const seg = raw.replaceAll("~1", "/").replaceAll("~0", "~");
      const index = Array.isArray(cur) && /^\d+$/.test(seg) ? Number(seg) : null;
      cur =
        cur && typeof cur === "object" ? (cur as Record<string | number, unknown>)[index ?? seg] : undefined;
      return index ?? seg;
    });
}
