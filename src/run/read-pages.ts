import { setMaxListeners } from "node:events";
import type { ResponseRulePlan, StreamPlan } from "../compile/plan.js";
import type { HttpResponse } from "../http/client.js";
import type { RequestExecutor } from "../http/executor.js";
import { checkMove, type OriginPolicy } from "../http/origin-policy.js";
import { guardPaginator } from "../http/paginators/guards.js";
import {
  type PageRequest,
  type Paginator,
  requestUrl,
  type StopReason,
} from "../http/paginators/paginator.js";
import { createPaginator, pathsRead } from "../http/paginators/paginators.js";
import type { RequestStats } from "../http/request-stats.js";
import { parseBody, ResponseRules } from "../http/response-rules.js";
import { ignoredStop } from "../http/response-steps.js";
import { compileJsonPath } from "../lang/jsonpath.js";
import { interrupted } from "../shared/errors.js";
import { tailValues } from "../shared/json-tail.js";
import { parseJson, stringifyJson } from "../shared/json-text.js";
import type { StreamRunOptions } from "./stream-options.js";
import type { StreamResult } from "./stream-result.js";

/** One fetched page: what was asked, what came back, and the records selected from it. */
export interface Page {
  request: PageRequest;
  response: HttpResponse;
  body: unknown;
  records: unknown[];
  /** How many records the page holds (`records.length`, or as page processing counted them). */
  count: number;
}

/**
 * What page processing (src/run/page-work/) tells the retriever about a page it parsed, before the
 * records are validated and serialised: enough for the paginator and its guards.
 */
export interface PageHead {
  count: number;
  /** The first match of each path the paginator reads (pathsRead). */
  values: ReadonlyMap<string, unknown>;
  compared: { ends: string; samePrevious: boolean };
}

/** Where a stream's pages come from. */
export interface PageSource {
  stream: StreamPlan;
  executor: RequestExecutor;
  /** The API's origin (credentials go only there) and the `allowed_hosts` origins. */
  origin: string;
  allowedOrigins: string[];
  /** Selects a page's records from its body. */
  select(body: unknown): unknown[];
  /**
   * Page processing (src/run/page-work/): the body is not parsed here; each page taken, in order,
   * goes to `process`, whose head answers the paginator. Guessed pages never dropped are processed.
   */
  process?(page: Page): Promise<PageHead> | PageHead;
  /**
   * With `process`: throws the page's own error when its body is not JSON (a head read by a scan,
   * before the page is parsed). Called when the paginator refuses what the head says (a loop):
   * the page's error comes first, as when every page was parsed before its head was read.
   */
  confirm?(page: Page): void;
}

export interface ReadOptions {
  /** Pages fetched ahead by paginators that can guess them (1: none). */
  prefetch: number;
  /** Overrides the paginator's `max_pages`. */
  maxPages: number | null;
  /** The stream's request counters. */
  stats: RequestStats;
  /** The run's interruption. */
  signal?: AbortSignal;
  /** Called as each page arrives, before the paginator reads it (the stream counts pages). */
  onPage?: () => void;
  /**
   * `--limit`: how many more records the caller wants. When a page holds that many, the next
   * page is not requested, and reading ends after it with `stop`.
   */
  limit?: { remaining(): number; stop: StopReason } | null;
}

/** A stream's read options: the run's prefetch, max pages and signal; its counters. */
export function streamReadOptions(
  opts: Pick<StreamRunOptions, "prefetch" | "maxPages" | "signal">,
  result: Pick<StreamResult, "requests" | "pages">,
  limit: ReadOptions["limit"] = null,
): ReadOptions {
  return {
    prefetch: opts.prefetch,
    maxPages: opts.maxPages,
    stats: result.requests,
    signal: opts.signal,
    onPage: () => result.pages++,
    limit,
  };
}

/** The pages of one request sequence; `stop` says why it ended, once it has. */
export interface PageReader extends AsyncIterable<Page> {
  readonly stop: StopReason | null;
}

