import {
  escapesLoneSurrogate,
  hasEscape,
  isWellFormed,
  LONE_SURROGATE,
  stringifyJson,
} from "../shared/json-text.js";
import { type ColumnType, fitsInt64 } from "./table-shape.js";

/** How one value becomes the text of a COPY field. */
export type Encoder = (v: unknown) => string;

/** What a COPY text field escapes, and NUL (refused): one scan finds a string that needs neither. */
const SPECIAL = /[\0\\\n\r\t]/;
const ESCAPED = /[\\\n\r\t]/g;
const escapeChar = (c: string) => (c === "\\" ? "\\\\" : c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\t");

/** A string as a COPY text field: backslash, newline, CR and tab escaped; NUL refused. */
function copyText(s: string): string {
  if (!isWellFormed(s)) throw new Error(LONE_SURROGATE);
  if (!SPECIAL.test(s)) return s;
  if (s.includes("\0"))
    throw new Error(
      "holds a NUL character (U+0000), which PostgreSQL text cannot store; drop the field with `fields` or write jsonl",
    );
  return s.replace(ESCAPED, escapeChar);
}

/**
 * JSON text as a COPY field. JSON text has no raw control character (JSON escapes them): only its
 * backslashes are doubled. A NUL is written `\u0000` in it — an escape only when the backslash
 * before `u0000` is not itself escaped (the text `\\u0000` is a backslash, then `u0000`).
 */
function copyJson(text: string): string {
  if (!text.includes("\\")) return text;
  if (escapesLoneSurrogate(text)) throw new Error(LONE_SURROGATE);
  if (hasEscape(text, "\\u0000"))
    throw new Error(
      "holds a NUL character (U+0000), which PostgreSQL jsonb cannot store; drop the field with `fields` or write jsonl",
    );
  return text.replaceAll("\\", "\\\\");
}

export function safeJson(v: unknown): string {
  try {
    return stringifyJson(v) ?? "undefined";
  } catch {
    return String(v);
  }
}

function mismatch(
  v: unknown,
  col: string,
  why = "the column's type comes from the schema or the table",
): Error {
  const t =
    typeof v === "bigint"
      ? fitsInt64(v)
        ? "an integer beyond 2^53"
        : "an integer beyond 64 bits"
      : Array.isArray(v)
        ? "an array"
        : v === null
          ? "null"
          : typeof v === "object"
            ? "an object"
            : `a ${typeof v}`;
  // A number or a boolean is shown; a string, array or object only by its size: it may hold a
  // secret, and a cut one no longer matches the redactor that masks the message after.
  const shown =
    typeof v === "number" || typeof v === "boolean" || typeof v === "bigint"
      ? ` (${String(v)})`
      : typeof v === "string"
        ? ` of ${v.length} characters`
        : v !== null && typeof v === "object"
          ? ` of ${safeJson(v).length} characters of JSON`
          : "";
  return new Error(
    `${t}${shown} cannot go into a ${col} column: the value is refused rather than changed (${why})`,
  );
}

/**
 * A text column whose type this run took from its first values (no schema): a value of another
 * JSON type later is refused (it was written as its text: 7 as '7', an object as its JSON, no
 * word said), naming its record where the writer reports it.
 */
export const strictText: Encoder = (v) => {
  if (typeof v === "string") return copyText(v);
  throw mismatch(
    v,
    "text",
    "its type came from the run's first values, there being no schema: declare the field's type in the schema (`type: [string, number]` makes a jsonb column)",
  );
};

/** How a value becomes a COPY field for a column of `type` (null: the table's own type, as text). */
export function encoder(type: ColumnType | null): Encoder {
  switch (type) {
    case "bigint":
      return (v) => {
        if (typeof v === "bigint" && fitsInt64(v)) return String(v);
        if (typeof v === "number" && Number.isInteger(v) && Number.isSafeInteger(v)) return String(v);
        throw mismatch(v, "bigint");
      };
    case "double":
      return (v) => {
        // An integer beyond 2^53 (a BigInt) would be rounded by the column: refused instead.
        if (typeof v === "number") return String(v);
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
      return (v) => copyJson(stringifyJson(v));
    default:
      return (v) => {
        if (typeof v === "string") return copyText(v);
        if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
        return copyText(stringifyJson(v));
      };
  }
}
