import type { StreamPlan, ValidationPlan } from "../../compile/plan.js";
import { recordEnds, sameRecordList } from "../../http/paginators/guards.js";
import type { StopReason } from "../../http/paginators/paginator.js";
import { compileJsonPath } from "../../lang/jsonpath.js";
import { jsonKeyFunction } from "../../outputs/merge.js";
import type { RecordContext } from "../../records/field-specs.js";
import type { StreamQuality } from "../../records/quality.js";
import { compileShaper, type ShapePlan, type Shaper } from "../../records/shape.js";
import { recordSpans } from "../../shared/json-spans.js";
import { NOT_JSON, parseJsonBytes } from "../../shared/json-text.js";
import type { PageHead } from "../read-pages.js";
import { type LineMaker, recordLines, type SpanSource } from "../record-workers/record-lines.js";
import type { LinesChunk } from "../record-workers/streamed-types.js";
import type { Suspicion } from "../stream-result.js";
import { PageWatch, type PageWatchState } from "../suspicions.js";

/**
 * What processing a stream's pages needs, and nothing more: plain data that may go to a worker
 * thread. No request, headers, credentials or redactor: quarantine lines are masked on the main
 * thread (record-sink.ts), and bodies that are not JSON are described there too.
 */
export interface PagePlan {
  stream: ShapePlan & Pick<StreamPlan, "schema" | "primaryKey">;
  context: RecordContext;
  validation: ValidationPlan;
  cursorField: string | null;
  /** The JSONPaths the paginator reads (pathsRead). */
  paths: string[];
  /** The page size the first request asks for (suspicions.ts pageSizeAsked). */
  asked: { param: string; size: number } | null;
}

/** PageProcessor.handOver(). */
export interface ProcessorState {
  watch: PageWatchState;
  previous: { records: unknown[]; ends: string } | null;
}

/**
 * One stream's page processing, page by page in order: `head` parses a page's body and answers
 * what the paginator and its guards need; `lines` (called once per head, in the same order) shapes,
 * validates and serialises that page's records. Statistics (StreamQuality), the page watch
 * (suspicions.ts) and the cursor's maximum are kept here, so pages must come in order, each once.
 * Runs on the main thread or in a worker thread (page-worker.ts), with the same results.
 */
export class PageProcessor {
  private readonly shaper: Shaper;
  private readonly watch: PageWatch;
  /** Shaper, statistics, key and cursor field: what recordLines needs (made once). */
  private readonly maker: LineMaker;
  private readonly paths: { path: string; compiled: ReturnType<typeof compileJsonPath> }[];
  /** Selected records of pages whose lines are not made yet (a page or two), with their bytes. */
  private readonly waiting: { records: unknown[]; bytes: Uint8Array }[] = [];
  /**
   * The records path as member names, while pages may hold records to copy as they came
   * (json-spans.ts); null once a page had records and none of them was canonical JSON (a
   * pretty-printed API: looking again on every page would only cost).
   */
  private spanKeys: readonly string[] | null;
  /** The previous page's records and ends, for the guards' comparison of consecutive pages. */
  private previous: { records: unknown[]; ends: string } | null = null;

  /** `quality`: the stream's statistics, fed here page by page (in a worker: handed over). */
  constructor(plan: PagePlan, quality: StreamQuality) {
    this.shaper = compileShaper(plan.stream, plan.context);
    this.watch = new PageWatch(plan.stream, plan.asked);
    const pk = plan.stream.primaryKey;
    this.maker = {
      shaper: this.shaper,
      quality,
      skip: plan.validation.invalidRecords === "skip",
      keyOf: pk?.length ? jsonKeyFunction(pk) : null,
      cursorField: plan.cursorField,
    };
    this.paths = plan.paths.map((path) => ({ path, compiled: compileJsonPath(path) }));
    this.spanKeys = compileJsonPath(plan.stream.records).keys;
  }

  /** The page's head; null when the body is not JSON (the caller says so, with the body masked). */
  head(bytes: Uint8Array): PageHead | null {
    const body = parseJsonBytes(bytes);
    if (body === NOT_JSON) return null;
    const records = this.shaper.select(body);
    const values = new Map<string, unknown>();
    for (const { path, compiled } of this.paths) values.set(path, compiled.first(body));
    this.watch.see(body, records.length);
    this.waiting.push({ records, bytes });
    const count = records.length;
    // The loop guard's comparison (guards.ts), made here where the records are.
    const ends = recordEnds(records);
    const prev = this.previous;
    const samePrevious =
      prev !== null &&
      ends !== "" &&
      prev.ends === ends &&
      prev.records.length === count &&
      sameRecordList(records, prev.records);
    this.previous = count ? { records, ends } : null;
    return { count, values, compared: { ends, samePrevious } };
  }

  /** The oldest page's records, as the stream's record sink takes them (RecordSink.acceptLines). */
  lines(): LinesChunk {
    const page = this.waiting.shift();
    if (!page) throw new Error("page lines asked for before the page's head");
    // Looked for here, not in `head`: the next page's request leaves before this page is scanned.
    return recordLines(this.maker, page.records, undefined, this.source(page.bytes, page.records.length));
  }

  /** Where the page's records lie in its bytes, when some can be copied as they came. */
  private source(bytes: Uint8Array, count: number): SpanSource | undefined {
    if (!this.spanKeys || count === 0) return undefined;
    const spans = recordSpans(bytes, this.spanKeys);
    if (!spans || spans.length !== 2 * count) return undefined;
    for (let i = 0; i < spans.length; i += 2) if (spans[i] >= 0) return { bytes, spans };
    this.spanKeys = null;
    return undefined;
  }

  /**
   * What carries over from page to page besides the statistics (the page watch, the previous
   * page for the guards), to continue in another thread; only between pages (every page's lines
   * made).
   */
  handOver(): ProcessorState {
    if (this.waiting.length) throw new Error("page processing handed over with a page half done");
    return { watch: this.watch.state(), previous: this.previous };
  }

  /** Continues from another processor's `handOver()` (before the first page here). */
  resume(s: ProcessorState): void {
    this.watch.resume(s.watch);
    this.previous = s.previous;
  }

  /** Once the sequence stopped: the page watch's suspicions. */
  end(stop: StopReason | null): Suspicion[] {
    return this.watch.verdict(stop);
  }
}
