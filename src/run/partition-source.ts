import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { StreamPlan } from "../compile/plan.js";
import { getPath, type Row } from "../records/shape.js";
import { cut, QUOTE_CHARS } from "../shared/errors.js";
import { parseJson, stringifyJson } from "../shared/json-text.js";
import { type PartitionPositions, partitionKey } from "../state/partition-state.js";
import { type Window, windowRange, windowsOf } from "./windows.js";

/**
 * One request sequence of a stream that runs in pieces: a parent record, a date window, or a
 * window of a parent record (parent order, then window order). Units are committed in `index`
 * order (checkpoints.ts).
 */
export interface Unit {
  index: number;
  parent: Row | null;
  /** For messages and the report: `repos:id=42`, `repos#3`, or the window's bounds. */
  label: string;
  /** The partition's name in the saved state (child streams with incremental or windows). */
  stateKey: string | null;
  window: Window | null;
}

export interface UnitCounts {
  /** Parent records (child streams). */
  partitions: number | null;
  /** Windows known so far (all of them for a stream without parent). */
  windows: number;
}

export interface SourceContext {
  stream: StreamPlan;
  parentRecords: string | null;
  parentKey: string[] | null;
  /** Saved positions: per partition for children, the stream's own otherwise. */
  positions: PartitionPositions;
  /** Fixed when the run started (`end: now`). */
  nowMs: number;
  /** --full-refresh, or `mode: replace` for windows: start again at `start`. */
  fromStart: boolean;
}

/** Where a stream's units come from: parent records, windows, or parent × windows. */
export async function* unitsOf(ctx: SourceContext, counts: UnitCounts): AsyncGenerator<Unit> {
  const { stream } = ctx;
  let index = 0;
  if (!ctx.parentRecords) {
    // A windowed stream without parent: its own position is the v1 `cursor` (the seed).
    for (const window of streamWindows(ctx, ctx.fromStart ? null : ctx.positions.seed)) {
      counts.windows++;
      yield { index: index++, parent: null, label: windowLabel(window), stateKey: null, window };
    }
    return;
  }
  const lines = createInterface({ input: createReadStream(ctx.parentRecords, "utf8"), crlfDelay: Infinity });
  let position = 0;
  for await (const line of lines) {
    if (!line) continue;
    position++;
    const parent = parseJson(line) as Row;
    const label = cut(parentLabel(stream.parent!, ctx.parentKey, parent, position), QUOTE_CHARS);
    const stateKey = stateKeyOf(stream, parent);
    if (!stream.windows) {
      yield { index: index++, parent, label, stateKey, window: null };
      continue;
    }
    const saved = ctx.fromStart || stateKey === null ? null : ctx.positions.get(stateKey);
    for (const window of streamWindows(ctx, saved)) {
      counts.windows++;
      yield { index: index++, parent, label: `${label} ${windowLabel(window)}`, stateKey, window };
    }
  }
}

function streamWindows(ctx: SourceContext, saved: string | number | null): Generator<Window> {
  const plan = ctx.stream.windows!;
  return windowsOf(plan, windowRange(plan, ctx.nowMs, saved));
}

export function windowLabel(w: Window): string {
  return `window ${w.start}…${w.end}`;
}

/** The partition's name in the state, when the stream keeps positions per partition. */
function stateKeyOf(stream: StreamPlan, parent: Row): string | null {
  if (!stream.incremental && !stream.windows) return null;
  if (!stream.partitionFields.length) return null;
  return partitionKey(stream.partitionFields.map((p) => getPath(parent, p) ?? null));
}

/** `repos:id=42` (the parent's primary key, else a common id field), or `repos#3`. */
export function parentLabel(parentName: string, key: string[] | null, parent: Row, position: number): string {
  const fields =
    key ??
    ["id", "key", "name", "slug"]
      .filter((k) => typeof parent[k] === "string" || typeof parent[k] === "number")
      .slice(0, 1);
  if (fields.length && fields.every((k) => parent[k] !== undefined && parent[k] !== null)) {
    return `${parentName}:${fields.map((k) => `${k}=${typeof parent[k] === "object" ? stringifyJson(parent[k]) : parent[k]}`).join(",")}`;
  }
  return `${parentName}#${position}`;
}

/** Lines of a JSON-lines file (the parent records), for progress: done / total. */
export async function countLines(file: string): Promise<number> {
  let n = 0;
  let last = 10;
  for await (const chunk of createReadStream(file)) {
    const buf = chunk as Buffer;
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
    last = buf[buf.length - 1];
  }
  return last === 10 ? n : n + 1;
}
