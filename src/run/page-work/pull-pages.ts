import type { StreamPlan } from "../../compile/plan.js";
import type { RequestExecutor } from "../../http/executor.js";
import type { PageRequest, StopReason } from "../../http/paginators/paginator.js";
import { pathsRead } from "../../http/paginators/paginators.js";
import { parseBody } from "../../http/response-rules.js";
import { isStreamed } from "../../records/decoders/index.js";
import { RunError } from "../../shared/errors.js";
import { type Page, type PageHead, readPages, streamReadOptions, streamRules } from "../read-pages.js";
import type { RecordSink } from "../record-sink.js";
import type { LinesChunk } from "../record-workers/streamed-types.js";
import { recordContext, type StreamRunOptions } from "../stream-options.js";
import { pageSizeAsked } from "../suspicions.js";
import type { PagePlan } from "./page-processor.js";
import { localPageWork, type PageWork, threadedPageWork } from "./page-work.js";

/**
 * Streams whose pages can be processed away from the records' objects: one request sequence of
 * JSON pages, written as JSON lines (the jsonl output; DuckDB and Parquet stage them) or as rows
 * the writer makes of each record it is shown (csv, sqlite: RecordSink.writerHooks), without
 * `--limit` (it stops mid-page), `invalid_records: fail` (it stops at the record), records kept for
 * child streams, or `on_response` rules that read the body (they parse it here). The others go
 * through pull.ts, record by record.
 */
export function pageWorkFits(stream: StreamPlan, opts: StreamRunOptions, sink: RecordSink): boolean {
  return (
    process.env.PIPELINES_PAGE_WORK !== "off" &&
    opts.limit === null &&
    !isStreamed(stream.response) &&
    streamRules(stream).every((r) => r.match === null) &&
    (sink.takesLines() || sink.writerHooks() !== null)
  );
}

/** Streams whose pages were processed for a writer that sees each record, in this process (tests). */
let seenPulls = 0;
export const rowsSeenPulls = (): number => seenPulls;

/** What page processing is given: the stream's shaping, schema and policies, no request or secret. */
export function pagePlan(stream: StreamPlan, opts: StreamRunOptions, firstRequest: PageRequest): PagePlan {
  const { name, records, fields, exclude, flatten, filter, schema, primaryKey } = stream;
  return {
    stream: { name, records, fields, exclude, flatten, includeParent: null, filter, schema, primaryKey },
    context: recordContext(stream, opts),
    validation: opts.validation,
    cursorField: stream.incremental?.cursorField ?? null,
    paths: pathsRead(stream.paginator),
    asked: pageSizeAsked(firstRequest),
  };
}

/**
 * One request sequence of a whole stream, its pages processed by `work` (parsed, shaped, validated
 * and serialised there) and written by the sink in page order: the same output, counts,
 * quarantine, statistics and suspicions as pull.ts. The paginator gets each page's head as soon as
 * it is parsed, so the next request does not wait for validation and serialisation.
 */
export function pullPages(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  firstRequest: PageRequest,
  sink: RecordSink,
): Promise<StopReason> {
  const plan = pagePlan(stream, opts, firstRequest);
  // A writer that sees each record (DuckDB, Parquet) has its lines made on this thread.
  const hooks = sink.writerHooks();
  if (hooks) seenPulls++;
  const work =
    (opts.pageWorkers ?? 1) > 1 && !hooks
      ? threadedPageWork(plan, sink.quality, (opts.pageWorkers ?? 1) - 1, opts.signal)
      : localPageWork(plan, sink.quality, hooks);
  return pullWith(stream, executor, opts, firstRequest, sink, work);
}

async function pullWith(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  firstRequest: PageRequest,
  sink: RecordSink,
  work: PageWork,
): Promise<StopReason> {
  const result = sink.result;
  const pages = readPages(
    {
      stream,
      executor,
      origin: opts.origin,
      allowedOrigins: opts.allowedOrigins,
      select: () => [],
      process: (page) => {
        const head = work.head(page.response.body);
        const known = (h: PageHead | null): PageHead => {
          if (h) return h;
          parseBody(page.response, page.request, executor); // says what came instead of JSON, masked
          throw new Error("a page body that is not JSON was parsed");
        };
        return head instanceof Promise ? head.then(known) : known(head);
      },
      confirm: (page) => parseBody(page.response, page.request, executor), // throws when not JSON
    },
    firstRequest,
    streamReadOptions(opts, result),
  );
  const writer = new PageWriter(sink, executor);
  try {
    try {
      for await (const page of pages) {
        // An ignored answer is an empty last page (pull.ts: no body, no records).
        if (page.response.ignored) await work.head(new Uint8Array(0));
        const lines = work.lines();
        if (lines instanceof Promise) lines.catch(() => {}); // awaited in turn, below
        await writer.add(lines, page, work.depth);
      }
      await writer.drain();
    } catch (err) {
      // As pull.ts, the pages before the failure are written and counted, with their statistics.
      const first = await writer.drainAfter(err);
      try {
        await work.settle();
      } catch {
        // the first error is the one to report
      }
      throw first;
    }
    // Reading ends with a stop reason unless it threw; this loop never leaves it early.
    if (!pages.stop) throw new Error("the pages of a stream ended without a stop reason");
    result.suspicions.push(...(await work.end(pages.stop)));
    return pages.stop;
  } finally {
    await work.close();
  }
}

/** The lines of the pages taken, written in page order, at most `depth` of them waiting. */
export class PageWriter {
  private readonly pending: { lines: Promise<LinesChunk> | LinesChunk; page: Page }[] = [];
  /** A page's lines could not be written (or the page did not parse): no later page is written. */
  private failed = false;

  constructor(
    private readonly sink: RecordSink,
    private readonly executor: RequestExecutor,
  ) {}

  async add(lines: Promise<LinesChunk> | LinesChunk, page: Page, depth: number): Promise<void> {
    this.pending.push({ lines, page });
    while (this.pending.length > depth) await this.write();
  }

  async drain(): Promise<void> {
    while (this.pending.length) await this.write();
  }

  /**
   * Reading failed with `err`: the pages before it are written (none after a page that failed
   * writing; the processor makes none after a page that did not parse). A page waiting here came
   * before what failed reading: its own error comes first, in page order as the record path tells
   * them ("not JSON" or nested too deep, then the next page's 404) — unless the run was
   * interrupted, which is what it says. The error to report.
   */
  async drainAfter(err: unknown): Promise<unknown> {
    if (this.failed) return err;
    try {
      await this.drain();
    } catch (earlier) {
      if (!(err instanceof RunError && err.kind === "aborted")) return earlier;
    }
    return err;
  }

  private async write(): Promise<void> {
    const { lines, page } = this.pending.shift()!;
    try {
      const chunk = await lines;
      if (chunk.unparsed) {
        // A scanned page that did not parse: said as any body that is not JSON (masked).
        parseBody(page.response, page.request, this.executor);
        throw new Error("a page body that did not parse was parsed");
      }
      await this.sink.acceptLines(chunk);
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }
}
