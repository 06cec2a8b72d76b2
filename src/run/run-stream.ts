import type { StreamPlan } from "../compile/plan.js";
import type { RequestExecutor } from "../http/executor.js";
import type { PageRequest, StopReason } from "../http/paginators/paginator.js";
import { MAX_TRACKED_FIELDS, StreamQuality } from "../records/quality.js";
import { compileShaper } from "../records/shape.js";
import { MESSAGE_CHARS, quote, RunError } from "../shared/errors.js";
import { formatNumber, plural } from "../shared/format.js";
import { nullWriter } from "./checkpoint-writers.js";
import { GateStop } from "./checkpoints.js";
import { guardCommit } from "./commit-guard.js";
import { applyIncremental, CursorTracker, startValue } from "./incremental.js";
import { pageWorkFits, pullPages } from "./page-work/pull-pages.js";
import { pull } from "./pull.js";
import { qualityGate } from "./quality-gate.js";
import { rawLinesFit } from "./raw-lines.js";
import { RecordSink } from "./record-sink.js";
import { StreamedWorkers, streamedIneligible } from "./record-workers/streamed-main.js";
import { recordContext, type StreamIO, type StreamRunOptions } from "./stream-options.js";
import type { StreamResult } from "./stream-result.js";
import {
  attachSink,
  markPartial,
  prepareUnits,
  runsInUnits,
  runUnits,
  runValues,
  type UnitRun,
} from "./unit-stream.js";

/**
 * Runs one stream: page by page (or partition by partition for a child stream), records flow
 * select → shape → validate → write with backpressure (record-sink.ts). The output is committed
 * only when the stream ends well and passes its data-quality policy (quality-gate.ts); then its
 * incremental cursor is saved.
 */
export async function runStream(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  io: StreamIO,
  result: StreamResult,
): Promise<void> {
  result.status = "running";
  result.startedAt = Date.now();
  const started = performance.now();
  const quality = new StreamQuality(stream, opts.validation);
  const cursor = stream.incremental ? new CursorTracker(stream.incremental.cursorField) : null;
  let sink: RecordSink | null = null;
  let units: UnitRun | null = null;
  try {
    const deps = {
      runId: opts.runId,
      validation: opts.validation,
      quality,
      cursor,
      redactor: executor.redactor,
      result,
    };
    units = runsInUnits(stream, io) ? await prepareUnits(stream, opts, { quality, cursor, result }) : null;
    const own = units?.writer ?? (stream.write ? null : nullWriter());
    sink = await RecordSink.open(stream, deps, io.keepRecordsAt, own);
    if (units) attachSink(units, sink);
    const stop = await fetchStream(stream, executor, opts, io, sink, units);
    result.stop = stop;
    if (stop.warning) result.warnings.push(stop.message);
    result.warnings.push(...executor.warnings(result.requests));
    if (quality.untrackedFields) {
      result.warnings.push(
        `more than ${formatNumber(MAX_TRACKED_FIELDS)} distinct field names: the records look like a map keyed by ids (a new key in every record); field statistics and drift cover the first ${formatNumber(MAX_TRACKED_FIELDS)} names. Select the map's values with \`records\` or \`fields\``,
      );
    }
    result.records.duplicates = sink.duplicates();
    // Nothing commits after Ctrl-C/SIGTERM (a child stream's partition loop stops without an error).
    if (opts.signal?.aborted)
      throw new RunError("aborted", "the run was interrupted before this stream committed");
    // written: records this run put in the output (none for `write: false`: they are only kept for children)
    result.records.written = stream.write ? result.records.written - result.records.duplicates : 0;
    await finish(stream, opts, sink, quality, units ? null : cursor, result);
    sink = null;
    // Committed: not kept beside by the commit guard (status ok, but no output).
    if (units) await units.checkpointer.finish((result.status as string) === "ok" && result.output !== null);
  } catch (err) {
    await sink?.abort();
    await units?.checkpointer.settle();
    result.status = "failed";
    result.error =
      err instanceof RunError
        ? { kind: err.kind, message: err.message }
        : err instanceof GateStop
          ? {
              kind: err.rejection.kind,
              message: `${err.rejection.message}; the stream stopped before this commit`,
            }
          : {
              kind: "internal",
              message: quote((err as Error)?.message ?? String(err), executor.redactor, MESSAGE_CHARS),
            };
    if (err instanceof GateStop) result.status = "rejected";
    markPartial(result);
    result.quality = qualityOf(quality, null, null, null);
  } finally {
    result.durationMs = performance.now() - started;
  }
}

