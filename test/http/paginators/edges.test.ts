/**
 * What each stop says (the summary and the report show it), the warning flag, and the edges of
 * the guards' page comparison, the flags, totals, peeks and injection. Found by mutation testing
 * (docs/mutation.md): each case fails when one condition or message of the paginators changes.
 */
import { describe, expect, it } from "vitest";
import { type GuardRules, guardPaginator } from "../../../src/http/paginators/guards.js";
import { inject } from "../../../src/http/paginators/inject.js";
import {
  type FetchedPage,
  isBlank,
  isFalse,
  isTrue,
  type NextStep,
  type Paginator,
  requestUrl,
  stop,
} from "../../../src/http/paginators/paginator.js";
import { createPaginator } from "../../../src/http/paginators/paginators.js";
import { RunError } from "../../../src/shared/errors.js";
import { nextRequest, page, plan, START } from "./helpers.js";

const rules = (over: Partial<GuardRules> = {}): GuardRules => ({
  maxPages: null,
  maxEmptyPages: 3,
  stopOnEmptyPage: false,
  ...over,
});
const shown = (p: string) => p.replace(/secret/g, "***");
const recs = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ id: from + i }));
const cursorPlan = (over: Record<string, unknown> = {}) =>
  plan("cursor", {
    cursorPath: "$.next",
    cursorHeader: null,
    param: "after",
    in: "query",
    hasMore: null,
    done: null,
    ...over,
  } as never);

/** The stop of one step ({code, message, warning?}); fails when the step goes on. */
function stopOf(step: NextStep) {
  if (!("stop" in step)) throw new Error(`expected a stop, got ${requestUrl(step.request)}`);
  return step.stop;
}

/** First request, then `next` for one page. */
function once(p: Paginator, body: unknown, records: unknown[] = [], headers: Record<string, string> = {}) {
  const first = p.first(START);
  return p.next(page(first, body, records, headers));
}

describe("what each stop says", () => {
  it("none, has_more, done, total, last page, link header", () => {
    expect(stopOf(once(createPaginator(plan("none", {})), {}))).toEqual({
      code: "single_page",
      message: "one request, no pagination",
    });
    expect(
      stopOf(once(createPaginator(cursorPlan({ hasMore: "$.more" })), { next: "c", more: false })),
    ).toEqual({
      code: "has_more_false",
      message: "$.more was false",
    });
    expect(stopOf(once(createPaginator(cursorPlan({ done: "$.done" })), { next: "c", done: true }))).toEqual({
      code: "done",
      message: "$.done was true",
    });
    const offset = createPaginator(
      plan("offset", { offsetParam: "o", limitParam: "l", limit: 2, start: 0, total: "$.total" }),
    );
    expect(stopOf(once(offset, { total: 2 }, recs(2))).message).toBe("all 2 records of $.total");
    const pages = createPaginator(
      plan("page", { pageParam: "p", start: 1, sizeParam: null, size: null, totalPages: "$.pages" }),
    );
    expect(stopOf(once(pages, { pages: 1 }, recs(1))).message).toBe("page 1 was the last of 1 ($.pages)");
    const link = createPaginator(plan("link_header", { rel: "next" }));
    expect(stopOf(once(link, [], recs(1))).message).toBe('no Link header with rel="next"');
  });

  it("no next cursor: what the cursor was (empty, null, missing, an empty map), from the body or a header", () => {
    const c = () => createPaginator(cursorPlan());
    expect(stopOf(once(c(), { next: "" }, recs(1))).message).toBe("no next cursor ($.next was empty)");
    expect(stopOf(once(c(), { next: null }, recs(1))).message).toBe("no next cursor ($.next was null)");
    expect(stopOf(once(c(), {}, recs(1))).message).toBe("no next cursor ($.next was missing)");
    expect(stopOf(once(c(), { next: {} }, recs(1))).code).toBe("no_cursor");
    const h = createPaginator(cursorPlan({ cursorPath: null, cursorHeader: "x-next" }));
    expect(stopOf(once(h, {}, recs(1))).message).toBe("no next cursor (header x-next was missing)");
  });

  it("no next URL: empty, null, missing or not a string", () => {
    const n = () => createPaginator(plan("next_url", { next: "$.next", hasMore: null, done: null }));
    const says = (body: unknown) => stopOf(once(n(), body, recs(1))).message;
    expect(says({ next: "" })).toBe("no next URL ($.next was empty)");
    expect(says({ next: null })).toBe("no next URL ($.next was null)");
    expect(says({})).toBe("no next URL ($.next was missing)");
    expect(says({ next: 7 })).toBe("no next URL ($.next was not a string)");
  });

  it("an empty page: plain, or a warning naming a total that is not a count (cut to 40 characters)", () => {
    const off = () =>
      createPaginator(
        plan("offset", { offsetParam: "o", limitParam: "l", limit: 2, start: 0, total: "$.t" }),
      );
    const emptyAfter = (t: unknown) => {
      const p = off();
      const first = p.first(START);
      const second = nextRequest(p.next(page(first, { t }, recs(2))));
      return stopOf(p.next(page(second, { t }, [])));
    };
    expect(emptyAfter(undefined)).toEqual({ code: "empty_page", message: "an empty page" });
    expect(emptyAfter(null)).toEqual({ code: "empty_page", message: "an empty page" });
    expect(emptyAfter(-5)).toEqual({
      code: "empty_page",
      message: "an empty page ($.t was -5, not a count: ignored)",
      warning: true,
    });
    expect(emptyAfter("  ").message).toBe('an empty page ($.t was "  ", not a count: ignored)');
    expect(emptyAfter("x".repeat(50)).message).toBe(
      `an empty page ($.t was "${"x".repeat(38)}…, not a count: ignored)`,
    );
    expect(emptyAfter("x".repeat(38)).message).toBe(
      `an empty page ($.t was "${"x".repeat(38)}", not a count: ignored)`,
    );
  });

  it("a total of 0, or one given as a numeric string with spaces, is a count", () => {
    const p = createPaginator(
      plan("offset", { offsetParam: "o", limitParam: "l", limit: 2, start: 0, total: "$.t" }),
    );
    expect(stopOf(once(p, { t: 0 }, recs(1))).code).toBe("total_reached");
    const q = createPaginator(
      plan("offset", { offsetParam: "o", limitParam: "l", limit: 2, start: 0, total: "$.t" }),
    );
    expect(stopOf(once(q, { t: " 1 " }, recs(1))).code).toBe("total_reached");
  });

  it("stop() carries warning only when asked", () => {
    expect(stop("done", "m")).toEqual({ stop: { code: "done", message: "m" } });
    expect("warning" in stopOf(stop("done", "m"))).toBe(false);
    expect(stop("done", "m", true)).toEqual({ stop: { code: "done", message: "m", warning: true } });
  });
});

