import type { StopReason } from "../../http/paginators/paginator.js";
import { type QualityState, StreamQuality } from "../../records/quality.js";
import type { PageScan } from "../../shared/json-spans.js";
import type { PageHead } from "../read-pages.js";
import type { SessionKind } from "../record-workers/protocol.js";
import type { LinesChunk } from "../record-workers/streamed-types.js";
import type { Suspicion } from "../stream-result.js";
import { readElsewhere } from "./page-heads.js";
import { type PagePlan, PageProcessor, type ProcessorState } from "./page-processor.js";

/** A page-processing session's init: the stream's page plan and its statistics so far. */
export interface PagesInit {
  plan: PagePlan;
  quality: QualityState;
  /** The main thread processed the first pages: where it left off. */
  resume: ProcessorState | null;
}

/**
 * A unit: a page's body (its head comes back), the lines of the oldest page, a page whose head the
 * main thread read (its lines come back), or the end.
 */
export type PagesUnit =
  | { bytes: Uint8Array }
  | { lines: true }
  | { page: Uint8Array; count: number; scan: PageScan | null }
  | { end: StopReason | null };
export type PagesReply = PageHead | null | LinesChunk | Suspicion[];

interface PagesState {
  processor: PageProcessor;
  quality: StreamQuality;
}

/**
 * The `pages` kind of record worker (src/run/record-workers/worker.ts): a stream's PageProcessor
 * in the worker thread, its pages in order; the statistics go back when the session ends.
 */
export const pagesKind: SessionKind<PagesInit, PagesState, PagesUnit, PagesReply, QualityState> = {
  open(init) {
    const quality = new StreamQuality(init.plan.stream, init.plan.validation);
    quality.importState(init.quality);
    const processor = new PageProcessor(init.plan, quality);
    if (init.resume) processor.resume(init.resume);
    return { processor, quality };
  },
  unit(state, unit) {
    if ("bytes" in unit) return { result: state.processor.head(unit.bytes) };
    if ("lines" in unit || "page" in unit) {
      if ("page" in unit) state.processor.take(readElsewhere(unit.page, unit.count, unit.scan));
      const result = state.processor.lines();
      // The lines as bytes of their own (record-lines.ts ByteLines): moved, not copied.
      const text = result.text;
      return { result, transfer: typeof text === "string" ? undefined : [text.buffer as ArrayBuffer] };
    }
    return { result: state.processor.end(unit.end) };
  },
  end: (state) => state.quality.exportState(),
};
