import { existsSync, readdirSync } from "node:fs";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { dataset, startApiServer, type TestServer } from "../server/api-server.js";
import { listFiles, readJsonl, runPipeline, sourceBlock, type TempProject, tempProject } from "./helpers.js";

const N = 237;
let server: TestServer;
let project: TempProject;

beforeAll(async () => {
  server = await startApiServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
  project = tempProject();
});
afterEach(() => project.cleanup());

/** A one-stream pipeline `p` whose stream `items` has these YAML lines. */
function onePipeline(streamLines: string[], sourceExtra = "", baseUrl = server.url): string {
  return [
    sourceBlock(baseUrl, sourceExtra),
    "streams:",
    "  items:",
    ...streamLines.map((l) => `    ${l}`),
    "",
  ].join("\n");
}

const out = (stream = "items", pipeline = "p") => project.file(`out/${pipeline}/${stream}.jsonl`);

interface Style {
  name: string;
  stream: string[];
  stop: string;
  /** Pages the run must request (every page once). */
  pages?: number;
}

const STYLES: Style[] = [
  { name: "none", stream: ["path: /none/items", `params: { n: ${N} }`], stop: "single_page", pages: 1 },
  {
    name: "cursor in the body, has_more",
    stream: [
      "path: /cursor/items",
      `params: { n: ${N}, limit: 40 }`,
      "records: $.data",
      "paginate: { type: cursor, cursor: $.next_cursor, has_more: $.has_more }",
    ],
    stop: "has_more_false",
    pages: 6,
  },
  {
    name: "cursor, last cursor an empty string",
    stream: [
      "path: /cursor/items",
      `params: { n: ${N}, limit: 40, cursor_style: empty_string }`,
      "records: $.data",
      "paginate: { type: cursor, cursor: $.next_cursor }",
    ],
    stop: "no_cursor",
    pages: 6,
  },
  {
    name: "cursor_header",
    stream: [
      "path: /cursor-header/items",
      `params: { n: ${N}, limit: 50 }`,
      "paginate: { type: cursor, cursor_header: X-Next-Cursor }",
    ],
    stop: "no_cursor",
    pages: 5,
  },
  {
    name: "cursor in a POST body",
    stream: [
      "path: /cursor-body/search",
      "method: POST",
      `body: { limit: 30, n: ${N} }`,
      "records: $.results",
      "paginate: { type: cursor, cursor: $.paging.next.after, in: body, param: cursor }",
    ],
    stop: "no_cursor",
    pages: 8,
  },
  {
    name: "offset, server caps the page at 50 while 100 are asked, no total",
    stream: [
      "path: /offset/items",
      `params: { n: ${N} }`,
      "records: $.items",
      "paginate: { type: offset, limit: 100 }",
    ],
    stop: "empty_page",
    pages: 6,
  },
  {
    name: "offset with total",
    stream: [
      "path: /offset/items",
      `params: { n: ${N} }`,
      "records: $.items",
      "paginate: { type: offset, limit: 100, total: $.total }",
    ],
    stop: "total_reached",
    pages: 5,
  },
  {
    name: "offset with a null total (estimate)",
    stream: [
      "path: /offset/items",
      `params: { n: ${N}, total: estimate }`,
      "records: $.items",
      "paginate: { type: offset, limit: 100, total: $.total }",
    ],
    stop: "empty_page",
    pages: 6,
  },
  {
    name: "page with total_pages",
    stream: [
      "path: /page/items",
      `params: { n: ${N} }`,
      "records: $.results",
      "paginate: { type: page, size_param: per_page, size: 30, total_pages: $.total_pages }",
    ],
    stop: "last_page",
    pages: 8,
  },
  {
    name: "page without total_pages",
    stream: [
      "path: /page/items",
      `params: { n: ${N}, no_total: 1 }`,
      "records: $.results",
      "paginate: { type: page, size_param: per_page, size: 30 }",
    ],
    stop: "empty_page",
    pages: 9,
  },
  {
    name: "link_header, absolute links",
    stream: ["path: /link/items", `params: { n: ${N}, per_page: 30 }`, "paginate: { type: link_header }"],
    stop: "no_next_link",
    pages: 8,
  },
  {
    name: "link_header, relative links",
    stream: [
      "path: /link/items",
      `params: { n: ${N}, per_page: 30, relative: 1 }`,
      "paginate: { type: link_header }",
    ],
    stop: "no_next_link",
    pages: 8,
  },
  {
    name: "link_header, tricky Link syntax",
    stream: [
      "path: /link/items",
      `params: { n: ${N}, per_page: 30, link_style: tricky }`,
      "paginate: { type: link_header }",
    ],
    stop: "no_next_link",
    pages: 8,
  },
  {
    name: "next_url, absolute",
    stream: [
      "path: /next/items",
      `params: { n: ${N}, limit: 50 }`,
      "records: $.results",
      "paginate: { type: next_url, next: $.next }",
    ],
    stop: "no_next_url",
    pages: 5,
  },
  {
    name: "next_url, path-relative",
    stream: [
      "path: /next/items",
      `params: { n: ${N}, limit: 50, relative: 1 }`,
      "records: $.results",
      "paginate: { type: next_url, next: $.next }",
    ],
    stop: "no_next_url",
    pages: 5,
  },
  {
    name: "next_url, query-relative",
    stream: [
      "path: /next/items",
      `params: { n: ${N}, limit: 50, relative: query }`,
      "records: $.results",
      "paginate: { type: next_url, next: $.next }",
    ],
    stop: "no_next_url",
    pages: 5,
  },
];