describe("flags and blanks", () => {
  it('has_more is false for false, "false" and 0; done is true for true, "true" and 1', () => {
    for (const v of [false, "false", 0]) expect(isFalse(v)).toBe(true);
    for (const v of [true, "true", 1, null, "", "0"]) expect(isFalse(v)).toBe(false);
    for (const v of [true, "true", 1]) expect(isTrue(v)).toBe(true);
    for (const v of [false, "false", 0, null, "", "1"]) expect(isTrue(v)).toBe(false);
  });

  it("a blank cursor: undefined, null, empty text, an empty map — not an empty list or 0", () => {
    for (const v of [undefined, null, "", {}]) expect(isBlank(v)).toBe(true);
    for (const v of [[], 0, { a: 1 }, "x", false]) expect(isBlank(v)).toBe(false);
  });

  it("done: false (or absent) goes on; has_more: true (or absent) goes on", () => {
    const d = createPaginator(cursorPlan({ done: "$.done", hasMore: "$.more" }));
    expect(nextRequest(once(d, { next: "c", done: false, more: true }, recs(1))).params.after).toBe("c");
    const e = createPaginator(cursorPlan({ done: "$.done", hasMore: "$.more" }));
    expect(nextRequest(once(e, { next: "c" }, recs(1))).params.after).toBe("c");
  });

  it("requestUrl: the URL as given when there are no params to set", () => {
    expect(requestUrl({ ...START, url: "https://API.test/a b", params: {} })).toBe("https://API.test/a b");
    expect(requestUrl({ ...START, url: "https://api.test/a?x=1&y=2", params: { x: ["3", "4"] } })).toBe(
      "https://api.test/a?y=2&x=3&x=4",
    );
    // The query is form-encoded as URLSearchParams writes it; the fragment and the path stay.
    expect(
      requestUrl({
        ...START,
        url: "https://api.test/p%2Fq?a=+1%2B&k#frag",
        params: { b: "€ 😀&c=d", a: [] },
      }),
    ).toBe("https://api.test/p%2Fq?k=&b=%E2%82%AC+%F0%9F%98%80%26c%3Dd#frag");
  });

  it("a cursor that is a map or a list is sent as its JSON text", () => {
    const p = createPaginator(cursorPlan());
    expect(requestUrl(nextRequest(once(p, { next: { a: 1 } }, recs(1))))).toBe(
      `https://api.test/v1/items?q=x&after=${encodeURIComponent('{"a":1}')}`,
    );
    const q = createPaginator(cursorPlan());
    expect(nextRequest(once(q, { next: [] }, recs(1))).params.after).toBe("[]");
  });
});

