import type { ErrorObject } from "../lang/ajv.js";
import { cut } from "../shared/errors.js";
import { hasBigInt, stringifyJson } from "../shared/json-text.js";
import type { ConversionError } from "./field-specs.js";
import type { ErrorGroup } from "./quality-types.js";

/**
 * Validation errors of a stream, grouped for the report (by schema location and field, with
 * counts by actual type and a few examples), and the value helpers the quality checks share.
 */

/** One validation error of one record, as written to the quarantine file. */
export interface RecordError {
  path: string;
  keyword: string;
  message: string;
  expected: string | null;
  actual: string;
}

export type JsonType = "null" | "array" | "object" | "string" | "boolean" | "integer" | "number";

export function jsonType(v: unknown): JsonType {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return "array";
  switch (typeof v) {
    case "string":
      return "string";
    case "boolean":
      return "boolean";
    case "number":
      return Number.isInteger(v) ? "integer" : "number";
    case "bigint":
      return "integer";
    default:
      return "object";
  }
}

/** Examples kept per error group. */
const MAX_EXAMPLES = 5;
/**
 * Distinct field names tracked per stream. An API that returns a map keyed by ids (one new key per
 * record) would otherwise grow the statistics with every record: past this, new names are counted
 * but not tracked one by one, and the stream gets a warning.
 */
export const MAX_TRACKED_FIELDS = 10_000;
/** Characters of a field name shown in reports and messages (a key can be megabytes long). */
const FIELD_NAME_CHARS = 200;

/** The error groups of one stream; each record error is counted into its group as it comes. */
export class ErrorGroups {
  private readonly groups = new Map<string, ErrorGroup>();

  /** The groups as plain data, in the order made (a record worker hands them over). */
  entries(): [string, ErrorGroup][] {
    return [...this.groups];
  }

  /** Replaces the groups with `entries` (from `entries()`). */
  restore(entries: [string, ErrorGroup][]): void {
    this.groups.clear();
    for (const [k, g] of entries) this.groups.set(k, g);
  }

  /** The groups, most frequent first. */
  list(): ErrorGroup[] {
    return [...this.groups.values()].sort((a, b) => b.count - a.count || a.field.localeCompare(b.field));
  }

  /** A field whose `type` did not convert (`fields:` with a type). */
  conversion(e: ConversionError, id: string): RecordError {
    const field = `field/${e.field}`;
    const expected = e.type;
    const actual = jsonType(e.value);
    let g = this.groups.get(`${field}\u0000convert`);
    if (!g) {
      g = {
        schema_path: field,
        field,
        keyword: "convert",
        message: `the value does not convert to ${e.type}`,
        count: 0,
        expected,
        actual_types: {},
        examples: [],
      };
      this.groups.set(`${field}\u0000convert`, g);
    }
    g.count++;
    g.actual_types[actual] = (g.actual_types[actual] ?? 0) + 1;
    if (g.examples.length < MAX_EXAMPLES) g.examples.push({ record_id: id, value: truncate(e.value) });
    return { path: field, keyword: "convert", message: e.message, expected, actual };
  }

  /** One ajv error. */
  record(e: ErrorObject, id: string): RecordError {
    // `required`, and `dependentRequired` / draft-07 `dependencies`: a field is missing.
    const params = e.params as { missingProperty?: unknown; property?: unknown };
    const missing = typeof params.missingProperty === "string" ? params.missingProperty : null;
    const extra =
      e.keyword === "additionalProperties"
        ? (e.params as { additionalProperty: string }).additionalProperty
        : null;
    const path = missing
      ? `${e.instancePath}/${missing}`
      : extra
        ? `${e.instancePath}/${extra}`
        : e.instancePath || "/";
    const value = extra ? (e.data as Record<string, unknown>)?.[extra] : e.data;
    const actual = missing ? "missing" : jsonType(value);
    const expected = describeExpected(e);
    let field = shownName(path.replace(/\/\d+(?=\/|$)/g, "/*"));
    let key = `${e.schemaPath}\u0000${field}`;
    // Bounded like the field statistics: past MAX_TRACKED_FIELDS groups (an API sending a new
    // unexpected key in every record), new ones are folded into one per schema location.
    if (!this.groups.has(key) && this.groups.size >= MAX_TRACKED_FIELDS) {
      field = "(other fields)";
      key = `${e.schemaPath}\u0000\u0000other`;
    }
    let g = this.groups.get(key);
    if (!g) {
      g = {
        schema_path: e.schemaPath,
        field,
        keyword: e.keyword,
        message: missing
          ? `required field \`${missing}\` is missing${e.keyword === "required" ? "" : ` (\`${params.property}\` is present)`}`
          : (e.message ?? e.keyword),
        count: 0,
        expected,
        actual_types: {},
        examples: [],
      };
      this.groups.set(key, g);
    }
    g.count++;
    g.actual_types[actual] = (g.actual_types[actual] ?? 0) + 1;
    if (g.examples.length < MAX_EXAMPLES)
      g.examples.push({ record_id: id, value: missing ? null : truncate(value) });
    return { path, keyword: e.keyword, message: g.message, expected, actual };
  }
}

export function shownName(name: string): string {
  return cut(name, FIELD_NAME_CHARS);
}

function describeExpected(e: ErrorObject): string | null {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "type":
      return Array.isArray(p.type) ? p.type.join(" or ") : String(p.type);
    case "required":
    case "dependentRequired":
    case "dependencies":
      return "present";
    case "enum":
      return `one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "const":
      return JSON.stringify(p.allowedValue);
    case "format":
      return `format ${p.format}`;
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return `${p.comparison} ${p.limit}`;
    case "minLength":
      return `at least ${p.limit} characters`;
    case "maxLength":
      return `at most ${p.limit} characters`;
    case "pattern":
      return `matching ${p.pattern}`;
    case "additionalProperties":
      return `no field \`${shownName(String(p.additionalProperty))}\``;
    default:
      return null;
  }
}

function truncate(v: unknown): unknown {
  if (typeof v === "string" && v.length > 120) return `${v.slice(0, 117)}...`;
  if (v && typeof v === "object") {
    const s = stringifyJson(v);
    return s.length > 200 ? `${s.slice(0, 197)}...` : reportable(v);
  }
  return reportable(v);
}

/**
 * An example value as the report (JSON) can hold it: a big integer as its exact digits in a
 * string, a value holding one as its JSON text.
 */
export function reportable(v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v !== null && typeof v === "object" && hasBigInt(v)) return stringifyJson(v);
  return v;
}
