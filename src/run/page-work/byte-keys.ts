import type { Key } from "../../outputs/merge.js";
import type { ByteChecker } from "../../records/byte-check.js";
import { T_INTEGER, T_NULL, T_NUMBER, T_STRING } from "../../shared/json-types.js";

/**
 * A checked record's primary key read from its bytes, exactly as merge.ts's jsonKeyFunction reads
 * it from the parsed record (null: a part is missing or null). The record is canonical JSON
 * (byte-check.ts): a value's bytes are what stringifyJson writes for it, its numbers have at most
 * 15 digits and no exponent (so `Number` of their text is the parsed value), its strings hold no
 * control character and no `\u` escape.
 */
export function byteKey(checker: ByteChecker, b: Buffer, primaryKey: readonly string[]): Key | null {
  if (primaryKey.length === 1) {
    const k = memberIndex(checker, primaryKey[0]);
    if (k < 0) return null;
    const type = checker.types[k];
    const start = checker.values[2 * k];
    const end = checker.values[2 * k + 1];
    if (type === T_NULL) return null;
    if (type === T_INTEGER || type === T_NUMBER) return Number(b.toString("latin1", start, end));
    // A string's first character is never NUL here (it would be written `\u0000`).
    if (type === T_STRING)
      return escapes(b, start, end)
        ? (JSON.parse(b.toString("utf8", start, end)) as string)
        : b.toString("utf8", start + 1, end - 1);
    return `\0[${b.toString("utf8", start, end)}]`;
  }
  let parts = "";
  for (const name of primaryKey) {
    const k = memberIndex(checker, name);
    if (k < 0 || checker.types[k] === T_NULL) return null;
    parts += `${parts ? "," : ""}${b.toString("utf8", checker.values[2 * k], checker.values[2 * k + 1])}`;
  }
  return `\0[${parts}]`;
}

function memberIndex(checker: ByteChecker, name: string): number {
  const { names, count } = checker;
  for (let k = 0; k < count; k++) if (names[k] === name) return k;
  return -1;
}

function escapes(b: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i] === 0x5c) return true;
  return false;
}
