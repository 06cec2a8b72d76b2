/**
 * The next cursor read from a page's last bytes (src/shared/json-tail.ts; read-pages.ts
 * tailGuess): its request leaves before the page is scanned, and the paginator's own answer then
 * keeps it or drops it. Against a loopback API, each case run with the guess and without
 * (PIPELINES_CURSOR_GUESS=off): the same output, the same summary, and the same requests — one
 * request more only where the guess was wrong, which the page never uses.
 */
import diagnostics from "node:diagnostics_channel";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { runPipeline, sourceBlock, useLocalServer, useTempProject } from "./helpers.js";

/** The page the API answers for a cursor (null: the first request). */
let pageFor: (cursor: string | null) => string = () => "{}";
/** The cursors asked for, in order ("-" for the first request). */
let asked: string[] = [];

/** Extra headers of the answer for a cursor (a Link header). */
let headersFor: (cursor: string | null) => Record<string, string> = () => ({});

/** How long the API waits before answering a cursor (ms), and with what status. */
let delayFor: (cursor: string | null) => number = () => 0;
let statusFor: (cursor: string | null) => number = () => 200;

const api = useLocalServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    // The cursor: in the query (`after`), a header (`x-after`), or the JSON body (`after`, `page`).
    const body = chunks.length
      ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>)
      : {};
    const header = req.headers["x-after"];
    const fromBody = body.after ?? body.page;
    const cursor =
      new URL(req.url ?? "/", "http://x").searchParams.get("after") ??
      (typeof header === "string" ? header : null) ??
      (fromBody === undefined ? null : String(fromBody));
    asked.push(cursor ?? "-");
    const answer = () => {
      if (res.destroyed) return;
      const status = statusFor(cursor);
      res
        .writeHead(status, { "content-type": "application/json", ...headersFor(cursor) })
        .end(status === 200 ? pageFor(cursor) : "{}");
    };
    const ms = delayFor(cursor);
    if (ms) setTimeout(answer, ms);
    else answer();
  });
});
const p = useTempProject("pipelines-cursor-guess-");
afterEach(() => {
  delete process.env.PIPELINES_CURSOR_GUESS;
  delete process.env.PIPELINES_PAGE_WORKER_AFTER;
  asked = [];
  statusFor = () => 200;
  headersFor = () => ({});
  delayFor = () => 0;
});

const rec = (i: number) => ({ id: i, name: `record-${i}` });
const records = (page: number, n = 3) => Array.from({ length: n }, (_, k) => rec(page * 10 + k));
/** Page `n` of `last`: its records, and the cursor to the next (null after the last). */
const standard = (last: number) => (c: string | null) => {
  const n = c === null ? 1 : Number(c.slice(1));
  return JSON.stringify({ data: records(n), next: n < last ? `p${n + 1}` : null });
};

/**
 * Pages of `last` whose cursor is written twice: `first(n)` before the records, and the real one
 * after them, behind an object (a parse keeps the later; the tail read sees the first: json-tail.ts).
 */
const twice =
  (last: number, first = (n: number) => `wrong${n}`) =>
  (c: string | null) => {
    const n = c === null ? 1 : Number(c.slice(1));
    const next = n < last ? `"p${n + 1}"` : "null";
    return `{"next":"${first(n)}","data":${JSON.stringify(records(n))},"next":${next},"meta":{"n":${n}}}`;
  };

function pipeline(
  extra = "",
  paginate = "{ type: cursor, cursor: $.next, param: after }",
  records = "$.data",
  source = "",
) {
  p.pipeline(
    "g",
    `${sourceBlock(api.url, source)}\nstreams:\n  s:\n    path: /items\n    records: ${records}\n    paginate: ${paginate}\n${extra}`,
  );
}