describe("every pagination style writes exactly the dataset", () => {
  it.each(STYLES)("$name", async (style) => {
    project.pipeline("p", onePipeline(style.stream));
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    const s = r.stream("items");
    expect(s.status).toBe("ok");
    expect(s.stop_reason?.code).toBe(style.stop);
    expect(readJsonl(out())).toEqual(dataset("items", N));
    expect(s.records.written).toBe(N);
    if (style.pages !== undefined) {
      expect(s.pages).toBe(style.pages);
      // Offset and page streams may fetch pages ahead (source.concurrency): some past the end.
      if (/^(offset|page)/.test(style.name)) {
        expect(server.requests.length).toBeGreaterThanOrEqual(style.pages);
        // Every page was requested once.
        const urls = server.requests.map((q) => q.url);
        expect(new Set(urls).size).toBe(urls.length);
      } else expect(server.requests.length).toBe(style.pages);
    }
    // Every request was answered with a 200: no page was asked with a bad cursor or param.
    expect(server.requests.map((q) => q.status)).toEqual(server.requests.map(() => 200));
    // Nothing but the committed output in out/.
    expect(listFiles(project.file("out"))).toEqual(["p/items.jsonl"]);
  });
});

/** No file under the real output name and no temporary file left in the output folder. */
function expectNothingCommitted() {
  expect(existsSync(out())).toBe(false);
  expect(listFiles(project.file("out")).filter((f) => !f.endsWith(".invalid.jsonl"))).toEqual([]);
}

