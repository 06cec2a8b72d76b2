/**
 * What the database outputs (postgres, duckdb) and parquet share: how a stream becomes a table.
 *
 * - Column types come from the stream's JSON Schema (`properties`), as the format contract maps
 *   them: `string` → text (`format: date-time` → timestamp with time zone, `date` → date),
 *   `integer` → bigint, `number` → double, `boolean` → boolean; objects, arrays, several types or
 *   no type → JSON. A nullable type (`["string", "null"]`) takes its non-null type. Without a
 *   schema (or for fields it does not list), from the values seen ({@link typeOfValues}).
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

/** A column's logical type; each database spells it its own way ({@link POSTGRES_TYPES}). */
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

export const METADATA_COLUMNS = ["_run_id", "_loaded_at"] as const;
export const METADATA_TYPES: Record<(typeof METADATA_COLUMNS)[number], ColumnType> = {
  _run_id: "text",
  _loaded_at: "timestamptz",
};

/** The columns of `<table>__invalid`, in order. */
export const INVALID_COLUMNS: [string, ColumnType][] = [
  ["record_id", "text"],
  ["record", "json"],
  ["errors", "json"],
  ["_run_id", "text"],
  ["_loaded_at", "timestamptz"],
];

/** The column `nested: tables` child rows number their place in the parent's array with. */
export const INDEX_COLUMN = "_index";

/** PostgreSQL keeps identifiers up to 63 bytes (NAMEDATALEN - 1) and truncates longer ones. */
export const POSTGRES_MAX_IDENT_BYTES = 63;

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
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > maxBytes)
    throw new IdentifierError(
      `${what} ${JSON.stringify(name)} is ${bytes} bytes long; the database keeps at most ${maxBytes} bytes of a name and would cut it short (two long names could become one): rename it with \`fields\`, or choose a shorter \`table\``,
    );
}

export class IdentifierError extends Error {}

/** `<table>__<field>`: the child table of an array-of-objects field under `nested: tables`. */
export function childTableName(table: string, field: string): string {
  return `${table}__${field}`;
}

export function invalidTableName(table: string): string {
  return `${table}__invalid`;
}

/** Column types from a JSON Schema's `properties` (see the top of this file). */
export function schemaColumnTypes(
  schema: Record<string, unknown> | null | undefined,
): Map<string, ColumnType> {
  const types = new Map<string, ColumnType>();
  const props = schema?.properties;
  if (!props || typeof props !== "object") return types;
  for (const [name, prop] of Object.entries(props as Record<string, unknown>))
    types.set(name, schemaColumnType(prop));
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
  let kind: ColumnType | null = null;
  for (const v of values) {
    if (v === null || v === undefined) continue;
    const t = jsonType(v);
    const k: ColumnType =
      t === "integer"
        ? "bigint"
        : t === "number"
          ? "double"
          : t === "boolean"
            ? "boolean"
            : t === "string"
              ? "text"
              : "json";
    if (kind === null) kind = k;
    else if (kind !== k) {
      if ((kind === "bigint" && k === "double") || (kind === "double" && k === "bigint")) kind = "double";
      else return "json";
    }
  }
  return kind;
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

/** JSON text of a value, BigInts written with all their digits. */
export function jsonText(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `\u0000big:${x}` : x)).replace(
      /"\\u0000big:(-?\d+)"/g,
      "$1",
    );
  }
}