/** Runs the pipeline with the guess (`on`) or without; what the API saw and what was written. */
async function runWith(on: boolean, args: string[] = []) {
  asked = [];
  if (on) delete process.env.PIPELINES_CURSOR_GUESS;
  else process.env.PIPELINES_CURSOR_GUESS = "off";
  const r = await runPipeline(p.dir, "g", args);
  let out: string | null = null;
  try {
    out = readFileSync(p.file("out/g/s.jsonl"), "utf8");
  } catch {}
  const s = r.summary.streams[0];
  return {
    code: r.code,
    asked: [...asked],
    out,
    seen: s?.records.seen,
    pages: s?.pages,
    requests: s?.requests,
    stop: s?.stop_reason?.message ?? null,
    error: r.stderr.match(/pagination loop[^\n]*/)?.[0] ?? null,
  };
}

/** Both runs succeed alike (output, summary, requests), the API asked for `asked`. */
async function sameBothWays(asked: string[]) {
  const { off, on } = await both();
  expect(on.code).toBe(0);
  expect(on).toEqual(off);
  expect(on.asked).toEqual(asked);
}

/** Both runs: returns them for the case's own checks of what differs. */
async function both(args: string[] = []) {
  const off = await runWith(false, args);
  const on = await runWith(true, args);
  return { off, on };
}

