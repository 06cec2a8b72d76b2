import { stat } from "node:fs/promises";
import { quarantineFile } from "../compile/layout.js";
import type { StreamPlan } from "../compile/plan.js";
import type { RequestExecutor } from "../http/executor.js";
import type { StopReason } from "../http/paginators/paginator.js";
import type { StreamQuality } from "../records/quality.js";
import type { Row, Shaper } from "../records/shape.js";
import { stepText } from "../shared/units.js";
import { PartitionPositions, withStream } from "../state/partition-state.js";
import type { StreamState } from "../state/state-store.js";
import {
  type CheckpointWriter,
  cutBackTo,
  keepsLength,
  nullWriter,
  openAppendWriter,
  openPerCommitWriter,
} from "./checkpoint-writers.js";
import { Checkpointer } from "./checkpoints.js";
import { type CursorTracker, startValue } from "./incremental.js";
import { countLines, type Unit, type UnitCounts, unitsOf, windowLabel } from "./partition-source.js";
import { runPartitions } from "./partitions.js";
import type { RecordSink } from "./record-sink.js";
import type { StreamIO, StreamRunOptions } from "./stream-options.js";
import type { StreamResult } from "./stream-result.js";
import { windowRange, windowsSummary } from "./windows.js";

/** A stream that runs in units (windows, partitions): its writer, checkpointer and positions. */
export interface UnitRun {
  writer: CheckpointWriter;
  checkpointer: Checkpointer;
  positions: PartitionPositions;
  fromStart: boolean;
  /** Commits after each unit (append / merge). */
  checkpoints: boolean;
}

/** Under checkpoints, the sink's quarantine is appended at each commit (never replaced). */
export function attachSink(run: UnitRun, sink: RecordSink): void {
  if (!run.checkpoints) return;
  sink.appendQuarantineAtCommits();
  run.checkpointer.sideCommit = sink.commitQuarantine;
}

/** Whether a stream runs in units: a child stream, or a windowed one. */
export function runsInUnits(stream: StreamPlan, io: StreamIO): boolean {
  return Boolean(stream.windows || (stream.parent && io.parentRecords));
}

/**
 * Commits after each unit with `append` / `merge` (not `json`, one array); `replace` commits
 * once. A windowed stream under `replace` keeps no position: it fetches its whole range.
 */
export async function prepareUnits(
  stream: StreamPlan,
  opts: StreamRunOptions,
  deps: { quality: StreamQuality; cursor: CursorTracker | null; result: StreamResult },
): Promise<UnitRun> {
  const out = stream.output;
  const checkpoints = out.mode !== "replace" && out.format !== "json";
  const saved = await savedPositions(stream, opts);
  const fromStart = opts.fullRefresh || (Boolean(stream.windows) && out.mode === "replace");
  const positions = new PartitionPositions(fromStart ? undefined : saved);
  let writer: CheckpointWriter;
  if (!stream.write) writer = nullWriter();
  else if (!checkpoints) writer = wrapOnce(stream, opts);
  else {
    // Only a file whose commits add bytes at its end is cut back (keepsLength): a database or a
    // Parquet file is never truncated, whatever length an older state holds for it.
    if (keepsLength(out)) await cutBackTo(saved?.files, out.path);
    await cutBackTo(saved?.files, quarantineFile(stream));
    // Before the first byte: the lengths every later start cuts back to, until the first commit
    // (the output's under jsonl or csv `append`; the quarantine's, appended at each commit).
    const appended = keepsLength(out) ? [out.path, quarantineFile(stream)] : [quarantineFile(stream)];
    const starts = appended.filter((f) => saved?.files?.[f] === undefined);
    // A merge rewrites the output whole at each commit, a database commits in its transaction: a
    // length an earlier run saved for the output goes.
    const stale = !keepsLength(out) && saved?.files?.[out.path] !== undefined ? [out.path] : [];
    if (starts.length || stale.length) await recordStartLengths(opts, stream.name, starts, stale);
    writer =
      out.format === "jsonl" && out.mode === "append" && !stream.primaryKey
        ? await openAppendWriter(out)
        : openPerCommitWriter(out, writerContext(stream, opts));
  }
  const keepPositions = !(stream.windows && out.mode === "replace");
  const checkpointer = new Checkpointer(stream, {
    state: opts.state,
    writer,
    quality: deps.quality,
    validation: opts.validation,
    cursor: deps.cursor,
    positions,
    result: deps.result,
    checkpoints,
    keepPositions,
    commitPartial: opts.guard?.commitPartial ?? false,
  });
  return { writer, checkpointer, positions, fromStart, checkpoints };
}

/**
 * The stream's saved positions: a database output's own (sqlite, duckdb, postgres: written with
 * its rows, so they win over the state file, as for a v1 stream), with the file's committed lengths.
 */
async function savedPositions(stream: StreamPlan, opts: StreamRunOptions): Promise<StreamState | undefined> {
  const fromFile = (await opts.state.read()).streams?.[stream.name];
  const out = stream.output;
  const key = out.stateKey;
  if (!key || out.mode === "replace") return fromFile;
  let inDb: StreamState | null = null;
  if (out.format === "sqlite") {
    const { sqliteState } = await import("../outputs/sqlite-peek.js");
    inDb = sqliteState(out.path, key, stream.name) as StreamState | null;
  } else if (out.format === "duckdb") {
    inDb = await (await import("../outputs/table-peek.js")).duckdbState(out.path, key, stream.name);
  } else if (out.format === "postgres") {
    inDb = await (await import("../outputs/table-peek.js")).postgresState(out, key, stream.name);
  }
  return inDb ? { ...fromFile, cursor: inDb.cursor, partitions: inDb.partitions } : fromFile;
}

