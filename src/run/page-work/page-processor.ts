import type { StreamPlan, ValidationPlan } from "../../compile/plan.js";
import { recordEnds } from "../../http/paginators/guards.js";
import type { StopReason } from "../../http/paginators/paginator.js";
import { compileJsonPath } from "../../lang/jsonpath.js";
import { jsonKeyFunction } from "../../outputs/merge.js";
import type { RecordContext } from "../../records/field-specs.js";
import type { StreamQuality } from "../../records/quality.js";
import { compileShaper, type ShapePlan, type Shaper } from "../../records/shape.js";
import { RunError } from "../../shared/errors.js";
import { canonicalSpans, type PageScan, scanPage } from "../../shared/json-spans.js";
import { NOT_JSON, parseJsonBytes } from "../../shared/json-text.js";
import type { PageHead } from "../read-pages.js";
import { type LineMaker, recordLines, type SpanSource } from "../record-workers/record-lines.js";
import type { LinesChunk } from "../record-workers/streamed-types.js";
import type { Suspicion } from "../stream-result.js";
import { PageWatch, type PageWatchState } from "../suspicions.js";
import { type ComparedPage, type ScanKeys, sameRecordTexts, scanHead } from "./page-scan.js";

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

/** A page taken whose lines are not made yet: parsed (records), or only scanned. */
interface WaitingPage {
  bytes: Uint8Array;
  records: unknown[] | null;
  scan: PageScan | null;
  count: number;
}

/**
 * One stream's page processing, page by page in order: `head` parses a page's body and answers
 * what the paginator and its guards need; `lines` (called once per head, in the same order) shapes,
 * validates and serialises that page's records. Statistics (StreamQuality), the page watch
 * (suspicions.ts) and the cursor's maximum are kept here, so pages must come in order, each once.
 * Runs on the main thread or in a worker thread (page-worker.ts), with the same results.
 */
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

export class PageProcessor {
  private readonly shaper: Shaper;
  private readonly watch: PageWatch;
  /** Shaper, statistics, key and cursor field: what recordLines needs (made once). */
  private readonly maker: LineMaker;
  private readonly paths: { path: string; compiled: ReturnType<typeof compileJsonPath> }[];
  /** Pages whose lines are not made yet (a page or two). */
  private readonly waiting: WaitingPage[] = [];
  /** The previous page, for the guards' comparison of consecutive pages. */
  private previous: ComparedPage | null = null;
  /** The records path and the paginator's paths as member names, when all are: pages are scanned first. */
  private readonly scanKeys: ScanKeys | null;
  /**
   * The records path as member names, while parsed pages may hold records to copy as they came
   * (json-spans.ts); null once such a page had records and none was canonical JSON (a
   * pretty-printed API: looking again on every page would only cost), or its bytes were not UTF-8.
   */
  private spanKeys: readonly string[] | null;
  /** A scanned page did not parse: the stream fails there (no page after it is processed). */
  private unparsed = false;

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
    const paths = this.paths.map(({ path, compiled }) => ({ path, keys: compiled.keys }));
    this.scanKeys =
      this.spanKeys && paths.every((p) => p.keys !== null)
        ? { records: this.spanKeys, paths: paths as ScanKeys["paths"] }
        : null;
  }

  /**
   * The page's head; null when the body is not JSON (the caller says so, with the body masked).
   * A page whose paths are member names is scanned, not parsed (page-scan.ts): the next request
   * leaves sooner, and the page is parsed when its lines are made.
   */
  head(bytes: Uint8Array): PageHead | null {
    const scanned = this.scanned(bytes);
    if (scanned) {
      this.add(bytes, scanned.head.count, scanned.scan);
      return scanned.head;
    }
    const parsed = this.parsed(bytes);
    if (!parsed) return null;
    const { body, records } = parsed;
    this.watch.see(body, records.length);
    this.waiting.push({ bytes, records, scan: null, count: records.length });
    return parsed.head;
  }

  /** Whether pages are scanned (the records path and the paginator's paths are member names). */
  get scans(): boolean {
    return this.scanKeys !== null;
  }

  /** The page's head from a scan of its bytes, or null (page-scan.ts); the page is not taken. */
  scanned(bytes: Uint8Array): { head: PageHead; scan: PageScan } | null {
    const scanned = this.scanKeys && bytes.length ? scanHead(bytes, this.scanKeys) : null;
    if (!scanned) return null;
    const { count, values, ends, scan } = scanned;
    const page = { count, ends, records: null, bytes, spans: scan.spans };
    return { head: { count, values, compared: this.compare(page) }, scan };
  }

  /** The page's head from its parse, with its body and records; null when it is not JSON; not taken. */
  parsed(bytes: Uint8Array): { head: PageHead; body: unknown; records: unknown[] } | null {
    const body = parseJsonBytes(bytes);
    if (body === NOT_JSON) return null;
    const records = this.shaper.select(body);
    const values = new Map<string, unknown>();
    for (const { path, compiled } of this.paths) values.set(path, compiled.first(body));
    const page = { count: records.length, ends: recordEnds(records), records, bytes: null, spans: null };
    return { head: { count: records.length, values, compared: this.compare(page) }, body, records };
  }

  /**
   * Takes a page whose head was read (here, or on the main thread while this processor runs in a
   * worker): parsed when its lines are made; `scan`, when known, says where its records lie.
   */
  add(bytes: Uint8Array, count: number, scan: PageScan | null): void {
    this.waiting.push({ bytes, records: null, scan, count });
  }

  /** The loop guard's comparison with the previous page (guards.ts), made here where the records are. */
  private compare(page: ComparedPage): PageHead["compared"] {
    const prev = this.previous;
    const { ends, count } = page;
    const samePrevious =
      prev !== null &&
      ends !== "" &&
      prev.ends === ends &&
      prev.count === count &&
      sameRecordTexts(page, prev);
    this.previous = count ? page : null;
    return { ends, samePrevious };
  }

  /** The oldest page's records, as the stream's record sink takes them (RecordSink.acceptLines). */
  lines(): LinesChunk {
    const page = this.waiting.shift();
    if (!page) throw new Error("page lines asked for before the page's head");
    if (this.unparsed) return UNPARSED; // the stream fails at that page: no statistics after it
    let { records, scan } = page;
    if (!records) {
      // A page taken by `add`: parsed now, after the next request left.
      const body = parseJsonBytes(page.bytes);
      if (body === NOT_JSON) {
        this.unparsed = true;
        return UNPARSED; // the caller says what came instead of JSON, masked
      }
      records = this.shaper.select(body);
      if (records.length !== page.count)
        throw new RunError(
          "internal",
          `a page's scan found ${page.count} records, its parse ${records.length}`,
        );
      this.watch.see(body, records.length);
    }
    if (!scan && this.spanKeys && records.length) scan = scanPage(page.bytes, this.spanKeys, []);
    return recordLines(this.maker, records, undefined, this.source(page.bytes, scan));
  }

  /** Where the page's canonical records lie in its bytes, to copy them as they came. */
  private source(bytes: Uint8Array, scan: PageScan | null): SpanSource | undefined {
    if (!scan?.spans.length) return undefined;
    const canonical = canonicalSpans(bytes, scan);
    if (canonical) return { bytes, spans: canonical };
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
