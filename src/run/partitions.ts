import type { StreamPlan } from "../compile/plan.js";
import type { RequestExecutor } from "../http/executor.js";
import type { StopReason } from "../http/paginators/paginator.js";
import { Semaphore } from "../http/semaphore.js";
import type { Row, Shaper } from "../records/shape.js";
import { interrupted, RunError, type RunErrorKind } from "../shared/errors.js";
import type { Checkpointer, UnitEnd } from "./checkpoints.js";
import { applyIncremental } from "./incremental.js";
import { type Lane, OrderedSink } from "./ordered-sink.js";
import type { Unit } from "./partition-source.js";
import { pull } from "./pull.js";
import { compileRequestTemplate } from "./request-template.js";
import type { StreamRunOptions } from "./stream-options.js";
import type { StreamResult } from "./stream-result.js";
import type { PageWatch } from "./suspicions.js";

type Partitions = NonNullable<StreamResult["partitions"]>;

/** Where the units come from and how each one starts (run-stream.ts builds it). */
export interface UnitPlan {
  units: AsyncIterable<Unit>;
  /** The incremental value a unit sends (its partition's saved value, the seed, or `initial`). */
  since: (unit: Unit) => string | number | null;
  checkpointer: Checkpointer;
  /** Parent records, when the stream is a child (for progress: done / total). */
  parentCount: number | null;
}

/**
 * A stream in units — one pull per parent record, per date window, or per window of each parent —
 * run concurrently and written in unit order; each unit is committed in order (checkpoints.ts).
 */
export async function runPartitions(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  shaper: Shaper,
  accept: (row: Row) => Promise<void> | undefined,
  result: StreamResult,
  plan: UnitPlan,
): Promise<StopReason> {
  const template = compileRequestTemplate(stream, opts.baseUrl);
  const cp = plan.checkpointer;
  // Nothing commits after the signal (Ctrl-C, a cancelled run): not even a unit fetched before it
  // that waited for an earlier unit's commit.
  const unitDone = (index: number) =>
    opts.signal?.aborted ? Promise.reject(interrupted()) : cp.unitDone(index);
  const held = heldCounter(accept);
  const sink = new OrderedSink(held.toSink, undefined, undefined, unitDone);
  const slots = new Semaphore(Math.max(1, opts.remote?.slots ?? opts.concurrency));
  const partitions: Partitions = { total: plan.parentCount ?? 0, done: 0, failed: [] };
  if (stream.parent) result.partitions = partitions;
  const running: Promise<void>[] = [];
  const failure: { error: unknown } = { error: null };
  const stops = new UnitStops();
  const limitReached = () =>
    opts.limit !== null && (stops.limited || result.records.written + held.count() >= opts.limit);
  let count = 0;
  for await (const unit of plan.units) {
    if (failure.error || opts.signal?.aborted || limitReached()) break;
    await sink.room(); // bounded memory behind a slow partition (ordered-sink.ts)
    const release = await slots.acquire();
    // A partition may have failed the stream while this one waited for a slot.
    if (failure.error || opts.signal?.aborted) {
      release();
      break;
    }
    count++;
    cp.started(unit);
    // Under `skip`, a partition is written whole or not at all (ordered-sink.ts).
    // (Not with --limit: held-back records would not count toward it.)
    const lane = sink.lane(unit.index, stream.onPartitionError === "skip" && opts.limit === null);
    const run = async () => {
      const write = (row: Row) => held.take(lane, row);
      if (opts.remote) {
        const stop = await opts.remote.pull(opts, stream, unit, plan.since(unit), write, result);
        stops.see(stop);
        cp.ended(unit.index, { stop, failed: false });
        return;
      }
      const request = template(unit.parent ?? {}, unit.label, unit.window);
      const first = applyIncremental(request, stream, plan.since(unit));
      // Partitions already use the concurrency; each pulls its pages in sequence.
      const opts1 = { ...opts, prefetch: 1, heldBack: held.count };
      const parent = unit.parent ?? undefined;
      const unitShaper = shaper.forWindow(unit.window);
      const end = await watchedPull((w) =>
        pull(stream, executor, opts1, first, unitShaper, write, result, parent, { watched: w }),
      );
      stops.see(end.stop);
      cp.ended(unit.index, end);
    };
    running.push(partition(run, release, lane, { unit, stream, partitions, failure, sink, cp }));
  }
  await Promise.all(running);
  if (stream.parent && plan.parentCount === null) partitions.total = count;
  if (failure.error) throw failure.error;
  if (partitions.failed.length) {
    result.warnings.push(
      `${partitions.failed.length} of ${partitions.total} partitions failed and were skipped (on_partition_error: skip)`,
    );
  }
  if (limitReached()) return { code: "limit", message: `--limit ${opts.limit} reached` };
  return stops.cut(stream, count) ?? allFetched(stream, count, partitions.total);
}

