import type { StreamPlan } from "../compile/plan.js";
import type { RequestExecutor } from "../http/executor.js";
import type { PageRequest, StopReason } from "../http/paginators/paginator.js";
import { isStreamed } from "../records/decoders/index.js";
import type { Row, Shaper } from "../records/shape.js";
import { readPages, streamReadOptions } from "./read-pages.js";
import { readStreamed, type StreamedReadOptions } from "./read-streamed.js";
import type { StreamRunOptions } from "./stream-options.js";
import type { StreamResult } from "./stream-result.js";
import { PageWatch, pageSizeAsked } from "./suspicions.js";

/** The ways of a pull that only some callers use. */
export interface PullHow {
  /** A streamed stream's big bodies go to a record worker (record-workers/streamed-main.ts). */
  offload?: StreamedReadOptions["offload"];
  /** A JSON lines or CSV stream whose records nothing reads: lines go here unparsed (raw-lines.ts). */
  raw?: StreamedReadOptions["raw"];
  /** A window of a stream: its pages' watch goes to the caller, who decides on the whole stream. */
  watched?: (watch: PageWatch) => void;
}

/**
 * Reads one request sequence's pages (read-pages.ts) and hands each record, shaped, to `write`
 * in page order, up to `--limit`. Used by whole streams, child partitions and sampling.
 */
export async function pull(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  firstRequest: PageRequest,
  shaper: Shaper,
  /** `json`: the row's JSON as stringifyJson writes it, when a JSON lines body had it already. */
  write: (row: Row, json?: string) => Promise<void> | undefined,
  result: StreamResult,
  parent: Row | undefined,
  how: PullHow = {},
): Promise<StopReason> {
  const { offload, raw, watched } = how;
  const limit = opts.limit;
  if (parent) result.requests.ignored.partitions = true; // "12 partitions answered 404, ignored"
  const held = opts.heldBack ?? (() => 0);
  const remaining =
    limit === null ? () => Number.POSITIVE_INFINITY : () => limit - result.records.written - held();
  const deliver = (record: unknown, json?: string): Promise<void> | undefined => {
    const row = shaper.shape(record, parent);
    // A line is the row's JSON only while shaping returned the record itself (nothing changed).
    if (row !== null) return write(row, row === record ? json : undefined);
    // Dropped by `filter`: seen, but neither valid nor invalid (record-sink.ts adds them to seen).
    result.records.filtered++;
    result.records.seen++;
    return undefined;
  };
  if (isStreamed(stream.response)) {
    const stop = await readStreamed(
      stream,
      executor,
      firstRequest,
      {
        origin: opts.origin,
        allowedOrigins: opts.allowedOrigins,
        maxPages: opts.maxPages,
        stats: result.requests,
        signal: opts.signal,
        onPage: () => result.pages++,
        remaining,
        offload,
        raw,
      },
      deliver,
    );
    return stop.code === "limit" ? { code: "limit", message: `--limit ${limit} reached` } : stop;
  }
  const pages = readPages(
    {
      stream,
      executor,
      origin: opts.origin,
      allowedOrigins: opts.allowedOrigins,
      select: (body) => shaper.select(body),
    },
    firstRequest,
    streamReadOptions(
      opts,
      result,
      limit === null ? null : { remaining, stop: { code: "limit", message: `--limit ${limit} reached` } },
    ),
  );
  // A whole stream's pages are watched for a wrong `records` or `next` path (not each partition's).
  const watch = parent === undefined ? new PageWatch(stream, pageSizeAsked(firstRequest)) : null;
  for await (const page of pages) {
    watch?.see(page.body, page.records.length);
    for (const record of page.records) {
      if (remaining() <= 0) break;
      const p = deliver(record);
      if (p) await p;
    }
  }
  // Reading ends with a stop reason unless it threw; this loop never leaves it early.
  if (!pages.stop) throw new Error("the pages of a stream ended without a stop reason");
  if (watch && watched) watched(watch);
  else if (watch) result.suspicions.push(...watch.verdict(pages.stop));
  return pages.stop;
}
