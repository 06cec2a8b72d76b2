import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { ErrorObject, ValidateFunction } from "../records/ajv.js";
import { loadBundle } from "../vendor/load-bundle.js";
import { type ConfigErrorCode, type ConfigIssue, closest, describeValue } from "./errors.js";
import type { KeyPath, YamlSource } from "./yaml-source.js";

/**
 * Validates a pipeline against schemas/pipeline.schema.json and turns ajv's errors into
 * positioned issues: unknown keys with "did you mean", expected vs found, one issue per place.
 */
// Read at run time: the schema ships beside dist/ (package.json `files`), it is not compiled in.
export const PIPELINE_SCHEMA = JSON.parse(
  readFileSync(new URL("../../schemas/pipeline.schema.json", import.meta.url), "utf8"),
) as Record<string, any>;

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
    const Ajv = require("ajv").default;
    validator = new Ajv({ strict: false, allErrors: true, verbose: true, discriminator: true }).compile(
      PIPELINE_SCHEMA,
    );
  }
  return validator!;
}

/**
 * The JSON types the format accepts at a key path (every branch of a `oneOf` counted), e.g.
 * `["integer"]` at `source.concurrency`. Empty when the path is not in the format.
 */
export function typesAt(path: KeyPath): Set<string> {
  const out = new Set<string>();
  const deref = (node: any): any => {
    for (let i = 0; node?.$ref && i < 20; i++) {
      node = (node.$ref as string)
        .replace(/^#\//, "")
        .split("/")
        .reduce((n: any, k: string) => n?.[k], PIPELINE_SCHEMA);
    }
    return node;
  };
  const visit = (raw: any, i: number): void => {
    const node = deref(raw);
    if (!node || typeof node !== "object") return;
    for (const k of ["oneOf", "anyOf", "allOf"])
      if (Array.isArray(node[k])) for (const b of node[k]) visit(b, i);
    if (i === path.length) {
      for (const t of [node.type ?? []].flat()) out.add(t);
      return;
    }
    const seg = path[i];
    if (typeof seg === "number") {
      if (node.items) visit(node.items, i + 1);
    } else if (node.properties && Object.hasOwn(node.properties, seg)) visit(node.properties[seg], i + 1);
    else if (node.additionalProperties && typeof node.additionalProperties === "object")
      visit(node.additionalProperties, i + 1);
  };
  visit(PIPELINE_SCHEMA, 0);
  return out;
}

/** The `type` names of a discriminated definition (`auth`, `paginate`). */
export function typeNames(definition: "auth" | "paginate"): string[] {
  const defs = PIPELINE_SCHEMA.definitions;
  return (defs[definition].oneOf as { $ref: string }[]).map(
    (b) => defs[b.$ref.split("/").pop()!].properties.type.const as string,
  );
}

const NAMED_PATTERNS: Record<string, { code: ConfigErrorCode; expected: string }> = {
  duration: {
    code: "bad_duration",
    expected: "a duration like `30s`, `500ms`, `2m`, `1h` or a number of seconds",
  },
  size: { code: "bad_size", expected: "a size like `64MiB`, `512KiB` or a number of bytes" },
  headerName: { code: "bad_value", expected: "an HTTP header name (letters, digits, `-`)" },
};

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
    if (e.keyword !== "oneOf" || !Array.isArray((e.parentSchema as any)?.oneOf)) continue;
    const branches = (e.parentSchema as any).oneOf as Record<string, any>[];
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

function hasType(schema: Record<string, any>, data: unknown): boolean {
  if (schema.type === undefined) return true;
  const types: string[] = Array.isArray(schema.type) ? schema.type : [schema.type];
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
  let cur: any = data;
  return pointer
    .slice(1)
    .split("/")
    .map((raw) => {
      const seg = raw.replaceAll("~1", "/").replaceAll("~0", "~");
      const index = Array.isArray(cur) && /^\d+$/.test(seg) ? Number(seg) : null;
      cur = cur && typeof cur === "object" ? cur[index ?? seg] : undefined;
      return index ?? seg;
    });
}

interface Mapped {
  code: ConfigErrorCode;
  keyPath: (string | number)[];
  message: string;
  atKey?: boolean;
  extra?: Partial<ConfigIssue>;
}

function mapError(err: ErrorObject, path: (string | number)[], show: (v: unknown) => string): Mapped | null {
  // An error about a map's key name (ajv's `propertyNames` sub-errors): a named pattern (a
  // header name) says what a name looks like; the others are left to the `propertyNames` error.
  const propertyName = (err as ErrorObject & { propertyName?: string }).propertyName;
  if (propertyName !== undefined && err.keyword !== "propertyNames") {
    if (err.schemaPath === "#/definitions/streamName/not") {
      // `.` and `..` have only allowed characters, but as a path component they climb.
      return {
        code: "bad_value",
        keyPath: [...path, propertyName],
        atKey: true,
        message: `\`${propertyName}\` is not a stream name: a stream name is part of file names (\`<stream>.jsonl\`), so it cannot be \`.\` or \`..\``,
        extra: { expected: "a name other than `.` and `..`", found: show(propertyName) },
      };
    }
    const def = err.schemaPath.match(/#\/definitions\/([A-Za-z]+)\/pattern$/)?.[1];
    if (err.keyword !== "pattern" || !def || !NAMED_PATTERNS[def]) return null;
    const { code, expected } = NAMED_PATTERNS[def];
    return {
      code,
      keyPath: [...path, propertyName],
      atKey: true,
      message: `expected ${expected}, found ${show(propertyName)}`,
      extra: { expected, found: show(propertyName) },
    };
  }
  const data = err.data;
  const parentSchema = (err.parentSchema ?? {}) as Record<string, any>;
  switch (err.keyword) {
    case "additionalProperties": {
      const key = (err.params as { additionalProperty: string }).additionalProperty;
      const allowed = Object.keys(parentSchema.properties ?? {});
      const guess = closest(key, allowed);
      return {
        code: "unknown_key",
        keyPath: [...path, key],
        atKey: true,
        message: `unknown key \`${key}\`${guess ? ` (did you mean \`${guess}\`?)` : ""}; expected one of ${allowed.map((k) => `\`${k}\``).join(", ")}`,
        extra: {
          expected: allowed.join(", "),
          found: key,
          hint: guess ? `did you mean \`${guess}\`?` : undefined,
        },
      };
    }
    case "required": {
      const key = (err.params as { missingProperty: string }).missingProperty;
      const kind = parentSchema.discriminator && key === "type" ? discriminatorKind(err, path) : null;
      const names = kind ? typeNames(kind) : null;
      return {
        code: "missing_key",
        keyPath: path,
        // At the key that names the incomplete map (`source:`), as editors show it.
        atKey: path.length > 0,
        message: `missing required key \`${key}\`${names ? `; use one of ${names.join(", ")}` : ""}`,
        extra: { expected: names ? names.join(", ") : `a \`${key}\` key`, found: "none" },
      };
    }
    case "discriminator": {
      const p = err.params as { error: string; tag: string; tagValue: unknown };
      const kind = discriminatorKind(err, path);
      const names = typeNames(kind);
      if (p.error === "tag" && (data as any)?.type === undefined) {
        return {
          code: "missing_key",
          keyPath: path,
          atKey: path.length > 0,
          message: `missing required key \`type\`; use one of ${names.join(", ")}`,
          extra: { expected: names.join(", "), found: "none" },
        };
      }
      const found = String(p.tagValue);
      const guess = closest(found, names);
      return {
        code: "unknown_type",
        keyPath: [...path, "type"],
        message: `unknown ${kind} type \`${found}\`; use one of ${names.join(", ")}${guess ? ` (did you mean \`${guess}\`?)` : ""}`,
        extra: { expected: names.join(", "), found, hint: guess ? `did you mean \`${guess}\`?` : undefined },
      };
    }
    case "type": {
      const expected = describeType(parentSchema, (err.params as { type: string }).type);
      if (err.schemaPath.includes("/definitions/duration/"))
        return durationLike("duration", path, show(data));
      if (err.schemaPath.includes("/definitions/size/")) return durationLike("size", path, show(data));
      return {
        code: "wrong_type",
        keyPath: path,
        message: `expected ${expected}, found ${show(data)}`,
        extra: { expected, found: show(data) },
      };
    }
    case "oneOf": {
      const expected = (parentSchema.oneOf as any[]).map((b) => describeType(b, b.type)).join(" or ");
      return {
        code: "wrong_type",
        keyPath: path,
        message: `expected ${expected}, found ${show(data)}`,
        extra: { expected, found: show(data) },
      };
    }
    case "enum":
    case "const": {
      const allowed: unknown[] =
        err.keyword === "enum"
          ? (err.params as { allowedValues: unknown[] }).allowedValues
          : [(err.params as { allowedValue: unknown }).allowedValue];
      const guess = typeof data === "string" ? closest(data, allowed.map(String)) : undefined;
      const list = allowed.map((v) => `\`${v}\``).join(", ");
      return {
        code: "bad_value",
        keyPath: path,
        message: `expected ${allowed.length > 1 ? `one of ${list}` : list}, found ${show(data)}${guess ? ` (did you mean \`${guess}\`?)` : ""}`,
        extra: {
          expected: list,
          found: show(data),
          hint: guess ? `did you mean \`${guess}\`?` : undefined,
        },
      };
    }
    case "pattern": {
      const def = err.schemaPath.match(/#\/definitions\/([A-Za-z]+)\/pattern$/)?.[1];
      if (def === "duration" || def === "size") return durationLike(def, path, show(data));
      if (def && NAMED_PATTERNS[def]) {
        const { code, expected } = NAMED_PATTERNS[def];
        return {
          code,
          keyPath: path,
          message: `expected ${expected}, found ${show(data)}`,
          extra: { expected, found: show(data) },
        };
      }
      if (path[path.length - 1] === "base_url" || path[path.length - 1] === "token_url") {
        const expected = "an http(s) URL like `https://api.example.com/v1`";
        return {
          code: "bad_url",
          keyPath: path,
          message: `expected ${expected}, found ${show(data)}`,
          extra: { expected, found: show(data) },
        };
      }
      return {
        code: "bad_value",
        keyPath: path,
        message: `expected a value matching ${err.params && (err.params as any).pattern}, found ${show(data)}`,
      };
    }
    case "propertyNames": {
      const name = (err.params as { propertyName: string }).propertyName;
      return {
        code: "bad_value",
        keyPath: [...path, name],
        atKey: true,
        message: `\`${name}\` is not a valid name here: use letters, digits, \`.\`, \`_\` and \`-\``,
        extra: { expected: "letters, digits, `.`, `_`, `-`", found: name },
      };
    }
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum": {
      if (err.schemaPath.includes("/definitions/duration/"))
        return durationLike("duration", path, show(data));
      if (err.schemaPath.includes("/definitions/size/")) return durationLike("size", path, show(data));
      const limit = (err.params as { limit: number }).limit;
      const word = {
        minimum: "at least",
        maximum: "at most",
        exclusiveMinimum: "above",
        exclusiveMaximum: "below",
      }[err.keyword];
      return {
        code: "bad_value",
        keyPath: path,
        message: `expected a number ${word} ${limit}, found ${show(data)}`,
        extra: { expected: `${word} ${limit}`, found: String(data) },
      };
    }
    case "minLength":
      return { code: "bad_value", keyPath: path, message: "expected a non-empty string, found an empty one" };
    case "minProperties":
      return { code: "bad_value", keyPath: path, message: "expected at least one entry, found an empty map" };
    case "minItems":
      return { code: "bad_value", keyPath: path, message: "expected at least one item, found an empty list" };
    case "uniqueItems":
      return { code: "bad_value", keyPath: path, message: "expected distinct items, found a repeated one" };
    default:
      return { code: "bad_value", keyPath: path, message: err.message ?? "invalid value" };
  }
}

function discriminatorKind(err: ErrorObject, path: (string | number)[]): "auth" | "paginate" {
  return err.schemaPath.includes("auth") || path[path.length - 1] === "auth" ? "auth" : "paginate";
}

function durationLike(kind: "duration" | "size", path: (string | number)[], found: string): Mapped {
  const { code, expected } = NAMED_PATTERNS[kind];
  return {
    code,
    keyPath: path,
    message: `expected ${expected}, found ${found}`,
    extra: { expected, found },
  };
}

function describeType(schema: Record<string, any>, type: string | string[]): string {
  const types = Array.isArray(type) ? type : [type];
  const words = types.map((t) => {
    switch (t) {
      case "object":
        return "a map";
      case "array":
        return schema.items?.type === "string" ? "a list of strings" : "a list";
      case "integer":
        return "a whole number";
      case "number":
        return "a number";
      case "boolean":
        return "`true` or `false`";
      case "string":
        return "a string";
      case "null":
        return "null";
      default:
        return t;
    }
  });
  return words.join(" or ");
}
