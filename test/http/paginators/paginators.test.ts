/**
 * Each paginator, given requests and responses: where the next page is, and why it stops.
 * (The rules every type shares — max_pages, empty pages, loops — are in guards.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { type FetchedPage, type PageRequest, requestUrl } from "../../../src/http/paginators/paginator.js";
import { createPaginator, pathsRead } from "../../../src/http/paginators/paginators.js";
import { drive, nextRequest, page, plan, START, stopCode } from "./helpers.js";

const recs = (n: number) => Array.from({ length: n }, (_, i) => ({ id: i }));

describe("none", () => {
  it("one request, then single_page", () => {
    const p = createPaginator(plan("none", {}));
    expect(p.kind).toBe("none");
    expect(drive(p, [{ body: {}, records: recs(3) }])).toMatchObject({ stop: "single_page" });
  });
});

describe("cursor", () => {
  const cursor = (over: Partial<Parameters<typeof plan<"cursor">>[1]> = {}) =>
    createPaginator(
      plan("cursor", {
        cursorPath: "$.next",
        cursorHeader: null,
        param: "after",
        in: "query",
        hasMore: null,
        done: null,
        ...over,
      }),
    );

  it("sends the cursor from the body as a query parameter, keeping the stream's params", () => {
    const r = drive(cursor(), [
      { body: { next: "c1" }, records: recs(2) },
      { body: { next: "c2" }, records: recs(2) },
      { body: { next: null }, records: recs(1) },
    ]);
    expect(r.urls).toEqual([
      "https://api.test/v1/items?q=x",
      "https://api.test/v1/items?q=x&after=c1",
      "https://api.test/v1/items?q=x&after=c2",
    ]);
    expect(r.stop).toBe("no_cursor");
  });

  it("an empty page that still carries a cursor goes on (the guards decide about empty pages)", () => {
    const r = drive(cursor(), [
      { body: { next: "c1" }, records: [] },
      { body: { next: "" }, records: recs(1) },
    ]);
    expect(r.urls).toHaveLength(2);
    expect(r.stop).toBe("no_cursor");
  });

  it("says how the cursor was sent (a loop error shows it)", () => {
    expect(cursor().sentAs).toBe("the cursor was sent as query parameter `after`");
    expect(cursor({ in: "body" }).sentAs).toBe("the cursor was sent as body field `after`");
  });

  it("has_more: false stops whatever the cursor says; done: true too", () => {
    expect(drive(cursor({ hasMore: "$.has_more" }), [{ body: { next: "c", has_more: false } }]).stop).toBe(
      "has_more_false",
    );
    expect(drive(cursor({ done: "$.done" }), [{ body: { next: "c", done: "true" } }]).stop).toBe("done");
  });

  it("a cursor from a header, sent in the JSON body (GraphQL-style) or a header", () => {
    const fromHeader = drive(cursor({ cursorPath: null, cursorHeader: "x-next", in: "body" }), [
      { body: {}, headers: { "x-next": "h1" } },
      { body: {} },
    ]);
    expect(fromHeader.bodies[1]).toEqual({ after: "h1" });
    expect(fromHeader.stop).toBe("no_cursor");
    const p = cursor({ in: "header", param: "X-Cursor" });
    const second = nextRequest(p.next(page(p.first(START), { next: 42 })));
    expect(second.headers).toEqual({ "X-Cursor": "42" });
  });

  it("declares itself a pointer paginator that cannot guess pages", () => {
    const p = cursor();
    expect(p.kind).toBe("pointer");
    expect(p.peek).toBeUndefined();
  });
});

describe("offset", () => {
  const offset = (total: string | null = null) =>
    createPaginator(
      plan("offset", { offsetParam: "offset", limitParam: "limit", limit: 100, start: 0, total }),
    );

  it("moves by the records the server really gave (a server that caps the page size)", () => {
    const r = drive(offset(), [
      { body: {}, records: recs(40) },
      { body: {}, records: recs(40) },
      { body: {} },
    ]);
    expect(r.urls).toEqual([
      "https://api.test/v1/items?q=x&limit=100&offset=0",
      "https://api.test/v1/items?q=x&limit=100&offset=40",
      "https://api.test/v1/items?q=x&limit=100&offset=80",
    ]);
    expect(r.stop).toBe("empty_page");
  });

  it("stops at the total, read as a number or a numeric string", () => {
    expect(drive(offset("$.total"), [{ body: { total: "50" }, records: recs(50) }]).stop).toBe(
      "total_reached",
    );
    const r = drive(offset("$.total"), [
      { body: { total: 150 }, records: recs(100) },
      { body: { total: 150 }, records: recs(50) },
    ]);
    expect(r.stop).toBe("total_reached");
  });

  it("goes on below the total; the stop counts the records (1 record, n records); a BigInt total is a count", () => {
    const r = drive(offset("$.total"), [
      { body: { total: 150 }, records: recs(100) },
      { body: { total: 150 }, records: recs(50) },
    ]);
    expect(r.urls).toHaveLength(2);
    const message = (total: unknown, n: number) => {
      const p = offset("$.total");
      const step = p.next(page(p.first(START), { total }, recs(n)));
      return "stop" in step ? step.stop.message : null;
    };
    expect(message(1, 1)).toBe("all 1 record of $.total");
    expect(message(2n, 2)).toBe("all 2 records of $.total");
    expect(offset().sentAs).toBe("the offset was sent as query parameter `offset`");
  });

  it("guesses later pages (peek) and none past a known total", () => {
    const p = offset("$.total");
    expect(p.kind).toBe("numeric");
    expect(p.pageSizeHint).toBe(100);
    const first = p.first(START);
    expect(requestUrl(p.peek!(2, 100)!)).toBe("https://api.test/v1/items?q=x&limit=100&offset=200");
    p.next(page(first, { total: 250 }, recs(100)));
    expect(requestUrl(p.peek!(1, 100)!)).toBe("https://api.test/v1/items?q=x&limit=100&offset=200");
    expect(p.peek!(2, 100)).toBeNull();
  });
});

describe("page", () => {
  const pages = (totalPages: string | null = null) =>
    createPaginator(
      plan("page", { pageParam: "page", start: 1, sizeParam: "per_page", size: 2, totalPages }),
    );

  it("numbers pages from start, stops at an empty page", () => {
    const r = drive(pages(), [{ body: {}, records: recs(2) }, { body: {}, records: recs(1) }, { body: {} }]);
    expect(r.urls).toEqual([
      "https://api.test/v1/items?q=x&per_page=2&page=1",
      "https://api.test/v1/items?q=x&per_page=2&page=2",
      "https://api.test/v1/items?q=x&per_page=2&page=3",
    ]);
    expect(r.stop).toBe("empty_page");
  });

  it("stops at total_pages; peek knows no page past it", () => {
    const p = pages("$.pages");
    const first = p.first(START);
    const step = p.next(page(first, { pages: 2 }, recs(2)));
    expect(requestUrl(nextRequest(step))).toContain("page=2");
    expect(p.peek!(1, 2)).toBeNull();
    expect(stopCode(p.next(page(nextRequest(step), { pages: 2 }, recs(2))))).toBe("last_page");
  });
});

describe("link_header", () => {
  it("follows rel=next (relative links resolved against the page's URL), drops the stream's params", () => {
    const p = createPaginator(plan("link_header", { rel: "next" }));
    const r = drive(p, [
      { body: [], records: recs(1), headers: { link: '<https://api.test/v1/items?page=2>; rel="next"' } },
      {
        body: [],
        records: recs(1),
        headers: { link: '</v1/items?page=3>; rel="next", </v1/items?page=1>; rel="first"' },
      },
      { body: [], records: recs(1), headers: { link: '</v1/items?page=1>; rel="first"' } },
    ]);
    expect(r.urls).toEqual([
      "https://api.test/v1/items?q=x",
      "https://api.test/v1/items?page=2",
      "https://api.test/v1/items?page=3",
    ]);
    expect(r.stop).toBe("no_next_link");
    expect(p.firstPointer?.(START)).toBe("https://api.test/v1/items?q=x");
  });
});

describe("next_url", () => {
  it("follows the URL in the body until it is null, missing or not a string", () => {
    const p = () => createPaginator(plan("next_url", { next: "$.next", hasMore: null, done: null }));
    const r = drive(p(), [{ body: { next: "/v1/items?p=2" }, records: recs(1) }, { body: { next: null } }]);
    expect(r.urls[1]).toBe("https://api.test/v1/items?p=2");
    expect(r.stop).toBe("no_next_url");
    expect(drive(p(), [{ body: { next: 7 } }]).stop).toBe("no_next_url");
    expect(drive(p(), [{ body: {} }]).stop).toBe("no_next_url");
  });
});

describe("values read where the body was parsed (page workers)", () => {
  const cursorPlan = plan("cursor", {
    cursorPath: "$.next",
    cursorHeader: null,
    param: "after",
    in: "query",
    hasMore: "$.more",
    done: "$.done",
  });
  const offsetPlan = plan("offset", {
    offsetParam: "offset",
    limitParam: "limit",
    limit: 2,
    start: 0,
    total: "$.total",
  });
  const pagePlan = plan("page", {
    pageParam: "page",
    start: 1,
    sizeParam: null,
    size: null,
    totalPages: "$.pages",
  });
  const nextPlan = plan("next_url", { next: "$.links.next", hasMore: null, done: "$.last" });

  it("pathsRead: the JSONPaths each paginator reads from a body, unset ones left out", () => {
    expect(pathsRead(cursorPlan)).toEqual(["$.more", "$.done", "$.next"]);
    expect(
      pathsRead(
        plan("cursor", {
          cursorPath: null,
          cursorHeader: "x-cursor",
          param: "c",
          in: "query",
          hasMore: null,
          done: null,
        }),
      ),
    ).toEqual([]);
    expect(pathsRead(offsetPlan)).toEqual(["$.total"]);
    expect(pathsRead({ ...offsetPlan, total: null } as typeof offsetPlan)).toEqual([]);
    expect(pathsRead(pagePlan)).toEqual(["$.pages"]);
    expect(pathsRead(nextPlan)).toEqual(["$.last", "$.links.next"]);
    expect(pathsRead(plan("link_header", { rel: "next" }))).toEqual([]);
    expect(pathsRead(plan("none", {}))).toEqual([]);
  });

  /** A page parsed elsewhere: its body ({}) says nothing, only `values` tell the paginator. */
  const parsed = (req: PageRequest, values: Record<string, unknown>, n = 2): FetchedPage => ({
    ...page(req, {}, recs(n)),
    values: new Map(Object.entries(values)),
  });

  it("cursor: the cursor, has_more and done from the values", () => {
    const p = createPaginator(cursorPlan);
    const first = p.first(START);
    expect(requestUrl(nextRequest(p.next(parsed(first, { "$.next": "c1" }))))).toBe(
      "https://api.test/v1/items?q=x&after=c1",
    );
    expect(stopCode(p.next(parsed(first, { "$.next": "c1", "$.more": false })))).toBe("has_more_false");
    expect(stopCode(p.next(parsed(first, { "$.next": "c1", "$.done": true })))).toBe("done");
  });

  it("offset and page: the total from the values", () => {
    const o = createPaginator(offsetPlan);
    expect(stopCode(o.next(parsed(o.first(START), { "$.total": 2 })))).toBe("total_reached");
    const g = createPaginator(pagePlan);
    expect(stopCode(g.next(parsed(g.first(START), { "$.pages": 1 })))).toBe("last_page");
  });

  it("next_url: the next URL and done from the values", () => {
    const p = createPaginator(nextPlan);
    const first = p.first(START);
    expect(requestUrl(nextRequest(p.next(parsed(first, { "$.links.next": "/v1/items?p=2" }))))).toBe(
      "https://api.test/v1/items?p=2",
    );
    expect(stopCode(p.next(parsed(first, { "$.links.next": "/v1/items?p=2", "$.last": true })))).toBe("done");
  });
});
