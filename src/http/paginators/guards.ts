import { createHash } from "node:crypto";
import { RunError } from "../../shared/errors.js";
import { plural } from "../../shared/format.js";
import { stringifyJson } from "../../shared/json-text.js";
import type { FetchedPage, NextStep, PageRequest, Paginator } from "./paginator.js";

/** The rules every paginator shares, from the stream's `paginate` settings. */
export interface GuardRules {
  /** Stop (with a warning) after this many pages; null: no limit. */
  maxPages: number | null;
  /** Pointer paginators: stop (with a warning) after this many empty pages in a row. */
  maxEmptyPages: number;
  /** Pointer paginators: stop at the first empty page. */
  stopOnEmptyPage: boolean;
}

/**
 * Wraps any paginator with the rules every type shares (Airbyte's stop-condition decorator):
 * `max_pages`, empty pages that still carry a pointer, a pointer seen before (a loop), and a page
 * identical to the one before it (an API that ignores the page or offset parameter answers the
 * same page for ever). Stop reasons are data; a loop is a `pagination_loop` error.
 * `shown` masks a pointer (a URL may hold a credential) before it goes into a message.
 */
export function guardPaginator(
  inner: Paginator,
  rules: GuardRules,
  shown: (pointer: string) => string,
): Paginator {
  return new GuardedPaginator(inner, rules, shown);
}

class GuardedPaginator implements Paginator {
  readonly kind: Paginator["kind"];
  readonly pageSizeHint: number;
  readonly peek: Paginator["peek"];
  readonly peekNext: Paginator["peekNext"];
  readonly sentAs: string | undefined;
  /** An API that does not read the parameter answers the same page: loop errors say what was sent. */
  private readonly sent: string;
  private readonly seen = new Set<string>();
  private pages = 0;
  private emptyRun = 0;
  private previous: PageFingerprint | null = null;
  private repeatsInARow = 0;

  constructor(
    private readonly inner: Paginator,
    private readonly rules: GuardRules,
    private readonly shown: (pointer: string) => string,
  ) {
    this.kind = inner.kind;
    this.pageSizeHint = inner.pageSizeHint;
    this.peek = inner.peek ? (k, size) => inner.peek!(k, size) : undefined;
    this.peekNext = inner.peekNext ? (page) => this.peekGuarded(page) : undefined;
    this.sentAs = inner.sentAs;
    this.sent = inner.sentAs ? ` (${inner.sentAs}: check the name the API reads)` : "";
  }

  first(request: PageRequest): PageRequest {
    const first = this.inner.first(request);
    const pointer = this.inner.firstPointer?.(first) ?? null;
    if (pointer !== null) this.seen.add(pointer);
    return first;
  }

  next(page: FetchedPage): NextStep {
    this.pages++;
    const step = this.guard(this.inner.next(page), page);
    if (!("stop" in step)) this.repeats(page);
    return step;
  }

  /**
   * The next request the inner paginator would make for a page with records, unless the guards
   * would stop there anyway: `max_pages` reached, or a pointer seen before (a loop). A page the
   * guards find empty or the same as the one before stops after the guess was sent: one request
   * more, which the runner withdraws.
   */
  private peekGuarded(page: FetchedPage): ReturnType<NonNullable<Paginator["peekNext"]>> {
    const { maxPages } = this.rules;
    if (maxPages !== null && this.pages + 1 >= maxPages) return null;
    const step = this.inner.peekNext!(page);
    if (!step || (step.pointer !== null && this.seen.has(step.pointer))) return null;
    return step;
  }

