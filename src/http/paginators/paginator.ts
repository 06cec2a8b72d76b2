import type { ParamsPlan } from "../../compile/plan.js";
import type { HttpResponse } from "../client.js";

/** A request of a stream before credentials: URL (maybe with its own query), params, headers, body. */
export interface PageRequest {
  method: "GET" | "POST";
  url: string;
  /** Added to the URL's query string (replacing keys of the same name). */
  params: ParamsPlan;
  headers: Record<string, string>;
  body: unknown;
}

export interface FetchedPage {
  request: PageRequest;
  response: HttpResponse;
  body: unknown;
  /** Records selected from this page (before any are dropped). */
  recordCount: number;
  /** The records selected from this page, when the caller has them (the guards compare pages). */
  records?: readonly unknown[];
  /**
   * When the body was parsed elsewhere (page workers): the first match of each path the paginator
   * reads (pathsRead), in place of `body`; and what the guards compare pages by, in place of
   * `records`: the first and last record as JSON, and whether the records are the previous page's.
   */
  values?: ReadonlyMap<string, unknown>;
  compared?: { ends: string; samePrevious: boolean };
}

export type StopCode =
  | "single_page"
  | "no_cursor"
  | "has_more_false"
  | "done"
  | "empty_page"
  | "total_reached"
  | "last_page"
  | "no_next_link"
  | "no_next_url"
  | "max_pages"
  | "max_empty_pages"
  | "limit"
  /** An `on_response` rule answered `ignore`: an empty last page. */
  | "ignored"
  /**
   * The same after the sequence's first page: the pages after it were never read, so the
   * sequence is cut short (its records are kept, its position is not saved: fetched again).
   */
  | "ignored_later";

/**
 * What a paginator follows, for the rules every type shares (guards.ts): a `pointer` (cursor,
 * next link or URL) that may repeat or keep coming on empty pages; a `numeric` position (offset,
 * page number) that can be guessed ahead; or nothing (`none`).
 */
export type PaginatorKind = "none" | "pointer" | "numeric";

export interface StopReason {
  code: StopCode;
  /** In words, for the summary and the report. */
  message: string;
  /** A stop that deserves the analyst's attention (e.g. empty pages that still had a cursor). */
  warning?: boolean;
}

export type NextStep = { request: PageRequest; pointer: string | null } | { stop: StopReason };

/**
 * A paginator computes where the next page is (dlt's shape): it starts from the stream's request,
 * reads each fetched page, and returns the next request or a stop with its reason. It has state:
 * each stream run (and each child partition) gets a fresh one from the plan.
 */
export interface Paginator {
  readonly kind: PaginatorKind;
  /**
   * The page size guesses assume before the first page shows the size the server really gives
   * (offset: the `limit` asked for; page numbers need no size: 1); 0 when pages are not guessed.
   */
  readonly pageSizeHint: number;
  first(request: PageRequest): PageRequest;
  /**
   * The pointer of the first request, when pointers are URLs (a next link back to the first page
   * is a loop too); null otherwise.
   */
  firstPointer?(request: PageRequest): string | null;
  next(page: FetchedPage): NextStep;
  /**
   * Where the paginator sends its value (`the cursor was sent as query parameter \`cursor\``),
   * for the loop errors: an API that does not read that name answers the same page again.
   */
  readonly sentAs?: string;
  /**
   * Offset and page paginators can say where the page `k` pages after the next one will be
   * (assuming pages of `pageSize` records), so pages can be fetched ahead concurrently; null when
   * that page is known not to exist (past a total). The runner checks every guess against next().
   */
  peek?(k: number, pageSize: number): PageRequest | null;
  /**
   * Pointer paginators (cursor, next URL, Link header): what next() would answer for `page`,
   * without counting it or changing any state; null for a stop. The runner asks it with values
   * read from the ends of a page (json-tail.ts), to send the next request before the page is
   * scanned, and checks the guess against next().
   */
  peekNext?(page: FetchedPage): { request: PageRequest; pointer: string | null } | null;
}

export function stop(code: StopCode, message: string, warning = false): NextStep {
  return { stop: { code, message, ...(warning ? { warning } : {}) } };
}

/** The URL actually requested: the request URL with params set in its query string. */
export function requestUrl(req: PageRequest): string {
  const entries = Object.entries(req.params);
  if (entries.length === 0) return req.url;
  const u = new URL(req.url);
  // Edited apart and set once: each edit of `u.searchParams` would serialise the whole URL again.
  const query = new URLSearchParams(u.search);
  for (const [k, v] of entries) {
    query.delete(k);
    for (const x of Array.isArray(v) ? v : [v]) query.append(k, x);
  }
  u.search = query.toString();
  return u.toString();
}

/** false / "false" stop a `has_more`; true / "true" mark `done`. */
export function isFalse(v: unknown): boolean {
  return v === false || v === "false" || v === 0;
}
export function isTrue(v: unknown): boolean {
  return v === true || v === "true" || v === 1;
}
export function isBlank(v: unknown): boolean {
  return (
    v === undefined ||
    v === null ||
    v === "" ||
    (typeof v === "object" && !Array.isArray(v) && Object.keys(v as object).length === 0)
  );
}