/**
 * How the units stopped besides their API's own end: a unit stopped by --limit; units cut short
 * by `max_pages` / `max_empty_pages` (--max-pages): the stream then stops with that code, so the
 * summary says so and the commit guard keeps a cut `replace` run beside, as for one request sequence.
 */
class UnitStops {
  limited = false;
  private first: StopReason | null = null;
  private n = 0;

  see(stop: StopReason | null): void {
    if (stop?.code === "limit") this.limited = true;
    else if (stop?.code === "max_pages" || stop?.code === "max_empty_pages") {
      this.first ??= stop;
      this.n++;
    }
  }

  cut(stream: StreamPlan, count: number): StopReason | null {
    if (!this.first) return null;
    const what = stream.windows ? "windows" : "partitions";
    return {
      code: this.first.code,
      message: `${this.n} of ${count} ${what} stopped early: ${this.first.message}`,
      warning: true,
    };
  }
}

/**
 * A unit's pull, with its pages' watch (a window's: the checkpointer judges it with the stream's
 * windows before it, suspicions.ts).
 */
async function watchedPull(run: (watched: (w: PageWatch) => void) => Promise<StopReason>): Promise<UnitEnd> {
  let watch: PageWatch | null = null;
  const stop = await run((w) => {
    watch = w;
  });
  return { stop, failed: false, watch };
}

/**
 * Records units handed to the ordered sink that it has not written yet. --limit counts them:
 * else every unit running beside the first fetched its whole range before the first was written.
 */
function heldCounter(accept: (row: Row) => Promise<void> | undefined) {
  let n = 0;
  return {
    count: () => n,
    take(lane: Lane, row: Row): Promise<void> {
      n++;
      return lane.write(row);
    },
    toSink(row: Row): Promise<void> | undefined {
      n--;
      return accept(row);
    },
  };
}

/** How a stream in units ends when every unit ran. */
function allFetched(stream: StreamPlan, count: number, parents: number): StopReason {
  if (count === 0)
    return {
      code: "single_page",
      message: stream.windows ? "no window to fetch: the range is already empty" : "no parent record",
    };
  return {
    code: "single_page",
    message: stream.windows ? `all ${count} windows fetched` : `all ${parents} parent records fetched`,
  };
}

const NOT_SKIPPED = new Set<RunErrorKind>(["aborted", "validation", "queue", "internal"]);

/** Runs one partition; a failure is skipped (on_partition_error: skip) or fails the stream. */
async function partition(
  run: () => Promise<void>,
  release: () => void,
  lane: Lane,
  ctx: {
    unit: Unit;
    stream: StreamPlan;
    partitions: Partitions;
    failure: { error: unknown };
    sink: OrderedSink;
    cp: Checkpointer;
  },
): Promise<void> {
  const { unit, stream, partitions, failure, sink, cp } = ctx;
  const parentKey = unit.label;
  const fail = (err: unknown) => {
    failure.error ??= err;
    sink.stop();
  };
  try {
    await run();
    partitions.done++;
  } catch (err) {
    // A partition's own failure; not the machinery's (a worker that refused the job or broke,
    // Redis lost: `queue`, `internal`), which fails the stream as in a local run.
    const skippable = err instanceof RunError && !NOT_SKIPPED.has(err.kind);
    cp.ended(unit.index, { stop: null, failed: true });
    if (stream.parent && stream.onPartitionError === "skip" && skippable) {
      const kept = lane.discard();
      partitions.failed.push({
        parent_key: parentKey,
        error: kept
          ? `${err.message} (${kept} of its records were written before it failed, and are kept: the partition was too large to hold back)`
          : err.message,
      });
      partitions.done++;
    } else {
      fail(
        err instanceof RunError
          ? new RunError(
              err.kind,
              `${stream.parent ? "partition for parent " : ""}${parentKey}: ${err.message}`,
              err.details,
            )
          : err,
      );
    }
  } finally {
    release();
    // Closing flushes later partitions' buffered records: a record that fails there
    // (invalid_records: fail) fails the stream once every partition has ended.
    await lane.close().catch(fail);
  }
}