describe("a cursor guessed from the end of the page", () => {
  /** The three ways of a pointer: a cursor in the body, a next URL in the body, a Link header. */
  const pointers: [string, () => void][] = [
    ["cursor", () => pipeline()],
    [
      "next_url",
      () => {
        pipeline("", "{ type: next_url, next: $.next_url }");
        const cursorPage = pageFor;
        pageFor = (c) => {
          const body = JSON.parse(cursorPage(c)) as { data: unknown[]; next: string | null };
          const next = body.next && `${api.url}/items?after=${body.next}`;
          return JSON.stringify({ data: body.data, next_url: next });
        };
      },
    ],
    [
      "link_header",
      () => {
        pipeline("", "{ type: link_header }");
        const cursorPage = pageFor;
        headersFor = (c): Record<string, string> => {
          const next = (JSON.parse(cursorPage(c)) as { next: string | null }).next;
          return next ? { link: `<${api.url}/items?after=${next}>; rel="next"` } : {};
        };
      },
    ],
  ];

  it.each(pointers)("%s: sends the next request before the page is scanned", async (_, setUp) => {
    pageFor = standard(3);
    setUp();
    const events: string[] = [];
    const onSend = (m: unknown) => {
      const { request } = m as { request: { path: string } };
      events.push(`sent ${new URL(request.path, "http://x").searchParams.get("after") ?? "-"}`);
    };
    // The scan reads the first record's text (the loop guard's comparison): page 1's is id 10.
    const original = Buffer.prototype.toString;
    const spy = vi.spyOn(Buffer.prototype, "toString").mockImplementation(function (
      this: Buffer,
      ...args: unknown[]
    ) {
      const s = original.apply(this, args as Parameters<Buffer["toString"]>);
      if (s.startsWith('{"id":10,')) events.push("scan p1");
      return s;
    });
    diagnostics.subscribe("undici:client:sendHeaders", onSend);
    try {
      for (const on of [false, true]) {
        events.length = 0;
        const r = await runWith(on);
        expect(r.code).toBe(0);
        const order = events.filter((e) => e === "sent -" || e === "sent p2" || e === "scan p1").slice(0, 3);
        expect(order, events.join("\n")).toEqual(
          on ? ["sent -", "sent p2", "scan p1"] : ["sent -", "scan p1", "sent p2"],
        );
      }
    } finally {
      spy.mockRestore();
      diagnostics.unsubscribe("undici:client:sendHeaders", onSend);
    }
  });

  it("asks for the same pages and writes the same records as without it", async () => {
    pipeline();
    pageFor = standard(5);
    const { off, on } = await both();
    expect(on.code).toBe(0);
    expect(on).toEqual(off);
    expect(on.asked).toEqual(["-", "p2", "p3", "p4", "p5"]);
    expect(on.seen).toBe(15);
  });

  it("reads a cursor written before the records, and has_more after them", async () => {
    pipeline("", "{ type: cursor, cursor: $.next, param: after, has_more: $.more }");
    pageFor = (c) => {
      const n = c === null ? 1 : Number(c.slice(1));
      return `{"next": "p${n + 1}", "data": ${JSON.stringify(records(n))}, "more": ${n < 4}}`;
    };
    await sameBothWays(["-", "p2", "p3", "p4"]);
  });

  it("next URLs written before the records (Django REST framework's pages)", async () => {
    pipeline("", "{ type: next_url, next: $.next }", "$.results");
    pageFor = (c) => {
      const n = c === null ? 1 : Number(c.slice(1));
      const next = n < 4 ? JSON.stringify(`${api.url}/items?after=p${n + 1}`) : "null";
      return `{"count":12,"next":${next},"previous":null,"results":${JSON.stringify(records(n))}}`;
    };
    await sameBothWays(["-", "p2", "p3", "p4"]);
  });

  it("Link headers, the body an array of records (GitHub's pages)", async () => {
    pipeline("", "{ type: link_header }", "$");
    pageFor = (c) => JSON.stringify(records(c === null ? 1 : Number(c.slice(1))));
    headersFor = (c): Record<string, string> => {
      const n = c === null ? 1 : Number(c.slice(1));
      return n < 4 ? { link: `<${api.url}/items?after=p${n + 1}>; rel="next"` } : {};
    };
    await sameBothWays(["-", "p2", "p3", "p4"]);
  });

  it("sends nothing more for an empty page that still has a cursor", async () => {
    pipeline("", "{ type: cursor, cursor: $.next, param: after, max_empty_pages: 2 }");
    pageFor = (c) => {
      const n = c === null ? 1 : Number(c.slice(1));
      return JSON.stringify({ data: n <= 2 ? records(n) : [], next: `p${n + 1}` });
    };
    const { off, on } = await both();
    expect(on).toEqual(off);
    expect(on.asked).toEqual(["-", "p2", "p3", "p4"]);
    expect(on.stop).toMatch(/empty pages/);
  });

  it("sends nothing more for a cursor seen before (a loop), nor past max_pages", async () => {
    pipeline();
    pageFor = (c) => JSON.stringify({ data: records(c === null ? 1 : 2), next: "same" });
    const loop = await both();
    expect(loop.on).toEqual(loop.off);
    expect(loop.on.code).not.toBe(0);
    expect(loop.on.asked).toEqual(["-", "same"]);
    expect(loop.on.error).toMatch(/pagination loop/);

    pipeline("", "{ type: cursor, cursor: $.next, param: after, max_pages: 2 }");
    pageFor = standard(5);
    const max = await both();
    expect(max.on).toEqual(max.off);
    expect(max.on.asked).toEqual(["-", "p2"]);
  });

  it("with concurrency: 1, asks for no page the paginator did not ask for", async () => {
    pipeline("", undefined, undefined, "concurrency: 1");
    pageFor = twice(3);
    const { off, on } = await both();
    expect(on).toEqual(off);
    expect(on.asked).toEqual(["-", "p2", "p3"]);
  });

  it("a wrong guess costs one request, and its page is never used", async () => {
    pipeline();
    // The cursor written twice: before the records, and again after them behind an object (a
    // parse keeps the later one; the tail read sees the first: json-tail.ts).
    pageFor = twice(3);
    const { off, on } = await both();
    expect(on.code).toBe(0);
    expect(on.out).toBe(off.out);
    expect(on.seen).toBe(off.seen);
    expect(off.asked).toEqual(["-", "p2", "p3"]);
    // Each page's guess went out beside its real request; the last page's (its real answer is a
    // stop) is withdrawn when reading ends, and may or may not have reached the API by then.
    expect(on.asked.filter((c) => !c.startsWith("wrong"))).toEqual(off.asked);
    expect(on.asked).toEqual(expect.arrayContaining(["wrong1", "wrong2"]));
    expect(on.asked.filter((c) => c.startsWith("wrong")).length).toBeLessThanOrEqual(3);
  });

  it("a wrong guess is withdrawn: never retried", async () => {
    pipeline();
    pageFor = twice(6);
    // The wrong guesses' answer: a 503, which a page still wanted is asked for again (up to 4
    // times, 10 ms apart), within the run's 6 pages of 60 ms each.
    statusFor = (c) => (c?.startsWith("wrong") ? 503 : 200);
    delayFor = (c) => (c?.startsWith("wrong") ? 20 : 60);
    const on = await runWith(true);
    expect(on.code).toBe(0);
    expect(on.seen).toBe(18);
    const guessed = on.asked.filter((c) => c.startsWith("wrong"));
    expect(guessed.length).toBeGreaterThan(0);
    expect(new Set(guessed).size).toBe(guessed.length);
  });

  it("a cursor sent in a header or the body: a wrong guess, alike in URL, is still dropped", async () => {
    pageFor = twice(3, () => "p9");
    pipeline("", "{ type: cursor, cursor: $.next, param: X-After, in: header }");
    const header = await both();
    expect(header.on.code).toBe(0);
    expect(header.on.out).toBe(header.off.out);
    expect(header.on.seen).toBe(9);
    pipeline(
      "    method: POST\n    body: { q: x }\n",
      "{ type: cursor, cursor: $.next, param: after, in: body }",
    );
    const body = await both();
    expect(body.on.code).toBe(0);
    expect(body.on.out).toBe(body.off.out);
    expect(body.on.seen).toBe(9);
  });

  it("page numbers sent in the body, guessed ahead: each guess is its own request", async () => {
    // Before request keys held the body, every guess of page N had page 2's key (one URL): the
    // pages came back out of order and some twice (offset and page with `in: body`).
    pipeline("    method: POST\n    body: { q: x }\n", "{ type: page, page_param: page, in: body }");
    pageFor = (c) => JSON.stringify({ data: Number(c) <= 12 ? records(Number(c)) : [] });
    const r = await runWith(true);
    expect(r.code).toBe(0);
    const ids = (r.out ?? "")
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { id: number }).id);
    expect(ids).toEqual(Array.from({ length: 12 }, (_, k) => [0, 1, 2].map((j) => (k + 1) * 10 + j)).flat());
  });

  it("a next URL the paginator refuses: the same error as without the guess", async () => {
    pipeline("", "{ type: next_url, next: $.next }");
    pageFor = (c) =>
      JSON.stringify({ data: records(c === null ? 1 : 2), next: c === null ? "http://[x" : null });
    const { off, on } = await both();
    expect(on.code).not.toBe(0);
    expect(on).toEqual(off);
  });

  it("pages handed to a page worker thread: the same pages and output", async () => {
    process.env.PIPELINES_PAGE_WORKER_AFTER = "1";
    pipeline("", undefined, undefined, "workers: 2");
    pageFor = standard(6);
    const { off, on } = await both();
    expect(on.code).toBe(0);
    expect(on).toEqual(off);
    expect(on.asked).toEqual(["-", "p2", "p3", "p4", "p5", "p6"]);
  });

  it("a page the same as the one before: the same loop error with the guess (its request, if it left, withdrawn)", async () => {
    pipeline();
    pageFor = (c) => JSON.stringify({ data: records(1), next: `c${(c ?? "").length}` });
    const { off, on } = await both();
    expect(on.code).toBe(off.code);
    expect(on.error).toBe(off.error);
    expect(on.error).toMatch(/pagination loop/);
    expect(off.asked).toHaveLength(2);
    // The guess for page 3 left before the comparison stopped the run (withdrawn then: it may
    // not have reached the API).
    expect(on.asked.slice(0, 2)).toEqual(off.asked);
    expect(on.asked.length).toBeLessThanOrEqual(3);
  });
});
