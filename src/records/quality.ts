import type { StreamPlan, ValidationPlan } from "../compile/plan.js";
import { compileRecordSchema, type ErrorObject, schemaDraft, type ValidateFunction } from "../lang/ajv.js";
import { cut } from "../shared/errors.js";
import { hasBigInt, ownField, stringifyJson, withNumbers } from "../shared/json-text.js";
import { type ConversionError, FIELD_ERRORS } from "./field-specs.js";
import type { DriftReport, ErrorGroup, FieldStats } from "./quality-types.js";
import type { Row } from "./shape.js";

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

const MAX_EXAMPLES = 5;
/**
 * Distinct field names tracked per stream. An API that returns a map keyed by ids (one new key per
 * record) would otherwise grow the statistics with every record: past this, new names are counted
 * but not tracked one by one, and the stream gets a warning.
 */
export const MAX_TRACKED_FIELDS = 10_000;
/** Characters of a field name shown in reports and messages (a key can be megabytes long). */
const FIELD_NAME_CHARS = 200;

interface FieldAcc {
  name: string;
  inSchema: boolean;
  present: number;
  nulls: number;
  /** Counts by type, indexed like TYPE_NAMES. */
  counts: number[];
  /** Type indexes in the order first seen (reports list types that way). */
  order: number[];
  /** First record where the field had a value (not null). */
  firstRecord: string | null;
  examples: unknown[];
}

const TYPE_NAMES: JsonType[] = ["null", "array", "object", "string", "boolean", "integer", "number"];
const NULL = 0;

function typeIndex(v: unknown): number {
  switch (typeof v) {
    case "string":
      return 3;
    case "number":
      return Number.isInteger(v) ? 5 : 6;
    case "bigint":
      return 5;
    case "boolean":
      return 4;
    case "object":
      return v === null ? 0 : Array.isArray(v) ? 1 : 2;
    default:
      return NULL;
  }
}

function typesOf(f: FieldAcc | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (f) for (const i of f.order) out[TYPE_NAMES[i]] = f.counts[i];
  return out;
}

interface GroupAcc extends ErrorGroup {}

/**
 * Validation and drift for one stream: compiled once, fed every record as written, summarised
 * at the end. Counts are exact; examples are capped, so memory does not grow with records.
 */
export class StreamQuality {
  private readonly validate: ValidateFunction | null;
  private readonly schemaTypes: Map<string, JsonType[] | null>;
  private readonly fields = new Map<string, FieldAcc>();
  /** Field occurrences not tracked one by one (past MAX_TRACKED_FIELDS names). */
  untrackedFields = 0;
  private readonly byPosition: FieldAcc[] = [];
  private readonly groups = new Map<string, GroupAcc>();
  readonly draft: string | null;
  seen = 0;
  valid = 0;
  invalid = 0;

  constructor(
    private readonly stream: StreamPlan,
    private readonly policy: ValidationPlan,
  ) {
    const schema = stream.schema?.schema ?? null;
    this.validate = schema ? compileRecordSchema(schema) : null;
    this.draft = schema ? schemaDraft(schema) : null;
    this.schemaTypes = new Map();
    const props = schema?.properties;
    if (props && typeof props === "object") {
      for (const [name, sub] of Object.entries(props as Record<string, unknown>)) {
        const t = sub && typeof sub === "object" ? (sub as { type?: unknown }).type : undefined;
        this.schemaTypes.set(name, t === undefined ? null : ((Array.isArray(t) ? t : [t]) as JsonType[]));
      }
    }
  }

  get hasSchema(): boolean {
    return this.validate !== null;
  }

  /** A record id for reports: its primary key, or its position in the stream. */
  recordId(row: Row, position: number): string {
    const pk = this.stream.primaryKey;
    if (pk) {
      const parts = pk.map((k) => ownField(row, k));
      if (parts.every((p) => p !== undefined && p !== null))
        return parts.map((p) => (typeof p === "object" ? stringifyJson(p) : String(p))).join("/");
    }
    return `#${position}`;
  }

