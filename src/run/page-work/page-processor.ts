import type { StreamPlan, ValidationPlan } from "../../compile/plan.js";
import type { StopReason } from "../../http/paginators/paginator.js";
import { jsonKeyFunction } from "../../outputs/merge.js";
import { shapingKeepsRecords } from "../../records/decoders/index.js";
import type { RecordContext } from "../../records/field-specs.js";
import type { StreamQuality } from "../../records/quality.js";
import { compileShaper, type ShapePlan } from "../../records/shape.js";
import {
  canonicalSpans,
  escapesSurrogate,
  type PageScan,
  type ScanPaths,
  scanPage,
  scanPaths,
} from "../../shared/json-spans.js";
import { NOT_JSON } from "../../shared/json-text.js";
import type { PageHead } from "../read-pages.js";
import { type LineMaker, recordLines, type SpanSource } from "../record-workers/record-lines.js";
import type { LinesChunk, WriterHooks } from "../record-workers/streamed-types.js";
import type { Suspicion } from "../stream-result.js";
import { PageWatch, type PageWatchState } from "../suspicions.js";
import { type BytePath, byteCheckFor, checkedLines } from "./checked-lines.js";
import { PageHeads, pageRecords, type ReadPage } from "./page-heads.js";
import type { ComparedPage } from "./page-scan.js";

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
  previous: ComparedPage | null;
}

/** The lines of a scanned page that did not parse: none (the statistics stay whole). */
const UNPARSED: LinesChunk = Object.freeze({
  text: "",
  written: 0,
  keys: null,
  lengths: null,
  valid: 0,
  invalid: 0,
  filtered: 0,
  quarantined: [],
  cursor: undefined,
  unparsed: true,
});

/**
 * One stream's page processing, page by page in order: `head` reads what the paginator and its
 * guards need of a page (PageHeads: a scan of its bytes, or a parse); `lines` (called once per
 * head, in the same order) parses a scanned page, then shapes, validates and serialises its
 * records. Statistics (StreamQuality), the page watch (suspicions.ts) and the cursor's maximum
 * are kept here, so pages must come in order, each once. Runs on the main thread or in a worker
 * thread (pages-kind.ts), with the same results.
 */
export class PageProcessor {
  readonly heads: PageHeads;
  private readonly select: (body: unknown) => unknown[];
  private readonly watch: PageWatch;
  /** Shaper, statistics, key and cursor field: what recordLines needs (made once). */
  private readonly maker: LineMaker;
  /** Pages whose lines are not made yet (a page or two). */
  private readonly waiting: ReadPage[] = [];
  /**
   * The records path as member names, while pages may hold records to copy as they came
   * (json-spans.ts); null once a page had records and none was canonical JSON (a pretty-printed
   * API: looking again on every page would only cost), or its bytes were not UTF-8.
   */
  private spanPaths: ScanPaths | null;
  /** A scanned page did not parse: the stream fails there (no page after it is processed). */
  private unparsed = false;
  /** Records checked from their bytes where the stream allows it (checked-lines.ts), else null. */
  private readonly bytePath: BytePath | null;
  /** Whether shaping makes records of its own (fields, flatten…), not the page's records as they are. */
  private readonly shapes: boolean;

  /**
   * `quality`: the stream's statistics, fed here page by page (in a worker: handed over). `see`:
   * given each record to write before its line is made (RecordSink.writerHooks; on this thread only).
   */
  constructor(plan: PagePlan, quality: StreamQuality, hooks: WriterHooks | null = null) {
    const shaper = compileShaper(plan.stream, plan.context);
    this.select = (body) => shaper.select(body);
    this.watch = new PageWatch(plan.stream, plan.asked);
    const pk = plan.stream.primaryKey;
    this.maker = {
      shaper,
      quality,
      skip: plan.validation.invalidRecords === "skip",
      keyOf: pk?.length ? jsonKeyFunction(pk) : null,
      cursorField: plan.cursorField,
      see: hooks?.see ?? null,
      seeMembers: hooks?.seeMembers ?? null,
      refusesInvalid: hooks?.refusesInvalid ?? null,
    };
    this.bytePath = byteCheckFor(plan.stream, this.maker);
    // The scan reads the records strictly only for the byte check: other streams pay nothing for it.
    this.heads = new PageHeads(plan.stream.records, plan.paths, this.select, this.bytePath !== null);
    this.shapes = !shapingKeepsRecords(plan.stream);
    const recordKeys = this.heads.recordKeys;
    this.spanPaths = recordKeys ? scanPaths(recordKeys, []) : null;
  }

  /**
   * The page's head; null when the body is not JSON (the caller says so, with the body masked).
   * A scanned page's next request leaves before it is parsed (when its lines are made).
   */
  head(bytes: Uint8Array): PageHead | null {
    const page = this.heads.read(bytes);
    if (!page) return null;
    this.take(page);
    return page.head;
  }

  /** Takes a page whose head was read (here, or on the main thread while this runs in a worker). */
  take(page: ReadPage): void {
    if (page.parsed) this.watch.see(page.parsed.body, page.parsed.records.length);
    this.waiting.push(page);
  }

  /** The oldest page's records, as the stream's record sink takes them (RecordSink.acceptLines). */
  lines(): LinesChunk {
    const page = this.waiting.shift();
    if (!page) throw new Error("page lines asked for before the page's head");
    if (this.unparsed) return UNPARSED; // the stream fails at that page: no statistics after it
    if (this.bytePath && page.scan && !page.parsed) {
      const checked = checkedLines(this.maker, this.bytePath, page.bytes, page.scan);
      if (checked) {
        this.watch.see(checked.body, page.head.count);
        return checked.chunk;
      }
    }
    const read = pageRecords(page, this.select);
    if (read === NOT_JSON) {
      this.unparsed = true;
      return UNPARSED; // the caller says what came instead of JSON, masked
    }
    if (!page.parsed) this.watch.see(read.body, read.records.length);
    let scan = page.scan;
    if (!scan && this.spanPaths && read.records.length) scan = scanPage(page.bytes, this.spanPaths);
    // A record's JSON can escape a lone surrogate only where the page's bytes hold `\ud`, unless
    // shaping adds text of its own (a field's `value` or `default`).
    const suspect = this.maker.see ? this.shapes || escapesSurrogate(page.bytes) : true;
    return recordLines(this.maker, read.records, undefined, this.source(page.bytes, scan), suspect);
  }

  /** Where the page's canonical records lie in its bytes, to copy them as they came. */
  private source(bytes: Uint8Array, scan: PageScan | null): SpanSource | undefined {
    if (!scan?.spans.length) return undefined;
    const canonical = canonicalSpans(bytes, scan);
    if (canonical) return { bytes, spans: canonical };
    this.spanPaths = null;
    return undefined;
  }

  /**
   * What carries over from page to page besides the statistics (the page watch, the previous
   * page for the guards), to continue in another thread; only between pages (every page's lines
   * made).
   */
  handOver(): ProcessorState {
    if (this.waiting.length) throw new Error("page processing handed over with a page half done");
    return { watch: this.watch.state(), previous: this.heads.previous };
  }

  /** Continues from another processor's `handOver()` (before the first page here). */
  resume(s: ProcessorState): void {
    this.watch.resume(s.watch);
    this.heads.previous = s.previous;
  }

  /** Once the sequence stopped: the page watch's suspicions. */
  end(stop: StopReason | null): Suspicion[] {
    return this.watch.verdict(stop);
  }
}
