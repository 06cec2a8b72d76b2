import type { StreamPlan, ValidationPlan } from "../compile/plan.js";
import { compileRecordSchema, schemaDraft, type ValidateFunction } from "../lang/ajv.js";
import { sameBytes } from "../shared/json-spans.js";
import { hasBigInt, ownField, stringifyJson, withNumbers } from "../shared/json-text.js";
import { T_ARRAY, T_BOOLEAN, T_INTEGER, T_NULL, T_NUMBER, T_OBJECT, T_STRING } from "../shared/json-types.js";
import { type ConversionError, FIELD_ERRORS } from "./field-specs.js";
import {
  ErrorGroups,
  type JsonType,
  MAX_TRACKED_FIELDS,
  type RecordError,
  reportable,
  shownName,
} from "./quality-errors.js";
import type { DriftReport, ErrorGroup, FieldStats } from "./quality-types.js";
import type { Row } from "./shape.js";

export { type JsonType, jsonType, MAX_TRACKED_FIELDS, type RecordError } from "./quality-errors.js";

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

/** StreamQuality's statistics as plain data (exportState / importState). */
export interface QualityState {
  fields: FieldAcc[];
  untrackedFields: number;
  errors: [string, ErrorGroup][];
  seen: number;
  valid: number;
  invalid: number;
}

/** Type names by number (shared/json-types.ts T_*). */
const TYPE_NAMES: JsonType[] = ["null", "array", "object", "string", "boolean", "integer", "number"];

/** What check() returns for a valid record: one array for all of them (nothing to allocate). */
const NO_ERRORS: RecordError[] = Object.freeze([]) as unknown as RecordError[];

function typeIndex(v: unknown): number {
  switch (typeof v) {
    case "string":
      return T_STRING;
    case "number":
      return Number.isInteger(v) ? T_INTEGER : T_NUMBER;
    case "bigint":
      return T_INTEGER;
    case "boolean":
      return T_BOOLEAN;
    case "object":
      return v === null ? T_NULL : Array.isArray(v) ? T_ARRAY : T_OBJECT;
    default:
      return T_NULL;
  }
}

/**
 * Whether `ex` is not among `examples` yet (compared as JSON). A field with fewer than three
 * distinct values (a flag, an event name) is looked at for every record: a string, number or
 * boolean is compared as it is (the same answer as its JSON), without serializing anything.
 */
function isNewExample(examples: unknown[], ex: unknown): boolean {
  if (ex === null || typeof ex !== "object") return !examples.includes(ex);
  const text = stringifyJson(ex);
  return !examples.some((e) => stringifyJson(e) === text);
}

function typesOf(f: FieldAcc | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (f) for (const i of f.order) out[TYPE_NAMES[i]] = f.counts[i];
  return out;
}

/**
 * Validation and drift for one stream: compiled once, fed every record as written, summarised
 * at the end. Counts are exact; examples are capped, so memory does not grow with records.
 */
export class StreamQuality {
  private readonly validate: ValidateFunction | null;
  private readonly schemaTypes: Map<string, JsonType[] | null>;
  private readonly fields = new Map<string, FieldAcc>();
  /** takesExample's JSON of each field's examples. */
  private readonly texts = new WeakMap<FieldAcc, Buffer[]>();
  /** Field occurrences not tracked one by one (past MAX_TRACKED_FIELDS names). */
  untrackedFields = 0;
  private readonly byPosition: FieldAcc[] = [];
  private readonly errors = new ErrorGroups();
  readonly draft: string | null;
  seen = 0;
  valid = 0;
  invalid = 0;

