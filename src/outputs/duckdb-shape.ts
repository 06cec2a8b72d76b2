/**
 * Table shape for the DuckDB and Parquet outputs: column types from the stream's JSON Schema (or
 * from the values seen), identifier quoting, and how a JavaScript value is checked and converted
 * for its column. (h6's table-shape.ts does the same for PostgreSQL; to be unified.)
 *
 * A column has a *kind*, which fixes both its staging type (what the appender writes, checked in
 * JavaScript so that a refused value names its record) and its final type:
 *
 * | kind      | from the schema                      | staging  | final        |
 * |-----------|--------------------------------------|----------|--------------|
 * | integer   | `integer`                            | BIGINT   | BIGINT       |
 * | number    | `number`                             | DOUBLE   | DOUBLE       |
 * | boolean   | `boolean`                            | BOOLEAN  | BOOLEAN      |
 * | string    | `string`                             | VARCHAR  | VARCHAR      |
 * | timestamp | `string` with `format: date-time`    | VARCHAR  | TIMESTAMPTZ  |
 * | date      | `string` with `format: date`         | VARCHAR  | DATE         |
 * | json      | objects, arrays, several types, none | VARCHAR  | JSON         |
 *
 * Date-times and dates are staged as text and cast by DuckDB at commit: its cast keeps the UTC
 * offset (`+02:00`) and microseconds, which the appender's own conversion does not.
 */

export type ColumnKind = "integer" | "number" | "boolean" | "string" | "timestamp" | "date" | "json";

export const STAGING_TYPE: Record<ColumnKind, string> = {
  integer: "BIGINT",
  number: "DOUBLE",
  boolean: "BOOLEAN",
  string: "VARCHAR",
  timestamp: "VARCHAR",
  date: "VARCHAR",
  json: "VARCHAR",
};

export const FINAL_TYPE: Record<ColumnKind, string> = {
  integer: "BIGINT",
  number: "DOUBLE",
  boolean: "BOOLEAN",
  string: "VARCHAR",
  timestamp: "TIMESTAMP WITH TIME ZONE",
  date: "DATE",
  json: "JSON",
};

/** A quoted SQL identifier: any name, quotes, dots, spaces and reserved words included. */
export function q(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A quoted SQL string literal. */
export function lit(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** Column kinds from a JSON Schema's `properties`. */
export function schemaKinds(schema: Record<string, unknown> | null | undefined): Map<string, ColumnKind> {
  const kinds = new Map<string, ColumnKind>();
  const props = schema?.properties;
  if (!props || typeof props !== "object") return kinds;
  for (const [name, prop] of Object.entries(props as Record<string, unknown>))
    kinds.set(name, schemaKind(prop));
  return kinds;
}

export function schemaKind(prop: unknown): ColumnKind {
  const types = new Set<string>();
  const formats = new Set<string>();
  const collect = (p: unknown): void => {
    if (!p || typeof p !== "object") return;
    const s = p as Record<string, unknown>;
    if (typeof s.type === "string") types.add(s.type);
    else if (Array.isArray(s.type)) for (const t of s.type) if (typeof t === "string") types.add(t);
    if (typeof s.format === "string") formats.add(s.format);
    for (const k of ["anyOf", "oneOf"]) if (Array.isArray(s[k])) (s[k] as unknown[]).forEach(collect);
  };
  collect(prop);
  types.delete("null");
  if (types.size !== 1) return "json";
  const [t] = types;
  switch (t) {
    case "integer":
      return "integer";
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "string":
      if (formats.size === 1 && formats.has("date-time")) return "timestamp";
      if (formats.size === 1 && formats.has("date")) return "date";
      return "string";
    default:
      return "json";
  }
}

/** The kind of a value seen, for a column without a schema; null for null/undefined. */
export function valueKind(v: unknown): ColumnKind | null {
  switch (typeof v) {
    case "number":
      return Number.isInteger(v) ? "integer" : "number";
    case "bigint":
      return fitsInt64(v) ? "integer" : "json";
    case "boolean":
      return "boolean";
    case "string":
      return "string";
    case "undefined":
      return null;
    default:
      return v === null ? null : "json";
  }
}

/** The kind for a column without a schema from several values: integers and numbers make number. */
export function widen(a: ColumnKind | null, b: ColumnKind | null): ColumnKind | null {
  if (a === null || a === b) return b;
  if (b === null) return a;
  if ((a === "integer" && b === "number") || (a === "number" && b === "integer")) return "number";
  return "json";
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export function fitsInt64(v: bigint): boolean {
  return v >= INT64_MIN && v <= INT64_MAX;
}

/** JSON text of any value, BigInt included (written as its exact digits). */
export function toJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    const marks: string[] = [];
    const text = JSON.stringify(v, (_k, x) => {
      if (typeof x !== "bigint") return x;
      marks.push(x.toString());
      return `\u0000bigint:${marks.length - 1}\u0000`;
    });
    return text.replace(/"\\u0000bigint:(\d+)\\u0000"/g, (_m, i: string) => marks[Number(i)]);
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