  /** max_pages, empty pages, a pointer seen before. */
  private guard(step: NextStep, page: FetchedPage): NextStep {
    const { rules, pages } = this;
    if ("stop" in step) return step;
    if (rules.maxPages !== null && pages >= rules.maxPages) {
      return {
        stop: {
          code: "max_pages",
          message: `max_pages ${rules.maxPages} reached (more pages were available)`,
          warning: true,
        },
      };
    }
    if (this.inner.kind === "pointer" && page.recordCount === 0) {
      if (rules.stopOnEmptyPage)
        return { stop: { code: "empty_page", message: "an empty page (stop_on_empty_page)" } };
      this.emptyRun++;
      if (this.emptyRun >= rules.maxEmptyPages) {
        return {
          stop: {
            code: "max_empty_pages",
            message: `${this.emptyRun} empty pages in a row still carried a next pointer; stopped after max_empty_pages ${rules.maxEmptyPages}`,
            warning: true,
          },
        };
      }
    } else this.emptyRun = 0;
    if (step.pointer !== null) {
      if (this.seen.has(step.pointer)) {
        throw new RunError(
          "pagination_loop",
          `pagination loop: the API sent ${this.shown(step.pointer)} again after page ${pages}${this.sent}; stopping rather than fetching the same pages twice`,
          { pointer: this.shown(step.pointer) },
        );
      }
      this.seen.add(step.pointer);
    }
    return step;
  }

  /** A page identical to the one before it: the API ignores the page or offset parameter. */
  private repeats(page: FetchedPage): void {
    const print = fingerprint(page);
    const previous = this.previous;
    if (!print || !previous || !sameRecords(print, previous)) {
      this.previous = print;
      this.repeatsInARow = 0;
      return;
    }
    this.repeatsInARow++;
    // A page of one record can repeat once when a record is inserted between two requests (the
    // offsets shift): only the same single record three times in a row is a loop.
    if (print.count === 1 && this.repeatsInARow < 2) {
      this.previous = print;
      return;
    }
    const { pages, shown } = this;
    throw new RunError(
      "pagination_loop",
      `pagination loop: page ${pages} has the same ${plural(page.recordCount, "record")} as page ${pages - 1} (${shown(previous.url)} and ${shown(print.url)}); the API seems to ignore the pagination parameter${this.sent}. Stopping rather than fetching the same page for ever`,
      { pointer: shown(print.url) },
    );
  }
}

/** Bodies up to this size are kept whole to compare with the next page; larger ones by hash. */
const KEEP_BODY_BYTES = 1 << 20;

/**
 * What two consecutive pages are compared by: the body, and the records
 * (the previous page's records are kept until the next page arrives: one page of memory).
 */
interface PageFingerprint {
  url: string;
  /** The body, or its SHA-256 when larger than KEEP_BODY_BYTES. */
  body: Buffer;
  hashed: boolean;
  count: number;
  records: readonly unknown[];
  /** The first and last record as JSON text: a cheap test before the records are compared whole. */
  ends: string;
  /** Compared where the records are (page workers): the records are the previous page's. */
  samePrevious?: boolean;
}

function fingerprint(page: FetchedPage): PageFingerprint | null {
  if (page.recordCount === 0) return null;
  const big = page.response.body.length > KEEP_BODY_BYTES;
  const body = big ? createHash("sha256").update(page.response.body).digest() : page.response.body;
  const url = page.response.url;
  if (page.compared) {
    const { ends, samePrevious } = page.compared;
    return { url, body, hashed: big, count: page.recordCount, records: [], ends, samePrevious };
  }
  // Without the records (a caller that did not keep them), pages compare by their bytes only.
  const records = page.records ?? [];
  return {
    url,
    body,
    hashed: big,
    count: page.recordCount,
    records,
    ends: recordEnds(records),
  };
}

/** The first and last record as JSON text ("" for none): the cheap test before a whole comparison. */
export function recordEnds(records: readonly unknown[]): string {
  return records.length ? `${stringifyJson(records[0])}\n${stringifyJson(records[records.length - 1])}` : "";
}

/** The same records, in the same order, as JSON (the pages' counts already agree). */
export function sameRecordList(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.every((r, i) => stringifyJson(r) === stringifyJson(b[i]));
}

/**
 * Byte-identical bodies; or (an API that echoes a request id or the page asked for) the same
 * records, compared whole once the count and the first and last record agree.
 */
function sameRecords(a: PageFingerprint, b: PageFingerprint): boolean {
  // A streamed body (JSONL/CSV: read-streamed.ts) is not kept: no bytes to compare, only records.
  if (a.body.length > 0 && a.hashed === b.hashed && a.body.equals(b.body)) return true;
  if (a.count !== b.count || a.ends === "" || a.ends !== b.ends) return false;
  if (a.samePrevious !== undefined) return a.samePrevious;
  return sameRecordList(a.records, b.records);
}