  constructor(
    private readonly stream: Pick<StreamPlan, "schema" | "primaryKey">,
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

  /**
   * The statistics so far as plain data (structured-cloneable): a record worker that checks a
   * stream's records hands them over at its start and back at its end (src/run/record-workers/).
   */
  exportState(): QualityState {
    return {
      fields: [...this.fields.values()],
      untrackedFields: this.untrackedFields,
      errors: this.errors.entries(),
      seen: this.seen,
      valid: this.valid,
      invalid: this.invalid,
    };
  }

  /** Continues from `state` (from `exportState`), replacing what this one counted. */
  importState(state: QualityState): void {
    this.fields.clear();
    for (const f of state.fields) this.fields.set(f.name, f);
    this.byPosition.length = 0;
    this.untrackedFields = state.untrackedFields;
    this.errors.restore(state.errors);
    this.seen = state.seen;
    this.valid = state.valid;
    this.invalid = state.invalid;
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

  /**
   * The statistics of the field `key`, the record's `i`-th: records of a stream mostly share their
   * keys in the same order, so the last ones are remembered by position (no map lookup per field).
   * Null past MAX_TRACKED_FIELDS names (counted as untracked).
   */
  private fieldAt(key: string, i: number): FieldAcc | null {
    let f: FieldAcc | undefined = this.byPosition[i];
    if (f !== undefined && f.name === key) return f;
    f = this.fields.get(key);
    if (!f) {
      if (this.fields.size >= MAX_TRACKED_FIELDS) {
        this.untrackedFields++;
        return null;
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
    return f;
  }

  /**
   * Counts one record of a stream without a schema, given by its top-level names and the types of
   * their values only (`names` and `types` from `from`, `n` of them: a JSON line read without
   * parsing it, src/run/raw-lines.ts; `times` records of that same shape, CSV rows), as check()
   * counts it: valid, each field present, null or of its type, its first record. Examples are
   * not kept: only drift against a schema shows them.
   */
  checkMembers(names: readonly string[], types: Uint8Array, from: number, n: number, times = 1): void {
    const first = this.seen + 1;
    this.seen += times;
    this.valid += times;
    for (let i = 0; i < n; i++) {
      const f = this.fieldAt(names[from + i], i);
      if (f === null) {
        this.untrackedFields += times - 1;
        continue;
      }
      f.present += times;
      const t = types[from + i];
      if (f.counts[t] === 0) f.order.push(t);
      f.counts[t] += times;
      if (t === T_NULL) f.nulls += times;
      else if (f.firstRecord === null) f.firstRecord = `#${first}`;
    }
  }

  /** Whether the report shows examples of fields (drift: a schema that lists properties). */
  get keepsExamples(): boolean {
    return this.validate !== null && this.schemaTypes.size > 0;
  }

  /**
   * Whether a record's value of field `name` (a value, not null) may become one of the field's
   * examples in the report (`check` keeps three of the fields the schema does not list, for
   * drift): a caller that counts records by `checkMembers` checks such a record with `check`.
   * `value`: the value's canonical JSON in [start, end) and its JSON type (json-types.ts), when
   * known: one that is an example already is not asked for again.
   */
  takesExample(name: string, value?: Uint8Array, start = 0, end = 0, type = T_NULL): boolean {
    if (!this.keepsExamples || this.schemaTypes.has(name)) return false;
    const f = this.fields.get(name);
    if (!f) return this.fields.size < MAX_TRACKED_FIELDS;
    if (f.examples.length >= 3) return false;
    // A value given by its canonical JSON bytes that is one of the examples already adds none: a
    // number, boolean or string whose JSON is an example's (an object is looked at by `check`). Without this, a field with fewer than three
    // distinct values (a flag) would send every record holding it to the parse.
    if (value === undefined || type === T_OBJECT || type === T_ARRAY) return true;
    // A string the report would cut (over 80 characters: JSON over 82 bytes) may be a new example
    // even when its JSON is an example's (a big integer's digits are kept whole).
    if (type === T_STRING && end - start > 82) return true;
    return !this.exampleTexts(f).some((t) => sameBytes(value, start, end, t));
  }

  /** The JSON of a field's examples, as bytes (kept while the examples stay the same). */
  private exampleTexts(f: FieldAcc): Buffer[] {
    const known = this.texts.get(f);
    if (known && known.length === f.examples.length) return known;
    const texts = f.examples.map((e) => Buffer.from(stringifyJson(e)));
    this.texts.set(f, texts);
    return texts;
  }

  /** Checks one record; returns its errors (empty when valid). */
  check(row: Row): RecordError[] {
    this.seen++;
    let id: string | null = null;
    let i = 0;
    for (const key in row) {
      const f = this.fieldAt(key, i++);
      if (f === null) continue;
      const v = row[key];
      f.present++;
      const t = typeIndex(v);
      if (f.counts[t]++ === 0) f.order.push(t);
      if (t === T_NULL) {
        f.nulls++;
        continue;
      }
      if (f.firstRecord === null) f.firstRecord = id ??= this.recordId(row, this.seen);
      if (!f.inSchema && f.examples.length < 3) {
        const ex = typeof v === "string" && v.length > 80 ? `${v.slice(0, 77)}...` : reportable(v);
        if (isNewExample(f.examples, ex)) f.examples.push(ex);
      }
    }
    const conversions = (row as Record<symbol, unknown>)[FIELD_ERRORS] as ConversionError[] | undefined;
    if (conversions) {
      // A field's `type` did not convert: invalid, its errors grouped under `field/<name>`.
      this.invalid++;
      const recordId = id ?? this.recordId(row, this.seen);
      return conversions.map((e) => this.errors.conversion(e, recordId));
    }
    // ajv knows JSON numbers only: a record with a big integer (a BigInt) is checked again with
    // numbers in their place, so that `type: integer` accepts it (only when it failed: rare).
    if (!this.validate || this.validate(row) || (hasBigInt(row) && this.validate(withNumbers(row)))) {
      this.valid++;
      return NO_ERRORS;
    }
    this.invalid++;
    const recordId = id ?? this.recordId(row, this.seen);
    return (this.validate.errors ?? [])
      .filter((e) => e.keyword !== "if")
      .map((e) => this.errors.record(e, recordId));
  }

  errorGroups(): ErrorGroup[] {
    return this.errors.list();
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
