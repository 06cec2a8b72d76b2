import type { StopReason } from "../../http/paginators/paginator.js";
import type { QualityState, StreamQuality } from "../../records/quality.js";
import type { PageScan } from "../../shared/json-spans.js";
import type { PageHead } from "../read-pages.js";
import { aliveRecordWorkers, RecordWorkerPool } from "../record-workers/pool.js";
import type { LinesChunk, WriterHooks } from "../record-workers/streamed-types.js";
import type { Suspicion } from "../stream-result.js";
import type { PageHeads } from "./page-heads.js";
import { type PagePlan, PageProcessor, type ProcessorState } from "./page-processor.js";
import type { PagesInit, PagesReply, PagesUnit } from "./pages-kind.js";

/**
 * Where a stream's pages are processed: a PageProcessor on this thread, or one in a worker thread
 * (pages-kind.ts). Calls come in page order: `head` then, later, `lines` for each page.
 */
export interface PageWork {
  head(bytes: Uint8Array): Promise<PageHead | null> | PageHead | null;
  lines(): Promise<LinesChunk> | LinesChunk;
  /** The page watch's suspicions once the sequence stopped (the statistics are back by then). */
  end(stop: StopReason | null): Promise<Suspicion[]> | Suspicion[];
  /** The sequence failed: the statistics of the pages written back with the stream's. */
  settle(): Promise<void> | void;
  close(): Promise<void> | void;
  /** Pages whose lines may be on their way while an earlier one is written (0: made when written). */
  readonly depth: number;
}

/**
 * Page processing on this thread, sharing the stream's statistics; `see` is given each record to
 * write before its line is made (RecordSink.writerHooks).
 */
export function localPageWork(
  plan: PagePlan,
  quality: StreamQuality,
  hooks: WriterHooks | null = null,
): PageWork {
  const p = new PageProcessor(plan, quality, hooks);
  return {
    head: (b) => p.head(b),
    lines: () => p.lines(),
    end: (s) => p.end(s),
    settle: () => {},
    close: () => {},
    depth: 0,
  };
}

/** Pages whose lines may be on their way from the worker while an earlier one is written. */
const WORKER_DEPTH = 2;

/**
 * Page processing in a worker thread (one per stream: the stream's statistics live there for the
 * sequence, handed over and back; record-workers/pool.ts). Each page's bytes are copied into a
 * buffer of their own and transferred (the guards keep the response's body). With `heads` (the
 * stream's paths are member names), each page's head is read on this thread, by a scan of its
 * bytes (page-scan.ts; a parse when the scan is unsure), and the page goes to the worker for its
 * lines once taken: the next request leaves before the worker parses the page. Without, the
 * worker parses the page and its head comes back, its lines after.
 */
function workerPageWork(
  plan: PagePlan,
  quality: StreamQuality,
  signal: AbortSignal | undefined,
  resume: ProcessorState | null,
  heads: PageHeads | null,
): PageWork {
  const pool = new RecordWorkerPool(1, { maxInFlight: 2 * (WORKER_DEPTH + 2), signal });
  const session = pool.open<PagesUnit, PagesReply, QualityState>("pages", {
    plan,
    quality: quality.exportState(),
    resume,
  } satisfies PagesInit);
  const handBack = async () => {
    const [state] = await session.end();
    quality.importState(state);
  };
  const own = (bytes: Uint8Array) => {
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    return copy;
  };
  /** Pages whose heads were read here, waiting to be taken (then sent for their lines), in order. */
  const read: { page: Uint8Array; count: number; scan: PageScan | null }[] = [];
  return {
    depth: WORKER_DEPTH,
    head(bytes) {
      if (!heads) {
        const page = own(bytes);
        return session.submit({ bytes: page }, [page.buffer]) as Promise<PageHead | null>;
      }
      // The head read here (a scan, else a parse), the page's lines made in the worker.
      const page = heads.read(bytes);
      if (!page) return null;
      read.push({ page: own(bytes), count: page.head.count, scan: page.scan });
      return page.head;
    },
    // Asked for once the page is taken (a page whose head failed the stream is never processed).
    lines() {
      const unit = read.shift();
      if (!unit) return session.submit({ lines: true }) as Promise<LinesChunk>;
      return session.submit(unit, [unit.page.buffer as ArrayBuffer]) as Promise<LinesChunk>;
    },
    async end(stop) {
      const suspicions = (await session.submit({ end: stop })) as Suspicion[];
      await handBack();
      return suspicions;
    },
    settle: handBack,
    close: () => pool.terminate(),
  };
}

/**
 * A worker takes over once this thread has processed this many pages and bytes of bodies: a
 * short or small sequence never starts a thread (starting one costs more than a few pages).
 * PIPELINES_PAGE_WORKER_AFTER (bytes) moves the threshold (tests).
 */
const LOCAL_PAGES = 2;
const LOCAL_BYTES = 1024 * 1024;

function localBytes(): number {
  const env = Number(process.env.PIPELINES_PAGE_WORKER_AFTER);
  return Number.isFinite(env) && env >= 0 ? env : LOCAL_BYTES;
}

/**
 * `source.workers` > 1: the first pages on this thread, the rest in a worker thread, which
 * continues from where this thread left off (statistics, page watch, the guards' previous page).
 * Bodies count as bytes, so pages of a few records stay here. Streams running together share
 * `maxThreads` (`source.workers` − 1): while every one is taken, this stream's pages stay here.
 */
export function threadedPageWork(
  plan: PagePlan,
  quality: StreamQuality,
  maxThreads: number,
  signal?: AbortSignal,
): PageWork {
  const local = new PageProcessor(plan, quality);
  let remote: PageWork | null = null;
  let pages = 0;
  let bytes = 0;
  const after = localBytes();
  return {
    get depth() {
      return remote ? WORKER_DEPTH : 0;
    },
    head(body) {
      if (!remote && pages >= LOCAL_PAGES && bytes >= after && aliveRecordWorkers() < maxThreads) {
        // Heads read here (a scan): the guards' previous page stays here too, not copied over.
        const heads = local.heads.scans ? local.heads : null;
        const state = local.handOver();
        remote = workerPageWork(plan, quality, signal, heads ? { ...state, previous: null } : state, heads);
      }
      if (remote) return remote.head(body);
      pages++;
      bytes += body.length;
      return local.head(body);
    },
    lines: () => (remote ? remote.lines() : local.lines()),
    end: (stop: StopReason | null) => (remote ? remote.end(stop) : local.end(stop)),
    settle: () => remote?.settle(),
    close: () => remote?.close(),
  };
}
