/**
 * The snapshots beside a recording (`snapshots/<stream>.jsonl`): the records a replay of it
 * wrote, and the record-by-record difference a test shows when they change.
 */
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { writeAtomic } from "../shared/atomic-write.js";
import { plural } from "../shared/format.js";
import { parseJson, stringifyJson } from "../shared/json-text.js";

export const SNAPSHOT_DIR = "snapshots";
/** Differences shown per stream; the rest are counted. */
const SHOWN = 10;

export async function readSnapshots(dir: string): Promise<Map<string, string>> {
  const folder = path.join(dir, SNAPSHOT_DIR);
  const out = new Map<string, string>();
  const files = await readdir(folder).catch(() => [] as string[]);
  for (const f of files.filter((x) => x.endsWith(".jsonl")).sort())
    out.set(f.slice(0, -".jsonl".length), await readFile(path.join(folder, f), "utf8"));
  return out;
}

/** Replaces the snapshots with `outputs` (a stream no longer written loses its file). */
export async function writeSnapshots(dir: string, outputs: Map<string, string>): Promise<void> {
  const folder = path.join(dir, SNAPSHOT_DIR);
  await mkdir(folder, { recursive: true });
  for (const f of await readdir(folder))
    if (f.endsWith(".jsonl") && !outputs.has(f.slice(0, -".jsonl".length))) await rm(path.join(folder, f));
  for (const [stream, text] of outputs) await writeAtomic(path.join(folder, `${stream}.jsonl`), text, 0o644);
}

type Row = Record<string, unknown>;

function rowsOf(text: string): Row[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => parseJson(l) as Row);
}

/** A record's identity: its primary key's values, else its place in the output. */
function keyOf(row: Row, index: number, primaryKey: string[] | null): string {
  if (!primaryKey?.length) return `#${index + 1}`;
  return primaryKey.map((k) => `${k}=${stringifyJson(row?.[k] ?? null)}`).join(", ");
}

const show = (v: unknown): string => {
  const t = v === undefined ? "(absent)" : stringifyJson(v);
  return t.length > 120 ? `${t.slice(0, 119)}…` : t;
};

/** How one record changed: `field: old → new` for each top-level field that differs. */
function fieldChanges(before: Row, after: Row): string[] {
  const names = [...new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})])];
  return names
    .filter((n) => stringifyJson(before?.[n]) !== stringifyJson(after?.[n]))
    .map((n) => `${n}: ${show(before?.[n])} → ${show(after?.[n])}`);
}

/** Lines describing how a stream's records differ from its snapshot; none when they are the same. */
export function diffStream(snapshot: string, output: string, primaryKey: string[] | null): string[] {
  if (snapshot === output) return [];
  const before = rowsOf(snapshot);
  const after = rowsOf(output);
  const index = (rows: Row[]) => new Map(rows.map((r, i) => [keyOf(r, i, primaryKey), r] as const));
  const was = index(before);
  const now = index(after);
  const lines: string[] = [];
  let count = 0;
  const add = (line: string) => {
    if (count++ < SHOWN) lines.push(line);
  };
  for (const [key, row] of was) {
    const next = now.get(key);
    if (!now.has(key)) add(`- record ${key} is gone: ${show(row)}`);
    else {
      const changes = fieldChanges(row, next as Row);
      if (changes.length) add(`~ record ${key}: ${changes.join("; ")}`);
    }
  }
  for (const [key, row] of now) if (!was.has(key)) add(`+ new record ${key}: ${show(row)}`);
  if (count === 0) add(`the records are the same but in another order (${plural(after.length, "record")})`);
  if (count > SHOWN) lines.push(`… and ${count - SHOWN} more`);
  return [`${before.length} → ${after.length} records`, ...lines];
}