describe("peek at the edges", () => {
  it("offset: no guess for a page size of 0 or less; the page at the total is the first not to exist", () => {
    const p = createPaginator(
      plan("offset", { offsetParam: "o", limitParam: "l", limit: 10, start: 0, total: "$.t" }),
    );
    const first = p.first(START);
    expect(p.peek!(1, 0)).toBeNull();
    expect(p.peek!(1, -1)).toBeNull();
    p.next(page(first, { t: 30 }, recs(10)));
    // Next is offset 10; peek(1) is 20 (exists), peek(2) is 30 = the total (does not).
    expect(p.peek!(1, 10)?.params.o).toBe("20");
    expect(p.peek!(2, 10)).toBeNull();
  });

  it("page: the last page is guessed, the one after is not (pages counted from start)", () => {
    const p = createPaginator(
      plan("page", { pageParam: "p", start: 5, sizeParam: null, size: null, totalPages: "$.n" }),
    );
    const first = p.first(START);
    expect(p.peek!(3, 1)?.params.p).toBe("8");
    p.next(page(first, { n: 3 }, recs(1)));
    // Pages 5, 6, 7: next is 6; peek(1) is 7, the last; peek(2) is 8, past it.
    expect(p.peek!(1, 1)?.params.p).toBe("7");
    expect(p.peek!(2, 1)).toBeNull();
  });
});

describe("guards at the edges", () => {
  const link = () => createPaginator(plan("link_header", { rel: "next" }));
  /** Drives `p` over pages given as [body, records, link]; returns the stop or the error. */
  function run(p: Paginator, pages: [unknown, unknown[] | undefined, number, string?][]): string {
    let req = p.first(START);
    try {
      for (const [i, [body, records, count, raw]] of pages.entries()) {
        const text = raw ?? JSON.stringify(body);
        const fetched: FetchedPage = {
          request: req,
          response: {
            status: 200,
            headers: { link: `</v1/items?page=${i + 2}>; rel="next"` },
            body: Buffer.from(text),
            url: requestUrl(req),
            elapsedMs: 1,
          },
          body,
          recordCount: count,
          records,
        };
        const step = p.next(fetched);
        if ("stop" in step) return step.stop.code;
        req = step.request;
      }
      return "went on";
    } catch (err) {
      if (err instanceof RunError) return err.kind;
      throw err;
    }
  }
  const g = (over: Partial<GuardRules> = {}) => guardPaginator(link(), rules(over), shown);

  it("the same first and last record and count is a loop; any of them different is not", () => {
    const a = recs(3);
    expect(
      run(g(), [
        [{ p: 1, d: a }, a, 3],
        [{ p: 2, d: a }, a, 3],
      ]),
    ).toBe("pagination_loop");
    const lastDiffers = [...a.slice(0, 2), { id: 99 }];
    expect(
      run(g(), [
        [{ p: 1 }, a, 3],
        [{ p: 2 }, lastDiffers, 3],
      ]),
    ).toBe("went on");
    const firstDiffers = [{ id: 99 }, ...a.slice(1)];
    expect(
      run(g(), [
        [{ p: 1 }, a, 3],
        [{ p: 2 }, firstDiffers, 3],
      ]),
    ).toBe("went on");
    const longer = [...a.slice(0, 2), { id: 50 }, a[2]];
    expect(
      run(g(), [
        [{ p: 1 }, a, 3],
        [{ p: 2 }, longer, 4],
      ]),
    ).toBe("went on");
  });

  it("pages whose records were not kept compare by their bytes only", () => {
    expect(
      run(g(), [
        [{ p: 1 }, undefined, 2],
        [{ p: 2 }, undefined, 2],
      ]),
    ).toBe("went on");
    expect(
      run(g(), [
        [{ p: 1 }, undefined, 2],
        [{ p: 1 }, undefined, 2],
      ]),
    ).toBe("pagination_loop");
  });

  it("identical empty pages are left to the empty-page rules, not called a loop", () => {
    expect(
      run(g(), [
        [{ d: [] }, [], 0],
        [{ d: [] }, [], 0],
      ]),
    ).toBe("went on");
    expect(
      run(g(), [
        [{ d: [] }, [], 0],
        [{ d: [] }, [], 0],
        [{ d: [] }, [], 0],
      ]),
    ).toBe("max_empty_pages");
  });

  it("a page that ends the stream is never compared (its records may repeat the page before)", () => {
    const c = guardPaginator(createPaginator(cursorPlan()), rules(), shown);
    const first = c.first(START);
    const second = nextRequest(c.next(page(first, { next: "a" }, recs(2))));
    expect(stopOf(c.next(page(second, { next: null }, recs(2)))).code).toBe("no_cursor");
  });

  it("max_pages, stop_on_empty_page and max_empty_pages say why, and which are warnings", () => {
    const mp = guardPaginator(createPaginator(cursorPlan()), rules({ maxPages: 1 }), shown);
    expect(stopOf(once(mp, { next: "a" }, recs(1)))).toEqual({
      code: "max_pages",
      message: "max_pages 1 reached (more pages were available)",
      warning: true,
    });
    const se = guardPaginator(createPaginator(cursorPlan()), rules({ stopOnEmptyPage: true }), shown);
    expect(stopOf(once(se, { next: "a" }, []))).toEqual({
      code: "empty_page",
      message: "an empty page (stop_on_empty_page)",
    });
    const me = guardPaginator(createPaginator(cursorPlan()), rules({ maxEmptyPages: 1 }), shown);
    expect(stopOf(once(me, { next: "a" }, []))).toEqual({
      code: "max_empty_pages",
      message: "1 empty pages in a row still carried a next pointer; stopped after max_empty_pages 1",
      warning: true,
    });
  });

  it("a loop error carries the masked pointer in its details", () => {
    const c = guardPaginator(createPaginator(cursorPlan()), rules(), shown);
    const first = c.first(START);
    const second = nextRequest(c.next(page(first, { next: "secret1" }, recs(1))));
    const err = (() => {
      try {
        c.next(page(second, { next: "secret1", n: 2 }, recs(1, 5)));
      } catch (e) {
        return e as RunError;
      }
    })();
    expect(err?.details).toEqual({ pointer: "cursor ***1" });
    const l = g();
    const r1 = l.first(START);
    const body = Buffer.from('{"x":1}');
    const mk = (req: typeof r1): FetchedPage => ({
      request: req,
      response: {
        status: 200,
        headers: { link: '</v1/secret?p=2>; rel="next"' },
        body,
        url: "https://api.test/v1/secret",
        elapsedMs: 1,
      },
      body: { x: 1 },
      recordCount: 1,
      records: [{ id: 1 }],
    });
    const r2 = nextRequest(l.next(mk(r1)));
    const e2 = (() => {
      try {
        l.next(mk(r2));
      } catch (e) {
        return e as RunError;
      }
    })();
    // (A page of one record may repeat once: here the repeated next link is the loop.)
    expect(e2?.details).toEqual({ pointer: "https://api.test/v1/***?p=2" });
  });
});

