import type { ErrorObject } from "../lang/ajv.js";
import { type ConfigErrorCode, type ConfigIssue, closest } from "./errors.js";
import { type SchemaNode, typeNames } from "./format-schema.js";

/** One ajv error said in the format's words: code, key path, message, expected vs found. */
export interface Mapped {
  code: ConfigErrorCode;
  keyPath: (string | number)[];
  message: string;
  atKey?: boolean;
  extra?: Partial<ConfigIssue>;
}

type Path = (string | number)[];
type Show = (v: unknown) => string;
type Handler = (err: ErrorObject, path: Path, show: Show, parentSchema: SchemaNode) => Mapped | null;

const NAMED_PATTERNS: Record<string, { code: ConfigErrorCode; expected: string }> = {
  duration: {
    code: "bad_duration",
    expected: "a duration like `30s`, `500ms`, `2m`, `1h` or a number of seconds",
  },
  size: { code: "bad_size", expected: "a size like `64MiB`, `512KiB` or a number of bytes" },
  headerName: { code: "bad_value", expected: "an HTTP header name (letters, digits, `-`)" },
};

/** An ajv error as a positioned problem; null for an error another one already says. */
export function mapError(err: ErrorObject, path: Path, show: Show): Mapped | null {
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
  const handler = Object.hasOwn(HANDLERS, err.keyword) ? HANDLERS[err.keyword] : undefined;
  const parentSchema = (err.parentSchema ?? {}) as SchemaNode;
  return handler
    ? handler(err, path, show, parentSchema)
    : { code: "bad_value", keyPath: path, message: err.message ?? "invalid value" };
}

/** `expected …, found …` with the same words in the message and the fields. */
function expectedFound(code: ConfigErrorCode, path: Path, expected: string, found: string): Mapped {
  return { code, keyPath: path, message: `expected ${expected}, found ${found}`, extra: { expected, found } };
}

const didYouMean = (guess: string | undefined) => (guess ? `did you mean \`${guess}\`?` : undefined);

const additionalProperties: Handler = (err, path, _show, parentSchema) => {
  const key = (err.params as { additionalProperty: string }).additionalProperty;
  const allowed = Object.keys(parentSchema.properties ?? {});
  const guess = closest(key, allowed);
  return {
    code: "unknown_key",
    keyPath: [...path, key],
    atKey: true,
    message: `unknown key \`${key}\`${guess ? ` (did you mean \`${guess}\`?)` : ""}; expected one of ${allowed.map((k) => `\`${k}\``).join(", ")}`,
    extra: { expected: allowed.join(", "), found: key, hint: didYouMean(guess) },
  };
};

const required: Handler = (err, path, _show, parentSchema) => {
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
};

const discriminator: Handler = (err, path) => {
  const p = err.params as { error: string; tag: string; tagValue: unknown };
  const kind = discriminatorKind(err, path);
  const names = typeNames(kind);
  const data: unknown = err.data;
  if (p.error === "tag" && (data as { type?: unknown } | null)?.type === undefined) {
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
    extra: { expected: names.join(", "), found, hint: didYouMean(guess) },
  };
};

/** A duration or size that is out of range or of the wrong type is said as a duration or size. */
function durationOrSize(err: ErrorObject, path: Path, show: Show): Mapped | null {
  if (err.schemaPath.includes("/definitions/duration/"))
    return durationLike("duration", path, show(err.data));
  if (err.schemaPath.includes("/definitions/size/")) return durationLike("size", path, show(err.data));
  return null;
}

const type: Handler = (err, path, show, parentSchema) =>
  durationOrSize(err, path, show) ??
  expectedFound(
    "wrong_type",
    path,
    describeType(parentSchema, (err.params as { type: string }).type),
    show(err.data),
  );

const oneOf: Handler = (err, path, show, parentSchema) => {
  const expected = (parentSchema.oneOf ?? []).map((b) => describeType(b, b.type ?? [])).join(" or ");
  return expectedFound("wrong_type", path, expected, show(err.data));
};

const enumOrConst: Handler = (err, path, show) => {
  const data: unknown = err.data;
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
    extra: { expected: list, found: show(data), hint: didYouMean(guess) },
  };
};

const pattern: Handler = (err, path, show) => {
  const def = err.schemaPath.match(/#\/definitions\/([A-Za-z]+)\/pattern$/)?.[1];
  if (def === "duration" || def === "size") return durationLike(def, path, show(err.data));
  if (def && NAMED_PATTERNS[def]) {
    const { code, expected } = NAMED_PATTERNS[def];
    return expectedFound(code, path, expected, show(err.data));
  }
  if (path[path.length - 1] === "base_url" || path[path.length - 1] === "token_url")
    return expectedFound("bad_url", path, "an http(s) URL like `https://api.example.com/v1`", show(err.data));
  return {
    code: "bad_value",
    keyPath: path,
    message: `expected a value matching ${err.params && (err.params as { pattern?: string }).pattern}, found ${show(err.data)}`,
  };
};

const propertyNames: Handler = (err, path) => {
  const name = (err.params as { propertyName: string }).propertyName;
  return {
    code: "bad_value",
    keyPath: [...path, name],
    atKey: true,
    message: `\`${name}\` is not a valid name here: use letters, digits, \`.\`, \`_\` and \`-\``,
    extra: { expected: "letters, digits, `.`, `_`, `-`", found: name },
  };
};

const LIMIT_WORDS: Record<string, string> = {
  minimum: "at least",
  maximum: "at most",
  exclusiveMinimum: "above",
  exclusiveMaximum: "below",
};

const limit: Handler = (err, path, show) => {
  const asDuration = durationOrSize(err, path, show);
  if (asDuration) return asDuration;
  const bound = (err.params as { limit: number }).limit;
  const word = LIMIT_WORDS[err.keyword];
  return {
    code: "bad_value",
    keyPath: path,
    message: `expected a number ${word} ${bound}, found ${show(err.data)}`,
    extra: { expected: `${word} ${bound}`, found: String(err.data) },
  };
};

const plain =
  (message: string): Handler =>
  (_err, path) => ({ code: "bad_value", keyPath: path, message });

const HANDLERS: Record<string, Handler> = {
  additionalProperties,
  required,
  discriminator,
  type,
  oneOf,
  enum: enumOrConst,
  const: enumOrConst,
  pattern,
  propertyNames,
  minimum: limit,
  maximum: limit,
  exclusiveMinimum: limit,
  exclusiveMaximum: limit,
  minLength: plain("expected a non-empty string, found an empty one"),
  minProperties: plain("expected at least one entry, found an empty map"),
  minItems: plain("expected at least one item, found an empty list"),
  uniqueItems: plain("expected distinct items, found a repeated one"),
};

function discriminatorKind(err: ErrorObject, path: Path): "auth" | "paginate" {
  return err.schemaPath.includes("auth") || path[path.length - 1] === "auth" ? "auth" : "paginate";
}

function durationLike(kind: "duration" | "size", path: Path, found: string): Mapped {
  const { code, expected } = NAMED_PATTERNS[kind];
  return expectedFound(code, path, expected, found);
}

function describeType(schema: SchemaNode, type: string | string[]): string {
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
