/** The rules every paginator shares (guards.ts), given requests and responses. */
import { describe, expect, it } from "vitest";
import { type GuardRules, guardPaginator } from "../../../src/http/paginators/guards.js";
import type { FetchedPage } from "../../../src/http/paginators/paginator.js";
import { createPaginator } from "../../../src/http/paginators/paginators.js";
import { RunError } from "../../../src/shared/errors.js";
import { drive, page, plan, START } from "./helpers.js";

const rules = (over: Partial<GuardRules> = {}): GuardRules => ({
  maxPages: null,
  maxEmptyPages: 3,
  stopOnEmptyPage: false,
  ...over,
});
const shown = (p: string) => p.replace(/secret/g, "***");
const cursor = (hasMore: string | null = null) =>
  createPaginator(
    plan("cursor", {
      cursorPath: "$.next",
      cursorHeader: null,
      param: "after",
      in: "query",
      hasMore,
      done: null,
    }),
  );
const pageNumbers = () =>
  createPaginator(
    plan("page", { pageParam: "page", start: 1, sizeParam: null, size: null, totalPages: null }),
  );
const rec = (id: number) => ({ id });

function loopError(fn: () => unknown): RunError {
  try {
    fn();
  } catch (err) {
    if (err instanceof RunError) return err;
    throw err;
  }
  throw new Error("expected a pagination_loop error");
}