describe("empty pages", () => {
  const slack = ["path: /cursor/items", `params: { n: ${N}, limit: 50, empty_pages: 1 }`, "records: $.data"];

  it("follows Slack-style empty pages that carry a cursor and collects every record", async () => {
    project.pipeline("p", onePipeline([...slack, "paginate: { type: cursor, cursor: $.next_cursor }"]));
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(out())).toEqual(dataset("items", N));
    const s = r.stream("items");
    // 5 real pages, one empty page after the first, two empty pages at the end.
    expect(s.pages).toBe(8);
    expect(s.stop_reason).toMatchObject({ code: "no_cursor" });
    expect(s.stop_reason?.message).toContain("$.next_cursor");
    expect(s.warnings).toEqual([]);
  });

  it("max_empty_pages: 1 stops at the first empty page with a warning", async () => {
    project.pipeline(
      "p",
      onePipeline([...slack, "paginate: { type: cursor, cursor: $.next_cursor, max_empty_pages: 1 }"]),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    const s = r.stream("items");
    expect(s.stop_reason).toMatchObject({ code: "max_empty_pages", warning: true });
    expect(s.warnings.join("\n")).toContain("max_empty_pages 1");
    expect(s.pages).toBe(2);
    expect(readJsonl(out())).toEqual(dataset("items", N).slice(0, 50));
    expect(r.stderr).toContain("warning");
  });

  it("stop_on_empty_page: true ends at the first empty page", async () => {
    project.pipeline(
      "p",
      onePipeline([...slack, "paginate: { type: cursor, cursor: $.next_cursor, stop_on_empty_page: true }"]),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    const s = r.stream("items");
    expect(s.stop_reason).toMatchObject({ code: "empty_page" });
    expect(s.pages).toBe(2);
    expect(server.requests).toHaveLength(2);
    expect(readJsonl(out())).toEqual(dataset("items", N).slice(0, 50));
  });
});

describe("pagination failures", () => {
  it("a cursor sent twice is a pagination loop that names it; nothing is committed", async () => {
    project.pipeline(
      "p",
      onePipeline([
        "path: /cursor/items",
        `params: { n: ${N}, limit: 20, loop: 1 }`,
        "records: $.data",
        "paginate: { type: cursor, cursor: $.next_cursor, has_more: $.has_more }",
      ]),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code).toBe(1);
    const s = r.stream("items");
    expect(s.status).toBe("failed");
    expect(s.error?.kind).toBe("pagination_loop");
    expect(s.error?.message).toContain("pagination loop");
    // The cursor page 2 gave, which page 3 gave again.
    const repeated = server.requests[2].query.cursor;
    expect(repeated).toMatch(/[+/]/);
    expect(s.error?.message).toContain(repeated);
    expect(server.requests).toHaveLength(3);
    expect(s.output).toBeNull();
    expectNothingCommitted();
  });

  it("a next link to another origin fails the stream naming the origin and allowed_hosts", async () => {
    const other = await startApiServer({ host: "127.0.0.2" });
    try {
      project.pipeline(
        "p",
        onePipeline([
          "path: /link/items",
          `params: { n: ${N}, per_page: 50, cross_origin: "${other.origin}" }`,
          "paginate: { type: link_header }",
        ]),
      );
      const r = await runPipeline(project.dir, "p");
      expect(r.code).toBe(1);
      const s = r.stream("items");
      expect(s.error?.kind).toBe("cross_origin");
      expect(s.error?.message).toContain(other.origin);
      expect(s.error?.message).toContain("allowed_hosts");
      expect(other.requests).toHaveLength(0);
      expectNothingCommitted();
    } finally {
      await other.close();
    }
  });

  it("follows a next link to an origin in allowed_hosts, without the credentials", async () => {
    const api = await startApiServer({ auth: { bearer: "tok-cross-origin-123" } });
    const other = await startApiServer({ host: "127.0.0.2" });
    try {
      project.pipeline(
        "p",
        onePipeline(
          [
            "path: /link/items",
            `params: { n: ${N}, per_page: 50, cross_origin: "${other.origin}" }`,
            "paginate: { type: link_header }",
          ],
          `auth: { type: bearer, token: tok-cross-origin-123 }\nallowed_hosts: ["${other.origin}"]`,
          api.url,
        ),
      );
      const r = await runPipeline(project.dir, "p");
      expect(r.code, r.stderr).toBe(0);
      expect(readJsonl(out())).toEqual(dataset("items", N));
      // Pages 1 and 2 from the API (with its token), pages 3..5 from the other origin.
      expect(api.requests.map((q) => q.query.page ?? "1")).toEqual(["1", "2"]);
      expect(api.requests.every((q) => q.headers.authorization === "Bearer tok-cross-origin-123")).toBe(true);
      expect(other.requests.map((q) => q.query.page)).toEqual(["3", "4", "5"]);
      for (const q of other.requests) {
        expect(q.headers.authorization).toBeUndefined();
        expect(JSON.stringify(q)).not.toContain("tok-cross-origin-123");
      }
    } finally {
      await other.close();
      await api.close();
    }
  });

  it("error_path turns a 200 with an error field into a failure with the API's message", async () => {
    project.pipeline("p", onePipeline(["path: /error-body", "error_path: $.error"]));
    const r = await runPipeline(project.dir, "p");
    expect(r.code).toBe(1);
    const s = r.stream("items");
    expect(s.error?.kind).toBe("api_error");
    expect(s.error?.message).toContain("invalid_auth");
    expect(s.error?.message).toContain("/error-body");
    expectNothingCommitted();
  });

  it("a body that is not JSON fails with the status, the URL and its first bytes", async () => {
    project.pipeline("p", onePipeline(["path: /not-json"]));
    const r = await runPipeline(project.dir, "p");
    expect(r.code).toBe(1);
    const s = r.stream("items");
    expect(s.error?.kind).toBe("not_json");
    expect(s.error?.message).toContain("200");
    expect(s.error?.message).toContain(`${server.url}/not-json`);
    expect(s.error?.message).toContain("<html>Service temporarily unavailable</html>");
    // Not retried: the answer was complete.
    expect(server.requests).toHaveLength(1);
    expectNothingCommitted();
  });

  it.each([
    ["with Content-Length", ""],
    ["chunked", ", chunked: 1"],
  ])("a body over max_response_size fails (%s)", async (_name, chunked) => {
    project.pipeline(
      "p",
      onePipeline([`path: /huge`, `params: { bytes: 300000${chunked} }`], "max_response_size: 100KiB"),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code).toBe(1);
    const s = r.stream("items");
    expect(s.error?.kind).toBe("too_large");
    expect(s.error?.message).toContain("max_response_size");
    expect(server.requests).toHaveLength(1);
    expectNothingCommitted();
  });

  it("a body just under max_response_size is read", async () => {
    project.pipeline(
      "p",
      onePipeline([`path: /huge`, `params: { bytes: 100000, chunked: 1 }`], "max_response_size: 100KiB"),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("items").records.written).toBeGreaterThan(90);
  });
});

describe("stopping early", () => {
  const cursorStream = [
    "path: /cursor/items",
    `params: { n: ${N}, limit: 25 }`,
    "records: $.data",
    "paginate: { type: cursor, cursor: $.next_cursor, has_more: $.has_more }",
  ];

  it("--limit stops after that many records and commits them", async () => {
    project.pipeline("p", onePipeline(cursorStream));
    const r = await runPipeline(project.dir, "p", ["--limit", "60"]);
    expect(r.code, r.stderr).toBe(0);
    const s = r.stream("items");
    expect(s.stop_reason?.code).toBe("limit");
    expect(readJsonl(out())).toEqual(dataset("items", N).slice(0, 60));
    expect(server.requests).toHaveLength(3);
  });

  it("--max-pages stops after that many pages", async () => {
    project.pipeline("p", onePipeline(cursorStream));
    const r = await runPipeline(project.dir, "p", ["--max-pages", "2"]);
    expect(r.code, r.stderr).toBe(0);
    const s = r.stream("items");
    expect(s.stop_reason?.code).toBe("max_pages");
    expect(s.pages).toBe(2);
    expect(readJsonl(out())).toEqual(dataset("items", N).slice(0, 50));
    expect(server.requests).toHaveLength(2);
  });

  it("max_pages in the file caps the pages too", async () => {
    project.pipeline(
      "p",
      onePipeline([
        "path: /page/items",
        `params: { n: ${N} }`,
        "records: $.results",
        "paginate: { type: page, size_param: per_page, size: 10, max_pages: 3 }",
      ]),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("items").stop_reason?.code).toBe("max_pages");
    expect(readJsonl(out())).toEqual(dataset("items", N).slice(0, 30));
  });
});

describe("requests", () => {
  it("an api_key in the query is added again to Link and next URLs", async () => {
    const api = await startApiServer({
      auth: { apiKey: { name: "api_key", value: "k3y-in-query", in: "query" } },
    });
    try {
      const auth = "auth: { type: api_key, name: api_key, value: k3y-in-query, in: query }";
      project.pipeline(
        "p",
        [
          sourceBlock(api.url, auth),
          "streams:",
          "  links:",
          "    path: /link/items",
          `    params: { n: ${N}, per_page: 50, relative: 1 }`,
          "    paginate: { type: link_header }",
          "  nexts:",
          "    path: /next/items",
          `    params: { n: ${N}, limit: 50 }`,
          "    records: $.results",
          "    paginate: { type: next_url, next: $.next }",
          "",
        ].join("\n"),
      );
      const r = await runPipeline(project.dir, "p");
      expect(r.code, r.stderr).toBe(0);
      expect(readJsonl(out("links"))).toEqual(dataset("items", N));
      expect(readJsonl(out("nexts"))).toEqual(dataset("items", N));
      expect(api.requests).toHaveLength(10);
      for (const q of api.requests) {
        expect(q.status).toBe(200);
        expect(q.query.api_key).toBe("k3y-in-query");
        expect(q.url.match(/api_key=/g)).toHaveLength(1);
      }
    } finally {
      await api.close();
    }
  });

  it("Link and next URLs replace the query: the stream's params are not added twice", async () => {
    project.pipeline(
      "p",
      onePipeline([
        "path: /next/items",
        `params: { n: ${N}, limit: 50, extra: a }`,
        "records: $.results",
        "paginate: { type: next_url, next: $.next }",
      ]),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(server.requests.length).toBe(5);
    for (const q of server.requests) expect(q.url.match(/extra=/g)).toHaveLength(1);
    // Page 2 asks for offset 50 as the next URL said, not the first request's offset.
    expect(server.requests[1].query.offset).toBe("50");
  });

  it("bracket parameters (page[size], filter[x]) are sent as named, by params and by the paginator", async () => {
    project.pipeline(
      "p",
      onePipeline([
        "path: /echo",
        `params: { "page[size]": 10, "filter[name]": "a b&c" }`,
        `paginate: { type: page, page_param: "page[number]", max_pages: 2 }`,
      ]),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(server.requests.map((q) => q.query)).toEqual([
      { "page[size]": "10", "filter[name]": "a b&c", "page[number]": "1" },
      { "page[size]": "10", "filter[name]": "a b&c", "page[number]": "2" },
    ]);
  });

  it.each([
    ["/echo/v1", "/things"],
    ["/echo/v1/", "/things"],
    ["/echo/v1", "things"],
  ])("base_url with a base path (%s + %s) keeps it", async (basePath, streamPath) => {
    project.pipeline("p", onePipeline([`path: ${streamPath}`], "", server.url + basePath));
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(server.requests.map((q) => q.path)).toEqual(["/echo/v1/things"]);
  });

  it("a POST body cursor is a top-level field; the rest of the body is kept", async () => {
    project.pipeline(
      "p",
      onePipeline([
        "path: /cursor-body/search",
        "method: POST",
        `body: { limit: 50, n: ${N} }`,
        "records: $.results",
        "paginate: { type: cursor, cursor: $.paging.next.after, in: body }",
      ]),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    const bodies = server.requests.map((q) => JSON.parse(q.body));
    expect(bodies[0]).toEqual({ limit: 50, n: N });
    expect(bodies[1]).toEqual({ limit: 50, n: N, cursor: expect.any(String) });
    expect(server.requests.every((q) => q.headers["content-type"]?.startsWith("application/json"))).toBe(
      true,
    );
  });
});

describe("a pipeline with several streams", () => {
  it("a failed stream does not stop the others; exit code 1, the others are committed", async () => {
    project.pipeline(
      "p",
      [
        sourceBlock(server.url),
        "streams:",
        "  good:",
        "    path: /cursor/items",
        `    params: { n: ${N}, limit: 25 }`,
        "    records: $.data",
        "    paginate: { type: cursor, cursor: $.next_cursor }",
        "  bad:",
        "    path: /status/404",
        "  also_good:",
        "    path: /offset/items",
        `    params: { n: ${N} }`,
        "    records: $.items",
        "    paginate: { type: offset, limit: 50, total: $.total }",
        "",
      ].join("\n"),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code).toBe(1);
    expect(r.summary.status).toBe("failed");
    expect(r.stream("bad").status).toBe("failed");
    expect(r.stream("good").status).toBe("ok");
    expect(r.stream("also_good").status).toBe("ok");
    expect(readJsonl(out("good"))).toEqual(dataset("items", N));
    expect(readJsonl(out("also_good"))).toEqual(dataset("items", N));
    expect(existsSync(out("bad"))).toBe(false);
    expect(readdirSync(project.file("out/p")).sort()).toEqual(["also_good.jsonl", "good.jsonl"]);
  });

  it("--json prints a parseable summary on stdout; progress goes to stderr only", async () => {
    project.pipeline(
      "p",
      [
        sourceBlock(server.url),
        "streams:",
        "  a:",
        "    path: /page/items",
        `    params: { n: ${N} }`,
        "    records: $.results",
        "    paginate: { type: page, size_param: per_page, size: 50, total_pages: $.total_pages }",
        "  b:",
        "    path: /none/items",
        "    params: { n: 7 }",
        "",
      ].join("\n"),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    // The whole of stdout is the JSON document.
    expect(() => JSON.parse(r.stdout)).not.toThrow();
    expect(r.summary.pipeline).toBe("p");
    expect(r.summary.status).toBe("ok");
    expect(r.stream("a")).toMatchObject({
      status: "ok",
      pages: 5,
      requests: 5,
      stop_reason: { code: "last_page" },
      records: { written: N },
    });
    expect(r.stream("b")).toMatchObject({ pages: 1, requests: 1, stop_reason: { code: "single_page" } });
    expect(r.stderr).toContain("[p/a]");
    expect(r.stderr).toContain("[p/b]");
    expect(r.stdout).not.toContain("[p/");
  });
});

describe("jsonpath selection", () => {
  it("records from a nested path, fields by JSONPath", async () => {
    project.pipeline(
      "p",
      onePipeline([
        "path: /cursor/items",
        `params: { n: 30, limit: 50 }`,
        'records: "$.data[*]"',
        "fields:",
        "  id: $.id",
        "  login: $['owner']['login']",
        '  tags: "$.tags[*]"',
        '  first_tag: "$.tags[0]"',
        // A negative index counts from the end, on the direct path and through jsonpath-plus.
        '  last_tag: "$.tags[-1]"',
        '  second_last_tag: "$.tags[-2]"',
        '  last_tags_deep: "$..tags[-1]"',
        "paginate: { type: cursor, cursor: $.next_cursor }",
      ]),
    );
    const r = await runPipeline(project.dir, "p");
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(out())).toEqual(
      dataset("items", 30).map((x) => ({
        id: x.id,
        login: (x.owner as { login: string }).login,
        tags: x.tags,
        first_tag: (x.tags as string[])[0] ?? null,
        last_tag: (x.tags as string[]).at(-1) ?? null,
        second_last_tag: (x.tags as string[]).at(-2) ?? null,
        last_tags_deep: (x.tags as string[]).slice(-1),
      })),
    );
  });
});