/** Fetches the whole stream into the sink: one request sequence, or one per parent record. */
async function fetchStream(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  io: StreamIO,
  sink: RecordSink,
  units: UnitRun | null,
): Promise<StopReason> {
  const shaper0 = compileShaper(stream, recordContext(stream, opts));
  if (stream.values) return runValues(stream, shaper0, sink.accept, sink.result);
  if (units) return runUnits(units, stream, executor, opts, io, shaper0, sink.accept, sink.result);
  // A database output keeps the state it committed with its rows: that one wins over the file.
  const saved = stream.incremental
    ? (sink.savedState()?.cursor ?? (await opts.state.read()).streams?.[stream.name]?.cursor)
    : null;
  const since = startValue(stream, saved, opts.fullRefresh);
  if (opts.remote) return opts.remote.pull(opts, stream, null, since, sink.accept, sink.result);
  const shaper = shaper0;
  const r = stream.request;
  const first: PageRequest = {
    method: r.method,
    url: r.url,
    params: r.params,
    headers: r.headers,
    body: r.body,
  };
  const request = applyIncremental(first, stream, since);
  if (pageWorkFits(stream, opts, sink)) return pullPages(stream, executor, opts, request, sink);
  // Records nothing reads go out as raw lines (raw-lines.ts), on this thread: no worker then.
  const raw = rawLinesFit(stream, opts.limit, sink) ? sink : undefined;
  const workers = raw ? null : streamedWorkers(stream, opts, sink);
  if (!workers)
    return pull(stream, executor, opts, request, shaper, sink.accept, sink.result, undefined, { raw });
  let ok = false;
  try {
    const stop = await pull(stream, executor, opts, request, shaper, sink.accept, sink.result, undefined, {
      offload: (r) => workers.decoder(r),
    });
    ok = true;
    return stop;
  } finally {
    await workers.close(ok);
  }
}

/** A JSONL/CSV stream's record work on a worker thread, when `source.workers` allows and it is eligible. */
function streamedWorkers(
  stream: StreamPlan,
  opts: StreamRunOptions,
  sink: RecordSink,
): StreamedWorkers | null {
  const threads = (opts.workers ?? 1) - 1;
  if (threads < 1 || streamedIneligible(stream, sink, opts.limit) !== null) return null;
  const context = recordContext(stream, opts);
  return new StreamedWorkers(stream, sink, sink.quality, context, opts.validation, opts.signal, threads);
}

/** The quality gate decides: commit the output and save the cursor, or keep the previous output. */
async function finish(
  stream: StreamPlan,
  opts: StreamRunOptions,
  sink: RecordSink,
  quality: StreamQuality,
  cursor: CursorTracker | null,
  result: StreamResult,
): Promise<void> {
  const drift = quality.drift();
  const rejection = qualityGate(quality, opts.validation, drift);
  let rejectedOutput: string | null = null;
  if (rejection) {
    rejectedOutput = await sink.reject(result.warnings);
    result.status = "rejected";
    result.error = {
      kind: rejection.kind,
      message: `${rejection.message}. The previous output is unchanged${rejectedOutput ? `; the new records were kept in ${rejectedOutput}` : ""}.`,
    };
  } else if (await guardCommit(stream, opts, sink, quality, result)) {
    // kept beside as a preview: guardCommit said why
  } else {
    const save = cursorToSave(stream, opts, cursor, result);
    const inCommit = save === null || opts.deferCursor ? null : { cursor: save };
    result.warnings.push(...(await sink.commitOutput(inCommit)));
    result.output = stream.output.where ?? stream.output.path;
    result.status = "ok";
    if (save !== null && opts.deferCursor) opts.deferCursor(() => saveCursor(stream, opts, save));
    else if (save !== null) await saveCursor(stream, opts, save);
  }
  await sink.commitSideFiles();
  const quarantine =
    result.records.invalid && opts.validation.invalidRecords === "skip" ? sink.quarantineWhere : null;
  result.quality = qualityOf(quality, drift, quarantine, rejectedOutput);
}

/**
 * A run that did not fetch everything it was asked for must not move the cursor past the records
 * it never saw (a --limit run of a newest-first API, a skipped partition).
 */
function cursorToSave(
  stream: StreamPlan,
  opts: StreamRunOptions,
  cursor: CursorTracker | null,
  result: StreamResult,
): string | number | null {
  const value = cursor?.max;
  if (value === null || value === undefined || !stream.incremental) return null;
  const stop = result.stop;
  const failed = result.partitions?.failed.length ?? 0;
  const partial =
    stop?.code === "limit"
      ? `--limit ${opts.limit} stopped the stream early`
      : stop?.code === "max_pages" || stop?.code === "max_empty_pages"
        ? `${stop.code} stopped the stream while the API still had a next page`
        : stop?.code === "ignored_later"
          ? "an `ignore` rule ended the stream after its first page"
          : failed
            ? `${plural(failed, "partition")} failed`
            : null;
  if (partial) {
    result.warnings.push(
      `incremental cursor not saved (${partial}): the next run starts from the previous cursor again`,
    );
    return null;
  }
  return value;
}

async function saveCursor(stream: StreamPlan, opts: StreamRunOptions, value: string | number): Promise<void> {
  await opts.state.update((s) => ({
    ...s,
    streams: { ...s.streams, [stream.name]: { cursor: value, updated_at: new Date().toISOString() } },
  }));
}

function qualityOf(
  quality: StreamQuality,
  drift: ReturnType<StreamQuality["drift"]> | null,
  quarantine: string | null,
  rejectedOutput: string | null,
): StreamResult["quality"] {
  return {
    schemaDraft: quality.draft,
    errors: quality.errorGroups(),
    drift: drift ?? quality.drift(),
    fields: quality.fieldStats(),
    quarantine,
    rejectedOutput,
  };
}
