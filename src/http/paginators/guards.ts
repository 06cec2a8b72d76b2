import { RunError } from "../../shared/errors.js";
import { plural } from "../../shared/format.js";
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
  const seen = new Set<string>();
  // An API that does not read the parameter answers the same page: say what was sent.
  const sent = inner.sentAs ? ` (${inner.sentAs}: check the name the API reads)` : "";
  let pages = 0;
  let emptyRun = 0;
  let previous: PageFingerprint | null = null;

  const guard = (step: NextStep, page: FetchedPage): NextStep => {
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
    if (inner.kind === "pointer" && page.recordCount === 0) {
      if (rules.stopOnEmptyPage)
        return { stop: { code: "empty_page", message: "an empty page (stop_on_empty_page)" } };
      emptyRun++;
      if (emptyRun >= rules.maxEmptyPages) {
        return {
          stop: {
            code: "max_empty_pages",
            message: `${emptyRun} empty pages in a row still carried a next pointer; stopped after max_empty_pages ${rules.maxEmptyPages}`,
            warning: true,
          },
        };
      }
    } else emptyRun = 0;
    if (step.pointer !== null) {
      if (seen.has(step.pointer)) {
        throw new RunError(
          "pagination_loop",
          `pagination loop: the API sent ${shown(step.pointer)} again after page ${pages}${sent}; stopping rather than fetching the same pages twice`,
          { pointer: shown(step.pointer) },
        );
      }
      seen.add(step.pointer);
    }
    return step;
  };

  const repeats = (page: FetchedPage): void => {
    const print = fingerprint(page);
    if (print && previous && sameRecords(print, previous)) {
      throw new RunError(
        "pagination_loop",
        `pagination loop: page ${pages} has the same ${plural(page.recordCount, "record")} as page ${pages - 1} (${shown(previous.url)} and ${shown(print.url)}); the API seems to ignore the pagination parameter${sent}. Stopping rather than fetching the same page for ever`,
        { pointer: shown(print.url) },
      );
    }
    previous = print;
  };

  return {
    kind: inner.kind,
    pageSizeHint: inner.pageSizeHint,
    sentAs: inner.sentAs,
    peek: inner.peek ? (k, size) => inner.peek!(k, size) : undefined,
    first(request: PageRequest): PageRequest {
      const first = inner.first(request);
      const pointer = inner.firstPointer?.(first) ?? null;
      if (pointer !== null) seen.add(pointer);
      return first;
    },
    next(page: FetchedPage): NextStep {
      pages++;
      const step = inner.next(page);
      if (!("stop" in step)) repeats(page);
      return guard(step, page);
    },
  };
}

/** What two consecutive pages are compared by: the body, and the records at both ends. */
interface PageFingerprint {
  url: string;
  body: Buffer;
  count: number;
  firstRecord: string;
  lastRecord: string;
}

function fingerprint(page: FetchedPage): PageFingerprint | null {
  if (page.recordCount === 0) return null;
  const records = page.records ?? [];
  return {
    url: page.response.url,
    body: page.response.body,
    count: page.recordCount,
    firstRecord: records.length ? (JSON.stringify(records[0]) ?? "") : "",
    lastRecord: records.length ? (JSON.stringify(records[records.length - 1]) ?? "") : "",
  };
}

/**
 * Byte-identical bodies, or (an API that echoes a request id or the page asked for) the same
 * number of records with the same first and last record.
 */
function sameRecords(a: PageFingerprint, b: PageFingerprint): boolean {
  if (a.body.equals(b.body)) return true;
  return (
    a.count === b.count &&
    a.firstRecord !== "" &&
    a.firstRecord === b.firstRecord &&
    a.lastRecord === b.lastRecord
  );
}