/** Runs the units: parent records, windows, or both; progress in `result.units`. */
export async function runUnits(
  run: UnitRun,
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  io: StreamIO,
  shaper: Shaper,
  accept: (row: Row) => Promise<void> | undefined,
  result: StreamResult,
): Promise<StopReason> {
  const nowMs = opts.startedAtMs ?? Date.now();
  const counts: UnitCounts = { partitions: null, windows: 0 };
  const parentCount = io.parentRecords ? await countLines(io.parentRecords) : null;
  const units = {
    kind: stream.windows ? ("windows" as const) : ("partitions" as const),
    total: 0,
    done: 0,
    committed: 0,
    incomplete: 0,
    checkpoints: stream.output.mode !== "replace" && stream.output.format !== "json",
    windows: null as { first: string | null; last: string | null; step: string } | null,
  };
  if (stream.windows && !stream.parent) {
    const range = windowRange(stream.windows, nowMs, run.fromStart ? null : run.positions.seed);
    const w = windowsSummary(stream.windows, range);
    units.total = w.count;
    units.windows = {
      first: w.first ? windowLabel(w.first) : null,
      last: w.last ? windowLabel(w.last) : null,
      step: stepText(stream.windows.stepMs),
    };
  } else if (!stream.windows) units.total = parentCount ?? 0;
  result.units = units;
  const source = unitsOf(
    {
      stream,
      parentRecords: io.parentRecords,
      parentKey: io.parentKey,
      positions: run.positions,
      nowMs,
      fromStart: run.fromStart,
    },
    counts,
  );
  const cp = run.checkpointer;
  const tracked = async function* (): AsyncGenerator<Unit> {
    for await (const u of source) {
      if (stream.windows && stream.parent) units.total = counts.windows;
      yield u;
    }
  };
  const since = (unit: Unit) =>
    stream.incremental
      ? startValue(
          stream,
          unit.stateKey !== null ? run.positions.get(unit.stateKey) : run.positions.seed,
          false,
        )
      : null;
  const stop = await runPartitions(stream, executor, opts, shaper, accept, result, {
    units: tracked(),
    since,
    checkpointer: cp,
    parentCount,
  });
  cp.judgeWindows();
  return stop;
}

/** A `values` stream: its records are the list's items; no request is sent. */
export async function runValues(
  stream: StreamPlan,
  shaper: Shaper,
  accept: (row: Row) => Promise<void> | undefined,
  result: StreamResult,
): Promise<StopReason> {
  const values = stream.values ?? [];
  for (const item of values) {
    const row = shaper.shape(item, undefined);
    if (row === null) {
      // Dropped by `filter`: seen, but neither valid nor invalid (as in pull.ts).
      result.records.filtered++;
      result.records.seen++;
      continue;
    }
    const p = accept(row);
    if (p) await p;
  }
  if (!values.length) {
    result.warnings.push("the `values` list is empty: nothing to fetch");
    return { code: "single_page", message: "the `values` list is empty: nothing fetched" };
  }
  return { code: "single_page", message: `${values.length} listed values` };
}

async function recordStartLengths(
  opts: StreamRunOptions,
  name: string,
  files: string[],
  stale: string[],
): Promise<void> {
  const lengths: Record<string, number> = {};
  for (const file of files) {
    try {
      lengths[file] = (await stat(file)).size;
    } catch {
      lengths[file] = 0; // no file yet
    }
  }
  await opts.state.update((s) =>
    withStream(s, name, (old) => {
      const files = { ...old?.files, ...lengths };
      for (const file of stale) delete files[file];
      return { ...old, files };
    }),
  );
}

function writerContext(stream: StreamPlan, opts: StreamRunOptions) {
  const props = stream.schema?.schema?.properties;
  return {
    runId: opts.runId,
    stream: stream.name,
    columns: props && typeof props === "object" ? Object.keys(props) : null,
    primaryKey: stream.primaryKey,
    schema: stream.schema?.schema ?? null,
  };
}

/** `replace` / `json`: one ordinary writer, committed once at the end, as in format v1. */
function wrapOnce(stream: StreamPlan, opts: StreamRunOptions): CheckpointWriter {
  const w = openPerCommitWriter(stream.output, writerContext(stream, opts));
  return { ...w, checkpoint: async () => null };
}

/**
 * A stream that stopped after some commits: `partial` ("4 of 10 windows committed"); what was
 * committed stays, and the next run resumes after it.
 */
export function markPartial(result: StreamResult): void {
  const u = result.units;
  if (!u?.checkpoints || u.committed === 0) return;
  const what = u.kind === "windows" ? "windows" : "partitions";
  const message = `${u.committed} of ${u.total} ${what} committed`;
  result.status = "partial";
  result.error = result.error ? { ...result.error, message: `${result.error.message} (${message})` } : null;
  result.warnings.push(`stopped after ${message}: the next run resumes after the last commit`);
}