describe("inject", () => {
  it("a header value with a control character is an invalid_request error, the value shown cut to 60", () => {
    expect(() => inject(START, "header", "X-C", "a\r\nb")).toThrow(
      'cannot send "a\\r\\nb" in header X-C: a header value cannot hold line breaks or other control characters',
    );
    for (const bad of ["\u0000ab", "ab\u0007", "a\u007fb"]) {
      expect(() => inject(START, "header", "X-C", bad)).toThrow(RunError);
    }
    const long = `${"x".repeat(70)}\n`;
    expect(() => inject(START, "header", "X-C", long)).toThrow(`cannot send "${"x".repeat(59)}…" in header`);
    const exactly60 = `${"x".repeat(59)}\n`;
    expect(() => inject(START, "header", "X-C", exactly60)).toThrow(
      `cannot send "${"x".repeat(59)}\\n" in header`,
    );
    try {
      inject(START, "header", "X-C", "\n");
    } catch (err) {
      expect((err as RunError).kind).toBe("invalid_request");
    }
    expect(inject(START, "header", "X-C", "tab\tand é ok").headers).toEqual({ "X-C": "tab\tand é ok" });
  });

  it("body: merged into a map body; a missing, list or text body becomes a map", () => {
    expect(inject({ ...START, body: { a: 1 } }, "body", "c", "x").body).toEqual({ a: 1, c: "x" });
    expect(inject({ ...START, body: null }, "body", "c", 2).body).toEqual({ c: 2 });
    expect(inject({ ...START, body: [1] as never }, "body", "c", 2).body).toEqual({ c: 2 });
    expect(inject({ ...START, body: "text" as never }, "body", "c", 2).body).toEqual({ c: 2 });
  });
});
