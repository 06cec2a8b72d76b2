import { stringifyJson } from "../shared/json-text.js";
import type { ColumnType } from "./table-shape.js";

/** How one value becomes the text of a COPY field. */
export type Encoder = (v: unknown) => string;

const NEEDS_ESCAPE = /[\\\n\r\t]/;

/** A string as a COPY text field: backslash, newline, CR and tab escaped; NUL refused. */
function copyText(s: string): string {
  if (s.includes("\0"))
    throw new Error(
      "holds a NUL character (U+0000), which PostgreSQL text cannot store; drop the field with `fields` or write jsonl",
    );
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(/[\\\n\r\t]/g, (c) =>
    c === "\\" ? "\\\\" : c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\t",
  );
}

export function safeJson(v: unknown): string {
  try {
    return stringifyJson(v) ?? "undefined";
  } catch {
    return String(v);
  }
}

function mismatch(v: unknown, col: string): Error {
  const t = Array.isArray(v)
    ? "an array"
    : v === null
      ? "null"
      : typeof v === "object"
        ? "an object"
        : `a ${typeof v}`;
  return new Error(
    `${t} (${safeJson(v).slice(0, 80)}) cannot go into a ${col} column: the value is refused rather than changed (the column's type comes from the schema or the table)`,
  );
}

/** How a value becomes a COPY field for a column of `type` (null: the table's own type, as text). */
export function encoder(type: ColumnType | null): Encoder {
  switch (type) {
    case "bigint":
      return (v) => {
        if (typeof v === "bigint") return String(v);
        if (typeof v === "number" && Number.isInteger(v) && Number.isSafeInteger(v)) return String(v);
        throw mismatch(v, "bigint");
      };
    case "double":
      return (v) => {
        if (typeof v === "number" || typeof v === "bigint") return String(v);
        throw mismatch(v, "double precision");
      };
    case "boolean":
      return (v) => {
        if (typeof v === "boolean") return v ? "t" : "f";
        throw mismatch(v, "boolean");
      };
    case "timestamptz":
    case "date":
      return (v) => {
        if (typeof v === "string") return copyText(v);
        throw mismatch(v, type === "date" ? "date" : "timestamptz");
      };
    case "json":
      return (v) => {
        const text = stringifyJson(v);
        if (text.includes("\\u0000"))
          throw new Error(
            "holds a NUL character (U+0000), which PostgreSQL jsonb cannot store; drop the field with `fields` or write jsonl",
          );
        return copyText(text);
      };
    default:
      return (v) => {
        if (typeof v === "string") return copyText(v);
        if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
        return copyText(stringifyJson(v));
      };
  }
}