/**
 * The retriever (dlt's `paginate()`, Airbyte's SimpleRetriever): the pages of one request
 * sequence, first request → paginator (with its guards) → next request, in order. Paginators that
 * can guess where later pages are (offset, page) fetch up to `prefetch` pages ahead; every guess
 * is checked against the paginator's real answer, and a wrong one is dropped and refetched.
 * Writing, validation and statistics stay with the caller. Pages requested ahead that are not
 * used when reading ends (or the caller stops iterating) are withdrawn.
 */
export function readPages(source: PageSource, firstRequest: PageRequest, opts: ReadOptions): PageReader {
  const reader = {
    stop: null as StopReason | null,
    async *[Symbol.asyncIterator](): AsyncGenerator<Page> {
      const cancel = new AbortController();
      setMaxListeners(0, cancel.signal); // a listener per request waiting (a slot, the budget)
      const stop = () => cancel.abort(READING_ENDED); // the sequence's own signal (a queue job's)
      opts.signal?.addEventListener("abort", stop, { once: true });
      try {
        reader.stop = yield* pagesOf(source, firstRequest, opts, cancel.signal);
      } finally {
        opts.signal?.removeEventListener("abort", stop);
        cancel.abort(READING_ENDED);
      }
    },
  };
  return reader;
}

/**
 * Why the pages still asked for are withdrawn, one reason for every reader (nothing shows it):
 * `abort()` without one makes a DOMException, stack and all, per partition, per queue job.
 */
const READING_ENDED = new Error("reading ended");

async function* pagesOf(
  source: PageSource,
  firstRequest: PageRequest,
  opts: ReadOptions,
  cancel: AbortSignal,
): AsyncGenerator<Page, StopReason> {
  const { stream, executor } = source;
  const maxPages = opts.maxPages ?? stream.paginator.maxPages;
  const paginator = streamPaginator(stream, maxPages, executor);
  const fetchPage = pageFetcher(source, opts.stats, cancel, opts.signal);
  const ahead = new Lookahead(paginator, fetchPage, opts.prefetch, maxPages, cancel);
  // `concurrency: 1` (prefetch 1) asks for no page the paginator did not ask for.
  const guess = opts.limit || opts.prefetch <= 1 ? null : tailGuess(source, paginator);
  let request = paginator.first(firstRequest);
  for (let pages = 1; ; pages++) {
    if (opts.signal?.aborted) throw interrupted();
    let page: Page;
    try {
      page = await ahead.take(request); // awaited as it is: no extra turn (see `arrived` below)
    } catch (err) {
      throw opts.signal?.aborted ? interrupted() : err;
    }
    // A pointer read from the ends of the page: its request leaves before the page is scanned
    // (the turns of the event loop that take it to the wire, see below, come first).
    const guessed = guess && !page.response.ignored && !opts.signal?.aborted ? guess(page) : null;
    if (guessed) {
      ahead.guess(guessed);
      await wireTurns();
    }
    let head: PageHead | null = null;
    if (source.process && !page.response.ignored) {
      const h = ahead.held(source.process(page));
      head = h instanceof Promise ? await h : h; // no turn of the event loop when it is known at once
      page.count = head.count;
    }
    // No await between these: guesses (started as requests settle) count on `taken` and the
    // paginator's position moving together.
    ahead.arrived(page);
    opts.onPage?.();
    const ignored = page.response.ignored;
    if (ignored) {
      yield page; // no records: an empty last page
      return ignoredStop(page.response.status, ignored.at, pages);
    }
    // Decide on the next page before this one is written, so that its request overlaps the writing.
    let step: ReturnType<Paginator["next"]>;
    try {
      step = paginator.next(
        head
          ? { request, response: page.response, body: null, recordCount: head.count, ...head }
          : {
              request,
              response: page.response,
              body: page.body,
              recordCount: page.count,
              records: page.records,
            },
      );
    } catch (err) {
      if (head) source.confirm?.(page);
      throw err;
    }
    const last = opts.limit ? page.count >= opts.limit.remaining() : false;
    // Once the run is stopped (Ctrl-C, a cancelled queue job), no new request leaves.
    const started = !("stop" in step) && !last && !opts.signal?.aborted && ahead.want(step.request);
    // Let the requests just started reach the wire before this page is written: writing a page is
    // one long chain of microtasks. undici reuses a kept-alive connection only after a full turn
    // of the event loop (a setImmediate queued when the last response ended), and writes the
    // request queued on it in the turn after that: two turns. With none, 8 concurrent pages went
    // out in rounds (a third slower than a sliding window); with one, a cursor API's next request
    // left only after the current page was validated, serialised and written
    // (test/run/cursor-overlap.test.ts).
    if (!guessed || started) await wireTurns();
    yield page;
    if (opts.limit && opts.limit.remaining() <= 0) return opts.limit.stop;
    if ("stop" in step) return step.stop;
    request = step.request;
  }
}

