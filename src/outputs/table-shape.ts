import { RunError } from "../shared/errors.js";
import { isWellFormed, LONE_SURROGATE } from "../shared/json-text.js";
import { T_BOOLEAN, T_INTEGER, T_NUMBER, T_STRING } from "../shared/json-types.js";
import type { CommitState, StreamState } from "./writer.js";

/**
 * What the database outputs (postgres, duckdb) and parquet share: how a stream becomes a table.
 * One type mapping, one identifier quoting and one set of metadata columns for all three.
 *
 * - Column types come from the stream's JSON Schema (`properties`), as the format contract maps
 *   them: `string` → text (`format: date-time` → timestamp with time zone, `date` → date),
 *   `integer` → bigint, `number` → double, `boolean` → boolean; objects, arrays, several types or
 *   no type → JSON. A nullable type (`["string", "null"]`) takes its non-null type. Without a
 *   schema (or for fields it does not list), from the values seen ({@link typeOfValues}; an
 *   integer beyond 64 bits makes a JSON column, which keeps its digits).
 * - Identifiers are always quoted ({@link quoteIdent}), never interpolated. A name that a
 *   database cannot hold exactly is refused with a clear message rather than changed: a NUL
 *   character (no SQL text can carry one), or more bytes than the database keeps (PostgreSQL
 *   silently truncates names to 63 bytes, so two long fields could become one column).
 * - Metadata columns: `_run_id` (text) and `_loaded_at` (timestamp with time zone), unless
 *   `metadata_columns: false`. A record field with one of these names is refused (it would be
 *   overwritten).
 * - `nested: tables`: each array-of-objects field becomes a child table `<table>__<field>` whose
 *   rows carry the parent's primary key and `_index` ({@link childTableName}, {@link nestedFields}).
 * - Invalid records go to `<table>__invalid` ({@link INVALID_COLUMNS}).
 */

/**
 * A column's logical type; each database spells it its own way ({@link POSTGRES_TYPES},
 * {@link DUCKDB_TYPES}).
 */
export type ColumnType = "text" | "timestamptz" | "date" | "bigint" | "double" | "boolean" | "json";

export const POSTGRES_TYPES: Record<ColumnType, string> = {
  text: "text",
  timestamptz: "timestamptz",
  date: "date",
  bigint: "bigint",
  double: "double precision",
  boolean: "boolean",
  json: "jsonb",
};

/**
 * DuckDB (and Parquet, which DuckDB writes). Date-times and dates are staged as text and cast by
 * DuckDB at commit ({@link DUCKDB_STAGING_TYPES}): its cast keeps the UTC offset (`+02:00`) and
 * microseconds, which the appender's own conversion does not; JSON is staged as its text.
 */
export const DUCKDB_TYPES: Record<ColumnType, string> = {
  text: "VARCHAR",
  timestamptz: "TIMESTAMP WITH TIME ZONE",
  date: "DATE",
  bigint: "BIGINT",
  double: "DOUBLE",
  boolean: "BOOLEAN",
  json: "JSON",
};

export const DUCKDB_STAGING_TYPES: Record<ColumnType, string> = {
  ...DUCKDB_TYPES,
  timestamptz: "VARCHAR",
  date: "VARCHAR",
  json: "VARCHAR",
};

export const RUN_ID_COLUMN = "_run_id";
export const LOADED_AT_COLUMN = "_loaded_at";
export const METADATA_COLUMNS = [RUN_ID_COLUMN, LOADED_AT_COLUMN] as const;

/** The columns of `<table>__invalid`, in order. */
export const INVALID_COLUMNS: [string, ColumnType][] = [
  ["record_id", "text"],
  ["record", "json"],
  ["errors", "json"],
  ["_run_id", "text"],
  ["_loaded_at", "timestamptz"],
];

/**
 * The table where database outputs keep each stream's incremental state (pipeline, stream,
 * state as JSON, updated_at), written in the transaction that commits the stream's rows.
 */
export const STATE_TABLE = "_pipelines_state";

/** The value a commit saves in {@link STATE_TABLE}: the cursor and when it was saved. */
export function stateValue(state: CommitState): StreamState {
  // The whole stream state (per-partition positions, committed file lengths too), stamped now.
  return { ...state, updated_at: new Date().toISOString() };
}

/** The column `nested: tables` child rows number their place in the parent's array with. */
export const INDEX_COLUMN = "_index";

/** PostgreSQL keeps identifiers up to 63 bytes (NAMEDATALEN - 1) and truncates longer ones. */
export const POSTGRES_MAX_IDENT_BYTES = 63;

/** DuckDB keeps names of any length. */
export const DUCKDB_MAX_IDENT_BYTES = Number.POSITIVE_INFINITY;

/** An identifier quoted for SQL: `"` doubled. Refuses what cannot be quoted faithfully. */
export function quoteIdent(name: string, maxBytes = POSTGRES_MAX_IDENT_BYTES): string {
  checkIdent(name, maxBytes);
  return `"${name.replaceAll('"', '""')}"`;
}