describe("guards", () => {
  it("max_pages stops with a warning while the API still had a next page", () => {
    const r = drive(guardPaginator(cursor(), rules({ maxPages: 2 }), shown), [
      { body: { next: "a" }, records: [rec(1)] },
      { body: { next: "b" }, records: [rec(2)] },
      { body: { next: "c" }, records: [rec(3)] },
    ]);
    expect(r.urls).toHaveLength(2);
    expect(r.stop).toBe("max_pages");
  });

  it("empty pages with a pointer: stop after max_empty_pages in a row; the count resets on a full page", () => {
    const empty = (next: string) => ({ body: { next }, records: [] });
    const full = (next: string, id: number) => ({ body: { next }, records: [rec(id)] });
    // Scattered empty pages never stop the stream (the counter resets between them).
    const scattered = drive(guardPaginator(cursor(), rules(), shown), [
      empty("a"),
      empty("b"),
      full("c", 1),
      empty("d"),
      empty("e"),
      full("f", 2),
      empty("g"),
      { body: { next: null }, records: [rec(3)] },
    ]);
    expect(scattered.stop).toBe("no_cursor");
    expect(scattered.urls).toHaveLength(8);
    const inARow = drive(guardPaginator(cursor(), rules(), shown), [
      empty("a"),
      empty("b"),
      empty("c"),
      empty("d"),
    ]);
    expect(inARow.stop).toBe("max_empty_pages");
    expect(inARow.urls).toHaveLength(3);
  });

  it("stop_on_empty_page stops at the first empty page", () => {
    const r = drive(guardPaginator(cursor(), rules({ stopOnEmptyPage: true }), shown), [
      { body: { next: "a" }, records: [] },
    ]);
    expect(r.stop).toBe("empty_page");
  });

  it("a repeated cursor is a pagination_loop error naming it, masked", () => {
    const err = loopError(() =>
      drive(guardPaginator(cursor(), rules(), shown), [
        { body: { next: "secret-a" }, records: [rec(1)] },
        { body: { next: "b" }, records: [rec(2)] },
        { body: { next: "secret-a" }, records: [rec(3)] },
      ]),
    );
    expect(err.kind).toBe("pagination_loop");
    expect(err.message).toContain("cursor ***-a");
    expect(err.message).not.toContain("secret");
  });

  it("a next link back to the first page is a loop", () => {
    const link = createPaginator(plan("link_header", { rel: "next" }));
    const err = loopError(() =>
      drive(guardPaginator(link, rules(), shown), [
        { body: [], records: [rec(1)], headers: { link: '<https://api.test/v1/items?q=x>; rel="next"' } },
      ]),
    );
    expect(err.kind).toBe("pagination_loop");
    // A Link header says nothing of a parameter: no hint about how the page was sent.
    expect(err.message).toContain("again after page 1; stopping rather than fetching the same pages twice");
  });

  it("an API that ignores the page parameter (the same page again) is a loop, not 64,000 requests", () => {
    const same = { body: { items: [rec(1), rec(2)] }, records: [rec(1), rec(2)] };
    const err = loopError(() => drive(guardPaginator(pageNumbers(), rules(), shown), [same, same, same]));
    expect(err.kind).toBe("pagination_loop");
    expect(err.message).toMatch(/page 2 has the same 2 records as page 1/);
  });

  it("the loop error says how the page was asked for, and names the repeated page's URL as its pointer", () => {
    const same = { body: { items: [rec(1), rec(2)] }, records: [rec(1), rec(2)] };
    const err = loopError(() => drive(guardPaginator(pageNumbers(), rules(), shown), [same, same, same]));
    expect(err.message).toContain(
      "the API seems to ignore the pagination parameter (the page number was sent as query parameter `page`: check the name the API reads). Stopping",
    );
    expect(err.details).toMatchObject({ pointer: expect.stringContaining("page=2") });
  });

  it("pages of different lengths made of the same record are no loop", () => {
    const page = (n: number) => ({
      body: { items: Array.from({ length: n }, () => ({ x: 1 })) },
      records: Array.from({ length: n }, () => ({ x: 1 })),
    });
    const r = drive(guardPaginator(pageNumbers(), rules(), shown), [page(2), page(3), page(2)]);
    expect(r.stop).toBeNull();
  });

  it("the same records under a body that echoes the page asked for are a loop too", () => {
    const echo = (n: number) => ({ body: { page: n, items: [rec(1), rec(2)] }, records: [rec(1), rec(2)] });
    const err = loopError(() => drive(guardPaginator(pageNumbers(), rules(), shown), [echo(1), echo(2)]));
    expect(err.message).toMatch(/page 2 has the same 2 records as page 1/);
  });

  it("the same first and last record with a different middle is no loop (records are compared whole)", () => {
    const page = (mid: number) => ({
      body: { items: [{ clicks: 0 }, { clicks: mid }, { clicks: 0 }] },
      records: [{ clicks: 0 }, { clicks: mid }, { clicks: 0 }],
    });
    const r = drive(guardPaginator(pageNumbers(), rules(), shown), [page(7), page(3), page(5), { body: {} }]);
    expect(r.stop).toBe("empty_page");
    expect(r.urls).toHaveLength(4);
  });

  it("a page of one record may repeat once (an insert shifted the offsets); three in a row is a loop", () => {
    const one = { body: { items: [rec(1)] }, records: [rec(1)] };
    const twice = drive(guardPaginator(pageNumbers(), rules(), shown), [one, one, { body: {} }]);
    expect(twice.stop).toBe("empty_page");
    const err = loopError(() => drive(guardPaginator(pageNumbers(), rules(), shown), [one, one, one]));
    expect(err.message).toMatch(/page 3 has the same 1 record as page 2/);
  });

  it("max_pages wins over the repeat check (a warning, not a failure)", () => {
    const same = { body: { items: [rec(1), rec(2)] }, records: [rec(1), rec(2)] };
    const r = drive(guardPaginator(pageNumbers(), rules({ maxPages: 2 }), shown), [same, same, same]);
    expect(r.stop).toBe("max_pages");
  });

  it("records holding big integers (BigInt) are compared exactly", () => {
    const big = (id: bigint) => ({
      body: { items: [{ id }, { id: id + 1n }] },
      records: [{ id }, { id: id + 1n }],
    });
    const r = drive(guardPaginator(pageNumbers(), rules(), shown), [
      big(9007199254740993n),
      big(9007199254740995n),
      { body: {} },
    ]);
    expect(r.stop).toBe("empty_page");
    const err = loopError(() =>
      drive(guardPaginator(pageNumbers(), rules(), shown), [big(9007199254740993n), big(9007199254740993n)]),
    );
    expect(err.kind).toBe("pagination_loop");
  });

  it("pages with different records go on; identical empty pages are left to the empty-page rules", () => {
    const r = drive(guardPaginator(pageNumbers(), rules(), shown), [
      { body: { items: [rec(1)] }, records: [rec(1)] },
      { body: { items: [rec(2)] }, records: [rec(2)] },
      { body: { items: [] }, records: [] },
    ]);
    expect(r.stop).toBe("empty_page");
    expect(r.urls).toHaveLength(3);
  });

  it("passes the paginator's kind, page-size hint and guesses through", () => {
    const g = guardPaginator(pageNumbers(), rules(), shown);
    expect(g.kind).toBe("numeric");
    expect(g.pageSizeHint).toBe(1);
    expect(g.peek).toBeTypeOf("function");
    expect(guardPaginator(cursor(), rules(), shown).peek).toBeUndefined();
  });
});

