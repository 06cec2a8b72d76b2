import { jsonPartsKey, type Key } from "../../outputs/merge.js";
import { type ByteChecker, scalarAt } from "../../records/byte-check.js";
import { T_NULL } from "../../shared/json-types.js";

/**
 * Values read from a checked record's bytes, exactly as the parsed record gives them: its primary
 * key (byteKey) and its incremental cursor (byteCursor). The record is canonical JSON
 * (byte-check.ts): a value's bytes are what stringifyJson writes for it, its numbers have at most
 * 15 digits and no exponent (so `Number` of their text is the parsed value), its strings hold no
 * control character and no `\u` escape.
 */

/** The primary key as merge.ts's jsonKeyFunction reads it (null: a part is missing or null). */
export function byteKey(checker: ByteChecker, b: Buffer, primaryKey: readonly string[]): Key | null {
  if (primaryKey.length === 1) {
    const k = memberIndex(checker, primaryKey[0]);
    if (k < 0 || checker.types[k] === T_NULL) return null;
    // A string's first character is never NUL here (it would be written `\u0000`).
    return (
      keyScalar(checker, b, k) ??
      jsonPartsKey(`[${b.toString("utf8", checker.values[2 * k], checker.values[2 * k + 1])}]`)
    );
  }
  let parts = "";
  for (const name of primaryKey) {
    const k = memberIndex(checker, name);
    if (k < 0 || checker.types[k] === T_NULL) return null;
    parts += `${parts ? "," : ""}${b.toString("utf8", checker.values[2 * k], checker.values[2 * k + 1])}`;
  }
  return jsonPartsKey(`[${parts}]`);
}

/**
 * The value of the cursor field for incremental.ts's CursorTracker.offer: a string or a number;
 * undefined when the record has none or another type (which the tracker ignores too).
 */
export function byteCursor(checker: ByteChecker, b: Buffer, field: string): string | number | undefined {
  const k = memberIndex(checker, field);
  return k < 0 ? undefined : keyScalar(checker, b, k);
}

/** Member `k`'s value when it is a string or a number, else undefined. */
function keyScalar(checker: ByteChecker, b: Buffer, k: number): string | number | undefined {
  const v = scalarAt(b, checker.types[k], checker.values[2 * k], checker.values[2 * k + 1]);
  return typeof v === "string" || typeof v === "number" ? v : undefined;
}

function memberIndex(checker: ByteChecker, name: string): number {
  const { names, count } = checker;
  for (let k = 0; k < count; k++) if (names[k] === name) return k;
  return -1;
}