/** Throws a clear error for a name the database cannot hold exactly. */
export function checkIdent(name: string, maxBytes = POSTGRES_MAX_IDENT_BYTES, what = "name"): void {
  if (name.length === 0) throw new IdentifierError(`an empty ${what} cannot be a table or column name`);
  if (name.includes("\0"))
    throw new IdentifierError(
      `${what} ${JSON.stringify(name)} holds a NUL character, which no SQL identifier can hold`,
    );
  if (!isWellFormed(name)) throw new IdentifierError(`${what} ${JSON.stringify(name)} ${LONE_SURROGATE}`);
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > maxBytes)
    throw new IdentifierError(
      `${what} ${JSON.stringify(name)} is ${bytes} bytes long; the database keeps at most ${maxBytes} bytes of a name and would cut it short (two long names could become one): rename it with \`fields\`, or choose a shorter \`table\``,
    );
}

export class IdentifierError extends Error {}

/** A quoted SQL string literal. */
export function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** `<table>__<field>`: the child table of an array-of-objects field under `nested: tables`. */
export function childTableName(table: string, field: string): string {
  // `<table>__invalid` holds the invalid records, replaced at each commit: a child table of that
  // name was dropped by it, its rows lost.
  if (field.toLowerCase() === "invalid")
    throw new RunError(
      "output",
      `field \`${field}\` would make child table \`${table}__${field}\` (nested: tables), the name of the table of invalid records; rename the field with \`fields\``,
    );
  return `${table}__${field}`;
}

export function invalidTableName(table: string): string {
  return `${table}__invalid`;
}

/** Column types from a JSON Schema's `properties` (see the top of this file). */
export function schemaColumnTypes(
  schema: Record<string, unknown> | null | undefined,
): Map<string, ColumnType> {
  return mapProperties(schema, schemaColumnType);
}

/** `typeOf` of each of a JSON Schema's `properties`, by name, in order (empty without any). */
export function mapProperties<T>(
  schema: Record<string, unknown> | null | undefined,
  typeOf: (prop: unknown) => T,
): Map<string, T> {
  const types = new Map<string, T>();
  const props = schema?.properties;
  if (!props || typeof props !== "object") return types;
  for (const [name, prop] of Object.entries(props as Record<string, unknown>)) types.set(name, typeOf(prop));
  return types;
}

/** The JSON types (and string formats) a property schema allows, `null` left out. */
function schemaTypesOf(prop: unknown): { types: Set<string>; formats: Set<string> } {
  const types = new Set<string>();
  const formats = new Set<string>();
  const collect = (p: unknown): void => {
    if (!p || typeof p !== "object") return;
    const s = p as Record<string, unknown>;
    if (typeof s.type === "string") types.add(s.type);
    else if (Array.isArray(s.type)) for (const t of s.type) if (typeof t === "string") types.add(t);
    if (typeof s.format === "string") formats.add(s.format);
    if (s.const !== undefined && s.type === undefined) types.add(jsonType(s.const));
    for (const k of ["anyOf", "oneOf"]) if (Array.isArray(s[k])) (s[k] as unknown[]).forEach(collect);
  };
  collect(prop);
  types.delete("null");
  return { types, formats };
}

export function schemaColumnType(prop: unknown): ColumnType {
  const { types, formats } = schemaTypesOf(prop);
  if (types.size !== 1) return "json";
  const [t] = types;
  switch (t) {
    case "string":
      if (formats.size === 1 && formats.has("date-time")) return "timestamptz";
      if (formats.size === 1 && formats.has("date")) return "date";
      return "text";
    case "integer":
      return "bigint";
    case "number":
      return "double";
    case "boolean":
      return "boolean";
    default:
      return "json";
  }
}

/** The JSON type name of a value (`integer` for whole numbers). */
export function jsonType(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return "array";
  switch (typeof v) {
    case "number":
      return Number.isInteger(v) ? "integer" : "number";
    case "bigint":
      return "integer";
    case "string":
      return "string";
    case "boolean":
      return "boolean";
    default:
      return "object";
  }
}

/**
 * A column type from values seen (no schema): every non-null value integer → bigint; numbers
 * (some not whole) → double; all booleans → boolean; all strings → text (a date-time string is
 * kept as text: without a schema nothing says the next one will be a date-time); anything else
 * or a mix → json. Null when only nulls were seen (the column waits for a value).
 */
export function typeOfValues(values: Iterable<unknown>): ColumnType | null {
  let type: ColumnType | null = null;
  for (const v of values) {
    type = widenType(type, valueType(v));
    if (type === "json") return type;
  }
  return type;
}

/** The column type of one value seen; null for null/undefined. */
export function valueType(v: unknown): ColumnType | null {
  switch (typeof v) {
    case "number":
      return Number.isInteger(v) ? "bigint" : "double";
    case "bigint":
      return fitsInt64(v) ? "bigint" : "json";
    case "boolean":
      return "boolean";
    case "string":
      return "text";
    case "undefined":
      return null;
    default:
      return v === null ? null : "json";
  }
}