describe("guards, pages compared where they were parsed (page workers, streamed exports)", () => {
  /** Drives page numbers over pages known only by their bytes and what was compared elsewhere. */
  function driveCompared(pages: { body: string; ends: string; samePrevious: boolean }[]): string | null {
    const p = guardPaginator(pageNumbers(), rules(), shown);
    let req = p.first(START);
    for (const c of pages) {
      const plain = page(req, {}, [rec(1), rec(2)]);
      const fetched: FetchedPage = {
        ...plain,
        response: { ...plain.response, body: Buffer.from(c.body) },
        records: undefined,
        compared: { ends: c.ends, samePrevious: c.samePrevious },
      };
      const step = p.next(fetched);
      if ("stop" in step) return step.stop.code;
      req = step.request;
    }
    return null;
  }
  const ends = '{"id":1}{"id":2}';

  it("the records the same as the previous page's is a loop, even when the bodies differ (a timestamp)", () => {
    const err = loopError(() =>
      driveCompared([
        { body: '{"at":1}', ends, samePrevious: false },
        { body: '{"at":2}', ends, samePrevious: true },
      ]),
    );
    expect(err.kind).toBe("pagination_loop");
  });

  it("streamed bodies (not kept: no bytes) compare by their records only: same ends with other records is no loop", () => {
    expect(
      driveCompared([
        { body: "", ends, samePrevious: false },
        { body: "", ends, samePrevious: false },
        { body: "", ends, samePrevious: false },
      ]),
    ).toBeNull();
    expect(
      loopError(() =>
        driveCompared([
          { body: "", ends, samePrevious: false },
          { body: "", ends, samePrevious: true },
        ]),
      ).kind,
    ).toBe("pagination_loop");
  });
});

describe("peekNext: the next request guessed from a page's values, without moving on", () => {
  const flagged = () => cursor("$.has_more");
  const at = (req: typeof START, body: unknown) => page(req, body, [{ id: 1 }]);

  it("answers what next() answers, and next() still answers the same afterwards", () => {
    const g = guardPaginator(cursor(), rules(), shown);
    const first = g.first(START);
    const p1 = at(first, { next: "c2" });
    const guess = g.peekNext!(p1);
    expect(guess?.request.params.after).toBe("c2");
    expect(g.peekNext!(p1)).toEqual(guess); // no state moved
    const step = g.next(p1);
    expect("request" in step && step.request).toEqual(guess!.request);
  });

  it("is null where next() stops: no cursor, has_more false", () => {
    const g = guardPaginator(flagged(), rules(), shown);
    const first = g.first(START);
    expect(g.peekNext!(at(first, { next: null, has_more: true }))).toBeNull();
    expect(g.peekNext!(at(first, { next: "", has_more: true }))).toBeNull();
    expect(g.peekNext!(at(first, { next: "c2", has_more: false }))).toBeNull();
    expect(g.peekNext!(at(first, { next: "c2", has_more: true }))?.request.params.after).toBe("c2");
  });

  it("is null where the guards would stop: max_pages reached, a cursor seen before", () => {
    const limited = guardPaginator(cursor(), rules({ maxPages: 2 }), shown);
    const r1 = limited.first(START);
    expect(limited.peekNext!(at(r1, { next: "c2" }))).not.toBeNull();
    const step = limited.next(at(r1, { next: "c2" }));
    if ("stop" in step) throw new Error("stopped");
    // Page 2 is the last max_pages allows: no page 3 is guessed.
    expect(limited.peekNext!(at(step.request, { next: "c3" }))).toBeNull();

    const g = guardPaginator(cursor(), rules(), shown);
    const first = g.first(START);
    const s2 = g.next(at(first, { next: "c2" }));
    if ("stop" in s2) throw new Error("stopped");
    // The API sends c2 again: next() throws a loop; no request is guessed for it.
    expect(g.peekNext!(at(s2.request, { next: "c2" }))).toBeNull();
    expect(g.peekNext!(at(s2.request, { next: "c3" }))).not.toBeNull();
  });

  it("pointer paginators guess this way (numeric ones guess ahead with peek)", () => {
    expect(guardPaginator(pageNumbers(), rules(), shown).peekNext).toBeUndefined();
    expect(guardPaginator(cursor(), rules(), shown).peekNext).toBeTypeOf("function");
    const links = createPaginator(plan("link_header", { rel: "next" }));
    const urls = createPaginator(plan("next_url", { next: "$.next", hasMore: null, done: null }));
    for (const inner of [links, urls]) {
      const g = guardPaginator(inner, rules(), shown);
      const first = g.first(START);
      const p1 = page(first, { next: "/v1/items?after=2" }, [{ id: 1 }], {
        link: '</v1/items?after=2>; rel="next"',
      });
      const guess = g.peekNext!(p1);
      expect(guess?.request.url).toBe("https://api.test/v1/items?after=2");
      const step = g.next(p1);
      expect("request" in step && step.request).toEqual(guess!.request);
      // The first URL again: a loop, not guessed.
      const again = "https://api.test/v1/items?q=x";
      expect(
        g.peekNext!(page(first, { next: again }, [{ id: 1 }], { link: `<${again}>; rel="next"` })),
      ).toBeNull();
    }
  });
});