/** Why a guessed request is withdrawn when the paginator asked for another one (nothing shows it). */
const GUESS_DROPPED = new Error("guess dropped");

/**
 * What makes two page requests the same one: method, URL (params included), headers and body — a
 * cursor sent in a header or the body leaves the URL alike.
 */
export function requestKey(request: PageRequest): string {
  const { headers, body } = request;
  const names = Object.keys(headers).sort();
  const h = names.length ? JSON.stringify(names.map((n) => [n, headers[n]])) : "";
  const b = body === null || body === undefined ? "" : (stringifyJson(body) ?? "");
  return `${request.method} ${requestUrl(request)}\n${h}\n${b}`;
}

/** Two turns of the event loop: what a request just started takes to reach the wire (see pagesOf). */
async function wireTurns(): Promise<void> {
  for (let turn = 0; turn < 2; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Pages requested ahead of the one being written, by request (requestKey). Keeps up to `prefetch` guessed pages in
 * flight, and at most twice that requested ahead (pages that arrived but wait for their turn
 * count, so memory is bounded); a slot that frees is refilled at once (a sliding window).
 */
class Lookahead {
  private readonly pending = new Map<string, Promise<Page>>();
  private inflight = 0;
  /** Pages taken so far; the next one to take is `taken + 1`. */
  private taken = 0;
  /** The furthest page guessed so far (0: none, or every guess was dropped). */
  private furthest = 0;
  /** Guesses start at once with the paginator's hint, then use the size the first page shows. */
  private pageSize: number;
  private shortPage = false;
  private readonly prefetch: number;

  constructor(
    private readonly paginator: Paginator,
    private readonly fetchPage: (request: PageRequest, signal?: AbortSignal) => Promise<Page>,
    prefetch: number,
    private readonly maxPages: number | null,
    /** Aborted when reading ends, and at once when the run's (or queue job's) signal is. */
    private readonly cancel: AbortSignal,
  ) {
    this.prefetch = paginator.peek && prefetch > 1 ? prefetch : 1;
    this.pageSize = paginator.pageSizeHint;
  }

  /** The page for `request`: fetched ahead already, or now (every guess was wrong). */
  take(request: PageRequest): Promise<Page> {
    const key = requestKey(request);
    let page = this.pending.get(key);
    if (page) this.pending.delete(key);
    else {
      this.pending.clear(); // every guess was wrong (a short page moved the offsets)
      this.furthest = 0;
      page = this.start(request);
    }
    this.topUp();
    return page;
  }

  /**
   * No guesses while the page taken is counted elsewhere (page workers): a short page stops them,
   * and it is not known to be short yet.
   */
  held<T>(head: Promise<T> | T): Promise<T> | T {
    if (!(head instanceof Promise)) return head;
    this.holding = true;
    return head;
  }
  private holding = false;

  /** A page was taken: count it, and learn the page size from it. */
  arrived(fetched: Page): void {
    this.holding = false;
    this.taken++;
    // The first page shows the page size the server really gives (it may cap the one asked for).
    // A shorter page later is most likely the last: no more guesses until a full page comes again.
    const count = fetched.count;
    if (this.taken === 1 && count > 0) this.pageSize = count;
    this.shortPage = count < this.pageSize;
  }

  /**
   * The paginator's next request: start it now unless it was guessed already; true when it was
   * started now (its request has yet to reach the wire).
   */
  want(request: PageRequest): boolean {
    const key = requestKey(request);
    // A pointer guessed wrong: its page is dropped and its request withdrawn (retries included).
    if (this.guessed !== null && this.guessed !== key) {
      this.pending.delete(this.guessed);
      // The only request out under this signal: the guesses before it were taken, and done.
      this.guessControl?.abort(GUESS_DROPPED);
      this.guessControl = null;
    }
    this.guessed = null;
    if (this.pending.has(key)) return false;
    this.pending.set(key, this.start(request));
    return true;
  }

  /**
   * A pointer paginator's next request guessed from the ends of the page (tailGuess), started now,
   * before the page is read: want() keeps it when the paginator asks for the same request (method,
   * URL, headers, body), and withdraws it otherwise; a stop withdraws it with every request out.
   */
  guess(request: PageRequest): void {
    const key = requestKey(request);
    if (this.pending.has(key) || this.cancel.aborted) return;
    this.pending.set(key, this.start(request, this.guessSignal()));
    this.guessed = key;
  }
  private guessed: string | null = null;

  /**
   * The signal of the guesses, aborted with `cancel` or when a guess is dropped; then a new one.
   * One for all the guesses kept, not one per request: each signal the executor sees gets its
   * waits, which a composite of the session's signal that Node 20 keeps until the session ends.
   */
  private guessSignal(): AbortSignal {
    if (!this.guessControl) {
      const control = new AbortController();
      this.cancel.addEventListener("abort", () => control.abort(this.cancel.reason), { once: true });
      this.guessControl = control;
    }
    return this.guessControl.signal;
  }
  private guessControl: AbortController | null = null;

  /** A request whose failure only matters if its page is used (a guess past the end may fail). */
  private start(request: PageRequest, signal?: AbortSignal): Promise<Page> {
    this.inflight++;
    const p = this.fetchPage(request, signal);
    p.catch(() => {}).finally(() => {
      this.inflight--;
      this.topUp();
    });
    return p;
  }

  private topUp(): void {
    const { paginator, prefetch } = this;
    if (prefetch <= 1 || this.pageSize <= 0 || this.shortPage || this.holding || this.cancel.aborted) return;
    for (
      let k = Math.max(1, this.furthest - this.taken);
      k <= prefetch * 2 && this.inflight < prefetch;
      k++
    ) {
      if (this.maxPages !== null && this.taken + 1 + k > this.maxPages) break;
      const guess = paginator.peek!(k, this.pageSize);
      if (!guess) break;
      const key = requestKey(guess);
      if (!this.pending.has(key)) this.pending.set(key, this.start(guess));
      this.furthest = this.taken + 1 + k;
    }
  }
}

/**
 * For a stream whose pages are processed from their bytes (`process`) and whose paginator follows
 * a pointer (a cursor, a next URL, a Link header): the next request as the paginator would make
 * it from the values at the ends of the page (json-tail.ts) and its headers, for a page with
 * records; null when unsure. Every path read (the records, the cursor or URL, `has_more`, `done`)
 * must be one member name, or the records `$` when no path is read. PIPELINES_CURSOR_GUESS=off
 * turns it off (tests, A/B).
 */
function tailGuess(source: PageSource, paginator: Paginator): ((page: Page) => PageRequest | null) | null {
  const { stream } = source;
  if (!source.process || !paginator.peekNext || process.env.PIPELINES_CURSOR_GUESS === "off") return null;
  const records = compileJsonPath(stream.records).keys;
  const paths = pathsRead(stream.paginator);
  const names = paths.map((p) => compileJsonPath(p).keys);
  if (!records || records.length > 1 || !names.every((k) => k?.length === 1)) return null;
  if (records.length === 0 && names.length > 0) return null;
  const recordsName = records.length ? Buffer.from(records[0], "utf8") : null;
  const nameBytes = names.map((k) => Buffer.from(k![0], "utf8"));
  return (page) => {
    const { body } = page.response;
    if (page.response.stream || body.length === 0) return null;
    const tail = tailValues(body, recordsName, nameBytes);
    if (!tail) return null;
    // Not JSON where the ends were read, or a pointer the paginator refuses (a bad URL, a cursor
    // a header cannot hold): no guess — the page's own read and next() say so.
    try {
      const values = new Map<string, unknown>();
      for (let k = 0; k < paths.length; k++)
        values.set(paths[k], parseJson(body.toString("utf8", tail.spans[2 * k], tail.spans[2 * k + 1])));
      // One record at least: tailValues found the records array's first element.
      const fetched = { request: page.request, response: page.response, body: null, recordCount: 1, values };
      return paginator.peekNext!(fetched)?.request ?? null;
    } catch {
      return null;
    }
  };
}

/** Fetches one page: origin check, the request (retries inside), JSON, `error_path`, records. */
function pageFetcher(
  source: PageSource,
  stats: RequestStats,
  cancel: AbortSignal,
  stop: AbortSignal | undefined, // the sequence's own (FetchHow.stop): ends a request on the wire too
): (request: PageRequest, signal?: AbortSignal) => Promise<Page> {
  const { stream, executor } = source;
  const how = { rules: new ResponseRules(streamRules(stream)), stop };
  // `signal`: a guessed request's own (aborted with `cancel`, or when the guess is dropped).
  return async (request, signal = cancel) => {
    const { url, sent } = outgoing(request, source, executor);
    const response = await executor.fetch(
      {
        method: request.method,
        url,
        headers: request.headers,
        body: sent,
        compression: stream.response?.compression,
      },
      stats,
      signal,
      how,
    );
    // An ignored answer has no records; a processed page's are counted by `process`.
    if (response.ignored || source.process) return { request, response, body: null, records: [], count: 0 };
    const body = parseBody(response, request, executor);
    const records = source.select(body);
    return { request, response, body, records, count: records.length };
  };
}

/** A stream's paginator, fresh for one request sequence, wrapped in the guards every type shares. */
export function streamPaginator(
  stream: StreamPlan,
  maxPages: number | null,
  executor: RequestExecutor,
): Paginator {
  const p = stream.paginator;
  return guardPaginator(
    createPaginator(p),
    { maxPages, maxEmptyPages: p.maxEmptyPages, stopOnEmptyPage: p.stopOnEmptyPage },
    (pointer) => executor.redactUrl(pointer),
  );
}

/**
 * A page request as it goes out: its URL, its JSON body (POST), and the origin rule checked
 * first (a pagination link may lead to another origin; origin-policy.ts).
 */
export function outgoing(
  request: PageRequest,
  origins: OriginPolicy,
  executor: RequestExecutor,
): { url: string; sent: string | undefined } {
  const url = requestUrl(request);
  const sent =
    request.method === "POST" && request.body !== null && request.body !== undefined
      ? stringifyJson(request.body)
      : undefined;
  checkMove(origins, {
    how: "pagination leads to",
    via: "pagination link",
    url,
    body: sent,
    mask: (t) => executor.redactor.text(t),
    showUrl: (u) => executor.redactUrl(u),
  });
  return { url, sent };
}

/** The stream's rules; a plan without `onResponse` (built by hand) keeps its `error_path`. */
export function streamRules(stream: StreamPlan): ResponseRulePlan[] {
  if (stream.onResponse) return stream.onResponse;
  if (!stream.errorPath) return [];
  return [
    {
      at: `streams.${stream.name}.error_path`,
      statuses: null,
      classes: [2],
      match: stream.errorPath,
      hasEquals: false,
      equals: undefined,
      bodyContains: null,
      action: "fail",
      message: null,
      waitMs: null,
    },
  ];
}
