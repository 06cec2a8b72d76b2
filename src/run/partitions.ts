import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { StreamPlan } from "../compile/plan.js";
import type { RequestExecutor } from "../http/executor.js";
import type { StopReason } from "../http/paginators/paginator.js";
import { Semaphore } from "../http/semaphore.js";
import type { Row, Shaper } from "../records/shape.js";
import { cut, QUOTE_CHARS, RunError } from "../shared/errors.js";
import { parseJson, stringifyJson } from "../shared/json-text.js";
import { applyIncremental } from "./incremental.js";
import { type Lane, OrderedSink } from "./ordered-sink.js";
import { pull } from "./pull.js";
import { compileRequestTemplate } from "./request-template.js";
import type { StreamIO, StreamRunOptions } from "./stream-options.js";
import type { StreamResult } from "./stream-result.js";

type Partitions = NonNullable<StreamResult["partitions"]>;

/** A child stream: one pull per parent record, concurrently, written in parent order. */
export async function runPartitions(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  io: StreamIO,
  shaper: Shaper,
  since: string | number | null,
  accept: (row: Row) => Promise<void> | undefined,
  result: StreamResult,
): Promise<StopReason> {
  const template = compileRequestTemplate(stream, opts.baseUrl);
  const sink = new OrderedSink(accept);
  const slots = new Semaphore(Math.max(1, opts.concurrency));
  // The parent file is complete: count its records first, so progress can show done / total.
  const partitions: Partitions = { total: await countLines(io.parentRecords!), done: 0, failed: [] };
  result.partitions = partitions;
  const running: Promise<void>[] = [];
  const failure: { error: unknown } = { error: null };
  const limitReached = () => opts.limit !== null && result.records.written >= opts.limit;
  let index = 0;
  const lines = createInterface({ input: createReadStream(io.parentRecords!, "utf8"), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line) continue;
    if (failure.error || opts.signal?.aborted || limitReached()) break;
    const parent = parseJson(line) as Row;
    await sink.room(); // bounded memory behind a slow partition (ordered-sink.ts)
    const release = await slots.acquire();
    // A partition may have failed the stream while this one waited for a slot.
    if (failure.error || opts.signal?.aborted) {
      release();
      break;
    }
    const i = index++;
    const parentKey = cut(parentId(stream.parent!, io.parentKey, parent, i + 1), QUOTE_CHARS);
    // Under `skip`, a partition is written whole or not at all (ordered-sink.ts).
    // (Not with --limit: held-back records would not count toward it.)
    const lane = sink.lane(i, stream.onPartitionError === "skip" && opts.limit === null);
    const run = async () => {
      const first = applyIncremental(template(parent, parentKey), stream, since);
      // Partitions already use the concurrency; each pulls its pages in sequence.
      const opts1 = { ...opts, prefetch: 1 };
      await pull(stream, executor, opts1, first, shaper, (row) => lane.write(row), result, parent);
    };
    running.push(partition(run, release, lane, { parentKey, stream, partitions, failure, sink }));
  }
  await Promise.all(running);
  partitions.total = index;
  if (failure.error) throw failure.error;
  if (partitions.failed.length) {
    result.warnings.push(
      `${partitions.failed.length} of ${partitions.total} partitions failed and were skipped (on_partition_error: skip)`,
    );
  }
  if (limitReached()) return { code: "limit", message: `--limit ${opts.limit} reached` };
  return { code: "single_page", message: `all ${partitions.total} parent records fetched` };
}

/** Runs one partition; a failure is skipped (on_partition_error: skip) or fails the stream. */
async function partition(
  run: () => Promise<void>,
  release: () => void,
  lane: Lane,
  ctx: {
    parentKey: string;
    stream: StreamPlan;
    partitions: Partitions;
    failure: { error: unknown };
    sink: OrderedSink;
  },
): Promise<void> {
  const { parentKey, stream, partitions, failure, sink } = ctx;
  const fail = (err: unknown) => {
    failure.error ??= err;
    sink.stop();
  };
  try {
    await run();
    partitions.done++;
  } catch (err) {
    const skippable = err instanceof RunError && err.kind !== "aborted" && err.kind !== "validation";
    if (stream.onPartitionError === "skip" && skippable) {
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
          ? new RunError(err.kind, `partition for parent ${parentKey}: ${err.message}`, err.details)
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

async function countLines(file: string): Promise<number> {
  let n = 0;
  let last = 10;
  for await (const chunk of createReadStream(file)) {
    const buf = chunk as Buffer;
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
    last = buf[buf.length - 1];
  }
  return last === 10 ? n : n + 1;
}

/** `repos:id=42` (the parent's primary key, else a common id field), or `repos#3`. */
function parentId(parentName: string, key: string[] | null, parent: Row, position: number): string {
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
