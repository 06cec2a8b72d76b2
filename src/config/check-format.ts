import { readFileSync } from "node:fs";
import { type ErrorObject, newAjv, type ValidateFunction } from "../records/ajv.js";
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

let validator: ValidateFunction | null = null;
function getValidator(): ValidateFunction {
  if (!validator) validator = newAjv({ verbose: true, discriminator: true }).compile(PIPELINE_SCHEMA);
  return validator;
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
  skip: (path: KeyPath) => boolean,
  describeLocation: (path: KeyPath) => Partial<ConfigIssue>,
): ConfigIssue[] {
  const validate = getValidator();
  if (validate(config)) return [];
  const errors = validate.errors ?? [];
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  // oneOf alternatives (flatten, primary_key) report every branch: keep one issue per place.
  const oneOfPaths = new Set(
    errors
      .filter((e) => e.keyword === "oneOf" && !e.schemaPath.endsWith("discriminator"))
      .map((e) => e.instancePath),
  );
  for (const err of errors) {
    if (err.keyword === "if") continue;
    if (
      oneOfPaths.has(err.instancePath) &&
      err.keyword !== "oneOf" &&
      /\/oneOf\/\d+\//.test(err.schemaPath)
    ) {
      if (!isDeeper(err, errors)) continue;
    }
    const path = pointerToPath(err.instancePath);
    const made = mapError(err, path, src);
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

/** A branch error below the oneOf's own level (inside the object branch, say) is worth showing. */
function isDeeper(err: ErrorObject, all: ErrorObject[]): boolean {
  const parent = all.find((e) => e.keyword === "oneOf" && e.instancePath === err.instancePath);
  return !parent || err.instancePath !== parent.instancePath;
}

export function pointerToPath(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
}

interface Mapped {
  code: ConfigErrorCode;
  keyPath: (string | number)[];
  message: string;
  atKey?: boolean;
  extra?: Partial<ConfigIssue>;
}

function mapError(err: ErrorObject, path: (string | number)[], _src: YamlSource): Mapped | null {
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
      return {
        code: "missing_key",
        keyPath: path,
        message: `missing required key \`${key}\``,
        extra: { expected: `a \`${key}\` key`, found: "none" },
      };
    }
    case "discriminator": {
      const p = err.params as { error: string; tag: string; tagValue: unknown };
      const kind = err.schemaPath.includes("auth") || path[path.length - 1] === "auth" ? "auth" : "paginate";
      const names = typeNames(kind);
      if (p.error === "tag" && (data as any)?.type === undefined) {
        return {
          code: "missing_key",
          keyPath: path,
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
      if (err.schemaPath.includes("/definitions/duration/")) return durationLike("duration", path, data);
      if (err.schemaPath.includes("/definitions/size/")) return durationLike("size", path, data);
      return {
        code: "wrong_type",
        keyPath: path,
        message: `expected ${expected}, found ${describeValue(data)}`,
        extra: { expected, found: describeValue(data) },
      };
    }
    case "oneOf": {
      const expected = (parentSchema.oneOf as any[]).map((b) => describeType(b, b.type)).join(" or ");
      return {
        code: "wrong_type",
        keyPath: path,
        message: `expected ${expected}, found ${describeValue(data)}`,
        extra: { expected, found: describeValue(data) },
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
        message: `expected ${allowed.length > 1 ? `one of ${list}` : list}, found ${describeValue(data)}${guess ? ` (did you mean \`${guess}\`?)` : ""}`,
        extra: {
          expected: list,
          found: describeValue(data),
          hint: guess ? `did you mean \`${guess}\`?` : undefined,
        },
      };
    }
    case "pattern": {
      const def = err.schemaPath.match(/#\/definitions\/([A-Za-z]+)\/pattern$/)?.[1];
      if (def === "duration" || def === "size") return durationLike(def, path, data);
      if (def && NAMED_PATTERNS[def]) {
        const { code, expected } = NAMED_PATTERNS[def];
        return {
          code,
          keyPath: path,
          message: `expected ${expected}, found ${describeValue(data)}`,
          extra: { expected, found: describeValue(data) },
        };
      }
      if (path[path.length - 1] === "base_url" || path[path.length - 1] === "token_url") {
        const expected = "an http(s) URL like `https://api.example.com/v1`";
        return {
          code: "bad_url",
          keyPath: path,
          message: `expected ${expected}, found ${describeValue(data)}`,
          extra: { expected, found: describeValue(data) },
        };
      }
      return {
        code: "bad_value",
        keyPath: path,
        message: `expected a value matching ${err.params && (err.params as any).pattern}, found ${describeValue(data)}`,
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
      if (err.schemaPath.includes("/definitions/duration/")) return durationLike("duration", path, data);
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
        message: `expected a number ${word} ${limit}, found ${describeValue(data)}`,
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

function durationLike(kind: "duration" | "size", path: (string | number)[], data: unknown): Mapped {
  const { code, expected } = NAMED_PATTERNS[kind];
  return {
    code,
    keyPath: path,
    message: `expected ${expected}, found ${describeValue(data)}`,
    extra: { expected, found: describeValue(data) },
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
