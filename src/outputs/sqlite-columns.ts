import type { Row } from "../records/shape.js";
import {
  escapesLoneSurrogate,
  isInheritedName,
  isWellFormed,
  LONE_SURROGATE,
  ownField,
  stringifyJson,
} from "../shared/json-text.js";
import { mapProperties } from "./table-shape.js";

/**
 * SQLite columns: declared types from the schema or the first values, quoting, and how a value
 * is bound so that it keeps its JSON form.
 */

/** A declared column type; "" is no type (values are stored as they come). */
export type SqlType = "INTEGER" | "REAL" | "TEXT" | "";

/**
 * An array's or object's JSON, as stringifyJson writes it, for a record made from its bytes
 * (SqliteWriter.seeMembers): bound as that text, as the value itself would be.
 */
export class JsonText {
  constructor(readonly text: string) {}
}

/** A quoted SQL identifier. */
export function q(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function columnDef(name: string, type: SqlType): string {
  return type ? `${q(name)} ${type}` : q(name);
}

/** A name for the rowid that no column hides. */
export function rowidName(columns: string[]): string {
  const taken = new Set(columns.map((c) => c.toLowerCase()));
  const name = ["rowid", "_rowid_", "oid"].find((n) => !taken.has(n));
  if (!name) throw new Error("columns named rowid, _rowid_ and oid hide the rowid");
  return name;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * How a value is bound for a column of `type`: null/undefined → NULL, booleans → 0/1, arrays and
 * objects → JSON text. better-sqlite3 binds every JS number as a double, so numbers are bound so
 * that they keep their JSON form: as text in a TEXT column (`4`, not `4.0`), and integers as
 * integers in an untyped column. A big integer (BigInt, beyond 2^53) is bound as a 64-bit
 * INTEGER, exact; beyond 64 bits SQLite has no integer for it: as text in a TEXT or untyped
 * column, and an error in an INTEGER column (SQLite would round it to a double). A REAL column
 * (schema `number`) holds a double: the nearest one.
 */
export function binder(type: SqlType, name: string): (v: unknown) => unknown {
  const number =
    type === "TEXT"
      ? (n: number) => String(n)
      : type === ""
        ? (n: number) => (Number.isSafeInteger(n) ? BigInt(n) : n)
        : (n: number) => n;
  const big = (n: bigint): bigint | string | number => {
    if (type === "REAL") return Number(n); // a double, as the schema's `number` asks
    if (n >= INT64_MIN && n <= INT64_MAX) return type === "TEXT" ? n.toString() : n;
    if (type === "TEXT" || type === "") return n.toString();
    throw new Error(
      `field \`${name}\`: ${n} does not fit a 64-bit SQLite INTEGER (column type ${type}); declare it \`type: string\` in the schema to keep it as text`,
    );
  };
  return (v) => {
    if (v === null || v === undefined) return null;
    switch (typeof v) {
      case "number":
        return number(v);
      case "boolean":
        return v ? 1 : 0;
      case "string":
        if (!isWellFormed(v)) throw new Error(`field ${JSON.stringify(name)}: ${LONE_SURROGATE}`);
        return v;
      case "bigint":
        return big(v);
      default: {
        const json = v instanceof JsonText ? v.text : stringifyJson(v);
        if (escapesLoneSurrogate(json)) throw new Error(`field ${JSON.stringify(name)}: ${LONE_SURROGATE}`);
        return json;
      }
    }
  };
}

/** The type of the first non-null value of `name` in `rows`; "" when there is none. */
export function inferType(rows: Row[], name: string): SqlType {
  const inherited = isInheritedName(name);
  for (const row of rows) {
    const v = inherited ? ownField(row, name) : row[name];
    if (v === null || v === undefined) continue;
    if (typeof v === "number") return Number.isInteger(v) ? "INTEGER" : "REAL";
    if (typeof v === "bigint") return v >= INT64_MIN && v <= INT64_MAX ? "INTEGER" : "TEXT";
    if (typeof v === "boolean") return "INTEGER";
    return "TEXT";
  }
  return "";
}

/** Column types from a JSON Schema's `properties`. */
export function schemaTypes(schema: Record<string, unknown> | null | undefined): Map<string, SqlType> {
  return mapProperties(schema, schemaType);
}

/** integer, boolean → INTEGER; number → REAL; string → TEXT; several types or none → TEXT. */
function schemaType(prop: unknown): SqlType {
  const found = new Set<string>();
  const collect = (p: unknown): void => {
    if (!p || typeof p !== "object") return;
    const s = p as Record<string, unknown>;
    if (typeof s.type === "string") found.add(s.type);
    else if (Array.isArray(s.type)) for (const t of s.type) if (typeof t === "string") found.add(t);
    for (const k of ["anyOf", "oneOf"]) if (Array.isArray(s[k])) (s[k] as unknown[]).forEach(collect);
  };
  collect(prop);
  found.delete("null");
  if (found.size !== 1) return "TEXT";
  const [t] = found;
  return t === "integer" || t === "boolean" ? "INTEGER" : t === "number" ? "REAL" : "TEXT";
}
