import type { StreamPlan } from "../../compile/plan.js";
import type { RequestExecutor } from "../../http/executor.js";
import type { PageRequest, StopReason } from "../../http/paginators/paginator.js";
import { pathsRead } from "../../http/paginators/paginators.js";
import { isStreamed } from "../../records/decoders/index.js";
import type { StreamQuality } from "../../records/quality.js";
import type { PageHead } from "../read-pages.js";
import { parseBody, readPages, streamRules } from "../read-pages.js";
import type { RecordSink } from "../record-sink.js";
import { recordContext, type StreamIO, type StreamRunOptions } from "../stream-options.js";
import { pageSizeAsked } from "../suspicions.js";
import { type PageLines, type PagePlan, PageProcessor, type PagesEnd } from "./page-processor.js";

/**
 * Where a stream's pages are processed: a PageProcessor on this thread, or one in a worker thread
 * (worker-pages.ts). Calls come in page order: `head` then, later, `lines` for each page.
 */
export interface PageWork {
  head(bytes: Uint8Array): Promise<PageHead | null> | PageHead | null;
  lines(): Promise<PageLines> | PageLines;
  end(stop: StopReason | null): Promise<PagesEnd> | PagesEnd;
  close(): Promise<void> | void;
  /** Pages whose lines may be on their way while an earlier one is written (0: made when written). */
  readonly depth: number;
}

/**
 * Streams whose pages can be processed away from the records' objects: one request sequence of
 * JSON pages, written as JSON lines, without `--limit` (it stops mid-page), `invalid_records: fail`
 * (it stops at the record), records kept for child streams, or `on_response` rules that read the
 * body (they parse it here). The others go through pull.ts, record by record.
 */
export function pageWorkFits(stream: StreamPlan, opts: StreamRunOptions, io: StreamIO): boolean {
  return (
    process.env.PIPELINES_PAGE_WORK !== "off" &&
    stream.output.format === "jsonl" &&
    stream.write &&
    io.keepRecordsAt === null &&
    opts.limit === null &&
    opts.validation.invalidRecords !== "fail" &&
    !isStreamed(stream.response) &&
    streamRules(stream).every((r) => r.match === null)
  );
}

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

/** Page processing on this thread, sharing the stream's statistics. */
export function localPageWork(plan: PagePlan, quality: StreamQuality): PageWork {
  const p = new PageProcessor(plan, quality);
  return { head: (b) => p.head(b), lines: () => p.lines(), end: (s) => p.end(s), close: () => {}, depth: 0 };
}

/**
 * One request sequence of a whole stream, its pages processed by `work` (parsed, shaped, validated
 * and serialised there) and written by the sink in page order: the same output, counts,
 * quarantine, statistics and suspicions as pull.ts. The paginator gets each page's head as soon as
 * it is parsed, so the next request does not wait for validation and serialisation.
 */
export async function pullPages(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  firstRequest: PageRequest,
  sink: RecordSink,
  quality: StreamQuality,
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
    },
    firstRequest,
    {
      prefetch: opts.prefetch,
      maxPages: opts.maxPages,
      stats: result.requests,
      signal: opts.signal,
      onPage: () => result.pages++,
      limit: null,
    },
  );
  const pending: (Promise<PageLines> | PageLines)[] = [];
  const write = async (): Promise<void> => sink.acceptPage(await pending.shift()!);
  try {
    for await (const page of pages) {
      // An ignored answer is an empty last page (pull.ts: no body, no records).
      if (page.response.ignored) await work.head(new Uint8Array(0));
      const lines = work.lines();
      if (lines instanceof Promise) lines.catch(() => {}); // awaited in turn, below
      pending.push(lines);
      while (pending.length > work.depth) await write();
    }
    while (pending.length) await write();
    // Reading ends with a stop reason unless it threw; this loop never leaves it early.
    if (!pages.stop) throw new Error("the pages of a stream ended without a stop reason");
    const end = await work.end(pages.stop);
    if (end.quality) quality.adopt(end.quality);
    result.suspicions.push(...end.suspicions);
    return pages.stop;
  } finally {
    await work.close();
  }
}
