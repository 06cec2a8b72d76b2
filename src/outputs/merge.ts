/**
 * Keys, duplicates and the append/merge pass shared by the file writers (jsonl, json, csv).
 *
 * Semantics, the same for every format including sqlite: a run is a sequence of upserts by
 * primary key applied to an ordered collection.
 * - Duplicates within a run: a record whose key was already written in this run replaces the
 *   earlier record *in place*: the key keeps the position of its first occurrence and takes the
 *   content of its last ("keep the last record"). Each such record counts as one duplicate.
 * - `merge`: the old records stay in their original order; an old record whose key comes again
 *   in this run is replaced in place by the run's (last) record for that key; then the run's
 *   records with new keys follow, in the order of their first occurrence. Old records that
 *   already shared a key (e.g. after an `append`) collapse into one, at the first one's place.
 *   Merging the same data twice gives the same file (idempotent).
 * - `append`: the old records, then this run's records (deduplicated as above).
 * - A key with a missing or null part (for CSV: an empty cell) matches nothing: such records
 *   are never duplicates and never replace an old record, as with NULL in an SQL UNIQUE index.
 *
 * Memory: the writers never hold records, only the keys of this run's records (a Map of key →
 * position), as the format docs say `primary_key` costs. Records are read back from the
 * temporary body file: sequentially, plus one positioned read per record that moves.
 */
import type { OutputPlan } from "../compile/plan.js";
import type { Row } from "../records/shape.js";
import { isInheritedName, ownField, stringifyJson } from "../shared/json-text.js";
import type { AtomicFile } from "./atomic-file.js";

/**
 * A record's primary key as compared: a one-field key is its value itself when that is a number
 * or a string (fast, no allocation); any other key is the JSON of its parts behind a NUL, so
 * that it cannot equal a plain string key.
 */
export type Key = string | number;

/** Where the last record written with a key lies in the body file. */
export interface Slot {
  /** Index (0-based, in write order) of the key's first record: where the key stays. */
  first: number;
  /** Byte offset and length of the key's latest record text in the body file. */
  offset: number;
  length: number;
}

/** The primary keys of the records written in one run. */
export class RunKeys {
  readonly slots = new Map<Key, Slot>();
  /** Indexes of records that repeat an earlier key (their content moves to the first). */
  readonly repeats = new Set<number>();
  /** First index → slot, for the keys written more than once. */
  readonly moved = new Map<number, Slot>();
  duplicates = 0;

  /** Notes the record at `index`; true when its key was already written in this run. */
  see(key: Key | null, index: number, offset: number, length: number): boolean {
    if (key === null) return false;
    const slot = this.slots.get(key);
    if (!slot) {
      this.slots.set(key, { first: index, offset, length });
      return false;
    }
    slot.offset = offset;
    slot.length = length;
    this.repeats.add(index);
    this.moved.set(slot.first, slot);
    this.duplicates++;
    return true;
  }
}

/**
 * A key function: null when a part is missing. `part` gives the form a value is compared in,
 * or undefined when it counts as missing.
 */
export function keyFunction(
  primaryKey: string[],
  part: (value: unknown) => unknown,
): (record: Row) => Key | null {
  // A key field named like something every object inherits (`toString`) is read as an own field.
  const read = primaryKey.map((field) =>
    isInheritedName(field) ? (r: Row) => ownField(r, field) : (r: Row) => r[field],
  );
  if (primaryKey.length === 1) {
    const get = read[0];
    return (record) => {
      const v = part(get(record));
      if (v === undefined) return null;
      if (typeof v === "number" || (typeof v === "string" && v.charCodeAt(0) !== 0)) return v;
      return jsonPartsKey(stringifyJson([v])!);
    };
  }
  return (record) => {
    const parts: unknown[] = [];
    for (const get of read) {
      const v = part(get(record));
      if (v === undefined) return null;
      parts.push(v);
    }
    return jsonPartsKey(stringifyJson(parts)!);
  };
}

/**
 * The key of a record whose key is not one plain number or string: the JSON array of its parts
 * (what stringifyJson writes for it), after a NUL no plain string key starts with.
 */
export function jsonPartsKey(partsJson: string): string {
  return `\0${partsJson}`;
}

/** Keys compared as JSON values; null and missing parts match nothing. */
export function jsonKeyFunction(primaryKey: string[]): (record: Row) => Key | null {
  return keyFunction(primaryKey, (v) => (v === null ? undefined : v));
}

/** Notes `key` (null: no key) in `seen`: 1 when it was there already (a duplicate), else 0. */
export function noteKey(seen: Set<Key>, key: Key | null): number {
  if (key === null) return 0;
  if (seen.has(key)) return 1;
  seen.add(key);
  return 0;
}

/** noteKey for each of `keys`: how many were there already. */
export function countDuplicates(seen: Set<Key>, keys: readonly (Key | null)[]): number {
  let dups = 0;
  for (const k of keys) dups += noteKey(seen, k);
  return dups;
}

export function requireKeyForMerge(output: OutputPlan, primaryKey: string[] | null): void {
  if (output.mode === "merge" && !primaryKey?.length) {
    throw new Error(`output mode \`merge\` upserts by primary key: ${output.path} needs a \`primary_key\``);
  }
}

/** How records are laid out in a file. */
export interface Layout {
  /** Before the first record. */
  open: string;
  /** Between two records. */
  sep: string;
  /** After each record. */
  term: string;
  /** After the last record. */
  close: string;
  /** The whole rest of the file when there is no record. */
  empty: string;
}

export interface OldRecord {
  /** The record's text in the final layout (without separators). */
  text: string;
  /** Its key; only read in `merge` mode. */
  key: Key | null;
}

export interface CombineInput {
  /** The final temporary file; anything before the records (a CSV header) is already in it. */
  out: AtomicFile;
  layout: Layout;
  mode: OutputPlan["mode"];
  /** The target's current records, in order; null when there is none or the mode is replace. */
  old: AsyncIterable<OldRecord> | null;
  /** This run's records in write order, each in the final layout. */
  body: AsyncIterable<string>;
  keys: RunKeys | null;
  /** The final text of a key's latest record (a positioned read of the body file). */
  latest: (slot: Slot) => Promise<string>;
}

/** Writes old and new records into `out` following the semantics at the top of this file. */
export async function combine(c: CombineInput): Promise<void> {
  let count = 0;
  const emit = async (text: string): Promise<void> => {
    const p = c.out.write((count++ === 0 ? c.layout.open : c.layout.sep) + text + c.layout.term);
    if (p) await p;
  };
  const keys = c.keys;
  /** First indexes of run keys already written in place of an old record. */
  const placed = new Set<number>();
  if (c.old) {
    for await (const rec of c.old) {
      const slot = c.mode === "merge" && keys && rec.key !== null ? keys.slots.get(rec.key) : undefined;
      if (!slot) await emit(rec.text);
      else if (!placed.has(slot.first)) {
        placed.add(slot.first);
        await emit(await c.latest(slot));
      }
    }
  }
  let index = 0;
  for await (const text of c.body) {
    const i = index++;
    if (keys?.repeats.has(i) || placed.has(i)) continue;
    const slot = keys?.moved.get(i);
    await emit(slot ? await c.latest(slot) : text);
  }
  const p = c.out.write(count ? c.layout.close : c.layout.empty);
  if (p) await p;
}