  /** Checks one record; returns its errors (empty when valid). */
  check(row: Row): RecordError[] {
    this.seen++;
    let id: string | null = null;
    // Records of a stream mostly share their keys in the same order: remember the last ones by
    // position, so a record costs no map lookup per field.
    let i = 0;
    for (const key in row) {
      let f: FieldAcc | undefined = this.byPosition[i];
      if (f === undefined || f.name !== key) {
        f = this.fields.get(key);
        if (!f) {
          if (this.fields.size >= MAX_TRACKED_FIELDS) {
            this.untrackedFields++;
            i++;
            continue;
          }
          f = {
            name: key,
            inSchema: this.schemaTypes.has(key),
            present: 0,
            nulls: 0,
            counts: [0, 0, 0, 0, 0, 0, 0],
            order: [],
            firstRecord: null,
            examples: [],
          };
          this.fields.set(key, f);
        }
        this.byPosition[i] = f;
      }
      i++;
      const v = row[key];
      f.present++;
      const t = typeIndex(v);
      if (f.counts[t]++ === 0) f.order.push(t);
      if (t === NULL) {
        f.nulls++;
        continue;
      }
      if (f.firstRecord === null) f.firstRecord = id ??= this.recordId(row, this.seen);
      if (!f.inSchema && f.examples.length < 3) {
        const ex = typeof v === "string" && v.length > 80 ? `${v.slice(0, 77)}...` : reportable(v);
        const text = stringifyJson(ex);
        if (!f.examples.some((e) => stringifyJson(e) === text)) f.examples.push(ex);
      }
    }
    const conversions = (row as Record<symbol, unknown>)[FIELD_ERRORS] as ConversionError[] | undefined;
    if (conversions) {
      // A field's `type` did not convert: invalid, its errors grouped under `field/<name>`.
      this.invalid++;
      const recordId = id ?? this.recordId(row, this.seen);
      return conversions.map((e) => this.conversion(e, recordId));
    }
    // ajv knows JSON numbers only: a record with a big integer (a BigInt) is checked again with
    // numbers in their place, so that `type: integer` accepts it (only when it failed: rare).
    if (!this.validate || this.validate(row) || (hasBigInt(row) && this.validate(withNumbers(row)))) {
      this.valid++;
      return [];
    }
    this.invalid++;
    const recordId = id ?? this.recordId(row, this.seen);
    return (this.validate.errors ?? [])
      .filter((e) => e.keyword !== "if")
      .map((e) => this.record(e, recordId));
  }

  private conversion(e: ConversionError, id: string): RecordError {
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

  private record(e: ErrorObject, id: string): RecordError {
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

  errorGroups(): ErrorGroup[] {
    return [...this.groups.values()].sort((a, b) => b.count - a.count || a.field.localeCompare(b.field));
  }

  fieldStats(): FieldStats[] {
    const names = [
      ...this.schemaTypes.keys(),
      ...[...this.fields.keys()].filter((k) => !this.schemaTypes.has(k)),
    ];
    return names.map((name) => {
      const f = this.fields.get(name);
      return {
        name: shownName(name),
        in_schema: this.schemaTypes.has(name),
        present: f?.present ?? 0,
        nulls: f?.nulls ?? 0,
        types: typesOf(f),
      };
    });
  }

  /** Drift against the declared schema (null without a schema with properties). */
  drift(): DriftReport | null {
    if (!this.validate || this.schemaTypes.size === 0) return null;
    const newFields: DriftReport["new_fields"] = [];
    const typeChanges: DriftReport["type_changes"] = [];
    const alwaysNull: string[] = [];
    for (const [name, f] of this.fields) {
      if (!this.schemaTypes.has(name)) {
        // Counted where it has a value: a `fields:` mapping writes null for records without it.
        const count = f.present - f.nulls;
        if (count > 0)
          newFields.push({
            field: shownName(name),
            count,
            examples: f.examples,
            first_record: f.firstRecord!,
          });
        else alwaysNull.push(shownName(name));
        continue;
      }
      const declared = this.schemaTypes.get(name);
      if (declared) {
        const off: Record<string, number> = {};
        const types = typesOf(f);
        for (const [t, n] of Object.entries(types)) if (!typeAllowed(t as JsonType, declared)) off[t] = n;
        if (Object.keys(off).length)
          typeChanges.push({
            field: shownName(name),
            expected: declared,
            actual: asDeclared(types, declared),
          });
      }
      if (f.present > 0 && f.nulls === f.present) alwaysNull.push(shownName(name));
    }
    const missing = [...this.schemaTypes.keys()].filter((k) => !this.fields.has(k));
    const found = newFields.length > 0 || typeChanges.length > 0;
    return {
      policy: this.policy.drift,
      breached: this.policy.drift === "fail" && found,
      new_fields: newFields.sort((a, b) => b.count - a.count),
      missing_fields: missing,
      type_changes: typeChanges,
      always_null: alwaysNull,
    };
  }
}

function shownName(name: string): string {
  return cut(name, FIELD_NAME_CHARS);
}

/** JSON Schema: an integer is a number. Under a `number` field, integers are counted as numbers. */
function asDeclared(types: Record<string, number>, declared: JsonType[]): Record<string, number> {
  if (!types.integer || declared.includes("integer") || !declared.includes("number")) return types;
  const out: Record<string, number> = {};
  for (const [t, n] of Object.entries(types)) {
    const k = t === "integer" ? "number" : t;
    out[k] = (out[k] ?? 0) + n;
  }
  return out;
}

function typeAllowed(t: JsonType, declared: JsonType[]): boolean {
  if (declared.includes(t)) return true;
  return t === "integer" && declared.includes("number");
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
function reportable(v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v !== null && typeof v === "object" && hasBigInt(v)) return stringifyJson(v);
  return v;
}