/** The type of a column without a schema that holds both: integers and numbers make double. */
export function widenType(a: ColumnType | null, b: ColumnType | null): ColumnType | null {
  if (a === null || a === b) return b;
  if (b === null) return a;
  if ((a === "bigint" && b === "double") || (a === "double" && b === "bigint")) return "double";
  return "json";
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export function fitsInt64(v: bigint): boolean {
  return v >= INT64_MIN && v <= INT64_MAX;
}

/** The column type a first value of each JSON type gives (valueType), by type number. */
export const TYPE_KINDS: ColumnType[] = ["text", "json", "json", "text", "boolean", "bigint", "double"];

/** `fits` for a value known by its JSON type (an integer within 15 digits, not null). */
export function fitsType(kind: ColumnType, t: number): boolean {
  switch (kind) {
    case "bigint":
      return t === T_INTEGER;
    case "double":
      return t === T_INTEGER || t === T_NUMBER;
    case "boolean":
      return t === T_BOOLEAN;
    case "text":
    case "timestamptz":
    case "date":
      return t === T_STRING;
    default:
      return true;
  }
}

/** Whether a column of `kind` holds `v` exactly (v is neither null nor undefined). */
export function fits(kind: ColumnType, v: unknown): boolean {
  switch (kind) {
    case "bigint":
      return typeof v === "number" ? Number.isInteger(v) : typeof v === "bigint" && fitsInt64(v);
    case "double":
      return typeof v === "number" || (typeof v === "bigint" && BigInt(Number(v)) === v);
    case "boolean":
      return typeof v === "boolean";
    case "text":
    case "timestamptz":
    case "date":
      return typeof v === "string";
    default:
      return true;
  }
}

/** How a JSON value is described in an error (never the value itself: it may be a secret). */
export function describeValue(v: unknown): string {
  if (typeof v === "bigint") return fitsInt64(v) ? "an integer" : "an integer beyond 64 bits";
  if (typeof v === "number") return Number.isInteger(v) ? "an integer" : "a number";
  if (typeof v === "string") return "a string";
  if (typeof v === "boolean") return "a boolean";
  if (Array.isArray(v)) return "an array";
  return "an object";
}

/**
 * Fields that become child tables under `nested: tables`: from the schema, the properties whose
 * type is an array of objects (their item properties, typed, give the child's columns).
 */
export function nestedFields(
  schema: Record<string, unknown> | null | undefined,
): Map<string, Record<string, unknown> | null> {
  const out = new Map<string, Record<string, unknown> | null>();
  const props = schema?.properties;
  if (!props || typeof props !== "object") return out;
  for (const [name, prop] of Object.entries(props as Record<string, unknown>)) {
    const { types } = schemaTypesOf(prop);
    if (types.size !== 1 || !types.has("array")) continue;
    const items = (prop as Record<string, unknown>).items;
    if (!items || typeof items !== "object") continue;
    const it = schemaTypesOf(items).types;
    if (it.size === 1 && it.has("object")) out.set(name, items as Record<string, unknown>);
  }
  return out;
}

/** Is `v` an array whose elements are all objects (a candidate child table without a schema)? */
export function isArrayOfObjects(v: unknown): v is Record<string, unknown>[] {
  if (!Array.isArray(v) || v.length === 0) return false;
  for (const x of v) if (!x || typeof x !== "object" || Array.isArray(x)) return false;
  return true;
}

/** Whether the record schema declares `field` among its properties. */
function declaredField(schema: Record<string, unknown> | null | undefined, field: string): boolean {
  const props = schema?.properties;
  return typeof props === "object" && props !== null && Object.hasOwn(props, field);
}

/**
 * `nested: tables`: the fields whose child tables an earlier run made, from the database's tables
 * named `<table>__…` and their columns: those with `_index` and the parent's key columns — not
 * the invalid records' table, a staging or a rejected table — and not declared by the schema (a
 * declared field is what the schema says; an array of objects there is a child already). They are
 * the run's children from the start: without a schema, a field first seen empty or null was a new
 * JSON column of the parent, and the child rows of the parents it replaced stayed.
 */
export function existingChildFields(
  table: string,
  tables: Iterable<[name: string, columns: readonly string[]]>,
  primaryKey: readonly string[],
  schema: Record<string, unknown> | null | undefined,
): string[] {
  const prefix = `${table}__`;
  const fields: string[] = [];
  for (const [name, columns] of tables) {
    if (!name.startsWith(prefix)) continue;
    const field = name.slice(prefix.length);
    if (field === "" || field.toLowerCase() === "invalid" || primaryKey.includes(field)) continue;
    // `…__staging_<run id>`, `…__rejected_<run id>` (run-id.ts newRunId: `20261201T062431Z-b5cebe`).
    if (/(^|__)(staging|rejected)_\d{8}T\d{6}Z-[0-9a-f]+$/.test(field) || declaredField(schema, field))
      continue;
    const cols = new Set(columns);
    if (cols.has(INDEX_COLUMN) && primaryKey.every((k) => cols.has(k))) fields.push(field);
  }
  return fields;
}
