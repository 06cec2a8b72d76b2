import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { probeResponse } from "../../src/cli/cmd-init.js";
import { tempDir, writeFiles } from "../config/helpers.js";
import { readJsonl } from "../demo/read-outputs.js";
import { dataset, startApiServer, type TestServer } from "../server/api-server.js";
import { runCli } from "./helpers.js";

let server: TestServer;
beforeAll(async () => {
  server = await startApiServer();
});
afterAll(async () => {
  await server.close();
});

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir("pipelines-init-"));
  server.reset();
});
afterEach(() => cleanup());

const file = (name = "x") => path.join(dir, "pipelines", `${name}.yaml`);
/** The template the scaffold writes for a key found in the URL (kept out of a JS template literal). */
const API_KEY_TEMPLATE = ["$", "{env.API_KEY}"].join("");
const init = (...args: string[]) => runCli(["init", ...args], dir);

interface Generated {
  version: number;
  source: { base_url: string };
  streams: Record<
    string,
    { path: string; params?: Record<string, string>; records: string; paginate: Record<string, unknown> }
  >;
}
const generated = (name = "x") => parse(readFileSync(file(name), "utf8")) as Generated;

describe("pipelines init <name>", () => {
  it("writes a commented pipeline file that validates", async () => {
    const r = await init("x");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(""); // stdout carries only data (`--json`, list, plan, report)
    expect(r.stderr).toContain(`wrote ${path.join("pipelines", "x.yaml")}\n`);
    const text = readFileSync(file(), "utf8");
    // Comments say what to fill in: the editor schema, auth, fields, schema, output.
    expect(text).toMatch(/^# yaml-language-server: \$schema=/);
    expect(text).toMatch(/^ {2}# auth: /m);
    expect(text).toMatch(/^ {4}# fields:/m);
    expect(text).toMatch(/^ {4}# schema: x\.x\.schema\.json/m);
    expect(text).toMatch(/^# output: /m);
    const doc = generated();
    expect(doc.version).toBe(1);
    expect(doc.streams.x).toMatchObject({ path: "/items", records: "$.data", paginate: { type: "none" } });
    const v = await runCli(["validate", "x"], dir);
    expect(v.stderr).toBe("");
    expect(v.code).toBe(0);
    expect(v.stdout).toContain("ok   x (1 stream: x)");
    // Nothing was probed.
    expect(server.requests).toEqual([]);
  });

  it("refuses to overwrite an existing file without --force (exit 2), and overwrites with it", async () => {
    expect((await init("x")).code).toBe(0);
    const before = readFileSync(file(), "utf8");
    const again = await init("x", "--from-url", `${server.url}/none/items`);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(
      `${path.join("pipelines", "x.yaml")} already exists; use --force to overwrite`,
    );
    expect(readFileSync(file(), "utf8")).toBe(before);
    expect(server.requests).toEqual([]);

    const forced = await init("x", "--from-url", `${server.url}/none/items`, "--force");
    expect(forced.code).toBe(0);
    expect(generated().source.base_url).toBe(server.url);
  });

  it("treats an existing <name>.yml as the pipeline: no x.yaml is written beside it", async () => {
    writeFiles(dir, { "pipelines/x.yml": "# mine\n" });
    const r = await init("x");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${path.join("pipelines", "x.yml")} already exists`);
    expect(readdirSync(path.join(dir, "pipelines"))).toEqual(["x.yml"]);

    expect((await init("x", "--force")).code).toBe(0);
    expect(readdirSync(path.join(dir, "pipelines"))).toEqual(["x.yml"]);
    expect(readFileSync(path.join(dir, "pipelines", "x.yml"), "utf8")).toContain("version: 1");
  });

  it("refuses a name that is not a file name (exit 2), writing nothing", async () => {
    const r = await init("../x");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("is not a file name");
    expect(existsSync(path.join(dir, "pipelines"))).toBe(false);
    expect(existsSync(path.join(dir, "x.yaml"))).toBe(false);
  });
});

describe("pipelines init <name> --from-url: guesses from one response, then runs", () => {
  // endpoint → the guessed records path and paginate map
  const cases: [string, string, Record<string, unknown>][] = [
    ["/link/items", "$", { type: "link_header" }],
    [
      "/cursor/items",
      "$.data",
      { type: "cursor", cursor: "$.next_cursor", param: "cursor", has_more: "$.has_more" },
    ],
    ["/next/items", "$.results", { type: "next_url", next: "$.next" }],
    ["/offset/items", "$.items", { type: "offset", limit: 25, total: "$.total" }],
    ["/offset/items?offset=0&limit=40", "$.items", { type: "offset", limit: 40, total: "$.total" }],
    ["/page/items", "$.results", { type: "page", total_pages: "$.total_pages" }],
    ["/page/items?page=1&per_page=30&no_total=1", "$.results", { type: "page" }],
    ["/none/items", "$", { type: "none" }],
  ];

  it.each(cases)("%s → records %s", async (endpoint, records, paginate) => {
    const r = await init("x", "--from-url", `${server.url}${endpoint}`);
    expect(r.stderr).toContain(`probed ${server.url}${endpoint}`);
    expect(r.code).toBe(0);
    const doc = generated();
    const url = new URL(endpoint, server.url);
    expect(doc.source.base_url).toBe(server.url);
    // The stream is named after the URL's last path segment.
    expect(Object.keys(doc.streams)).toEqual(["items"]);
    expect(doc.streams.items.path).toBe(url.pathname);
    expect(doc.streams.items.records).toBe(records);
    expect(doc.streams.items.paginate).toEqual(paginate);
    // Query parameters are kept, except the one pagination sets (offset, page, cursor).
    const kept = Object.fromEntries([...url.searchParams].filter(([k]) => k !== "offset" && k !== "page"));
    expect(doc.streams.items.params ?? {}).toEqual(kept);

    const v = await runCli(["validate", "x"], dir);
    expect(v.code).toBe(0);
    server.reset();
    const run = await runCli(["run", "x"], dir);
    expect(run.stderr).toContain("x: ok");
    expect(run.code).toBe(0);
    expect(readJsonl(path.join(dir, "out", "x", "items.jsonl"))).toEqual(dataset());
    // More than one page was fetched (the server caps pages at 50 records), except without pagination.
    if (paginate.type !== "none") expect(server.requests.length).toBeGreaterThan(4);
  });

  it("keeps the URL's other parameters on every page (cursor: the param name guess `cursor` is what the server reads)", async () => {
    const r = await init("users", "--from-url", `${server.url}/cursor/items?dataset=users&n=60&limit=20`);
    expect(r.code).toBe(0);
    expect(generated("users").streams.items.params).toEqual({ dataset: "users", n: "60", limit: "20" });
    server.reset();
    const run = await runCli(["run", "users"], dir);
    expect(run.code).toBe(0);
    expect(readJsonl(path.join(dir, "out", "users", "items.jsonl"))).toEqual(dataset("users", 60));
    const cursors = server.requests.map((q) => q.query.cursor);
    expect(cursors[0]).toBeUndefined();
    expect(cursors.slice(1).every((c) => typeof c === "string" && c.length > 0)).toBe(true);
    expect(server.requests).toHaveLength(3);
  });

  it("keeps a `${` in a URL value literal: the file needs no env variable and sends the value as is", async () => {
    const literal = ["$", "{env.NOT_SET} & #x: y"].join("");
    const r = await init("x", "--from-url", `${server.url}/none/items?q=${encodeURIComponent(literal)}`);
    expect(r.code).toBe(0);
    const v = await runCli(["validate", "x"], dir);
    expect(v.stderr).toBe("");
    expect(v.code).toBe(0);
    server.reset();
    expect((await runCli(["run", "x"], dir)).code).toBe(0);
    expect(server.requests.map((q) => q.query.q)).toEqual([literal]);
  });

  it("does not show or write the password of a URL with credentials", async () => {
    const url = new URL(`${server.url}/none/items`);
    url.username = "me";
    url.password = "pw-secret-123";
    const r = await init("x", "--from-url", url.toString());
    expect(r.code).toBe(0);
    expect(r.stderr + r.stdout).not.toContain("pw-secret-123");
    expect(readFileSync(file(), "utf8")).not.toContain("pw-secret-123");
  });

  it("moves an api key in the URL's query to auth via an env variable, never into the file", async () => {
    const r = await init("x", "--from-url", `${server.url}/link/items?per_page=10&api_key=key-secret-456`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).not.toContain("key-secret-456");
    const text = readFileSync(file(), "utf8");
    expect(text).not.toContain("key-secret-456");
    expect(generated().source).toMatchObject({
      auth: { type: "api_key", name: "api_key", value: API_KEY_TEMPLATE, in: "query" },
    });
    expect(r.stderr).toContain(API_KEY_TEMPLATE);
    // Without the variable, validate names it; with it, the run sends it on every page.
    const missing = await runCli(["validate", "x"], dir);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("`API_KEY` is not set");
    server.reset();
    const run = await runCli(["run", "x"], dir, { API_KEY: "key-secret-456" });
    expect(run.code, run.stderr).toBe(0);
    expect(server.requests.length).toBeGreaterThan(1);
    expect(server.requests.every((q) => q.query.api_key === "key-secret-456")).toBe(true);
  });
});

describe("pipelines init --from-url failures", () => {
  it("a body that is not JSON: exit 1, quoting the content type and the first bytes; no file", async () => {
    const r = await init("x", "--from-url", `${server.url}/not-json`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`GET ${server.url}/not-json answered 200 with a body that is not JSON`);
    expect(r.stderr).toContain("text/html");
    expect(r.stderr).toContain("<html>Service temporarily unavailable</html>");
    expect(existsSync(file())).toBe(false);
  });

  it("a 404: exit 1, with the status and the body; no file", async () => {
    const r = await init("x", "--from-url", `${server.url}/nothing/here`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`GET ${server.url}/nothing/here answered 404`);
    expect(r.stderr).toContain("not_found");
    expect(r.stderr).toContain("check the URL");
    expect(existsSync(file())).toBe(false);
  });

  it("a 401: exit 1, pointing at --bearer-env and --header", async () => {
    const locked = await startApiServer({ auth: { bearer: "tok" } });
    try {
      const r = await init("x", "--from-url", `${locked.url}/none/items`);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("answered 401");
      expect(r.stderr).toContain("--bearer-env VAR or --header");
    } finally {
      await locked.close();
    }
  });

  it("a Slack-style `{ ok: false, error }` answer: exit 1 with the API's error", async () => {
    const r = await init("x", "--from-url", `${server.url}/error-body`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("with an error in the body: invalid_auth");
    expect(existsSync(file())).toBe(false);
  });

  it("a refused connection: exit 1", async () => {
    const gone = await startApiServer();
    const url = `${gone.url}/none/items`;
    await gone.close();
    const r = await init("x", "--from-url", url);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`GET ${url} failed`);
    expect(existsSync(file())).toBe(false);
  });

  it.each(["not a url", "ftp://127.0.0.1/items", "127.0.0.1/items"])(
    "a bad URL (%s): exit 2, nothing sent",
    async (bad) => {
      const r = await init("x", "--from-url", bad);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--from-url: expected an http(s) URL, found \`${bad}\``);
      expect(existsSync(file())).toBe(false);
      expect(server.requests).toEqual([]);
    },
  );
});

describe("probeResponse", () => {
  const url = new URL("https://api.example.test/v1/things");

  it("finds an OData next link (a bracketed member name)", () => {
    const p = probeResponse(
      { value: [{ id: 1 }, { id: 2 }], "@odata.nextLink": "https://api.example.test/v1/things?$skip=2" },
      {},
      url,
    );
    expect(p.recordsPath).toBe("$.value");
    expect(p.paginate).toBe(`{ type: next_url, next: "$['@odata.nextLink']" }`);
    expect(p.confidence).toBe("high");
  });

  it("prefers page numbers over a total when the body has both", () => {
    const p = probeResponse({ results: [{ id: 1 }], page: 1, total: 500, total_pages: 20 }, {}, url);
    expect(p.paginate).toBe(`{ type: page, total_pages: "$.total_pages" }`);
  });

  it("guesses Stripe-style pagination from has_more and record ids", () => {
    const p = probeResponse(
      { object: "list", data: [{ id: "ch_1" }, { id: "ch_2" }], has_more: true },
      {},
      url,
    );
    expect(p.paginate).toBe(
      `{ type: cursor, cursor: "$.data[-1:].id", param: starting_after, has_more: $.has_more }`,
    );
  });

  it("a total no larger than the page is one page", () => {
    const p = probeResponse({ items: [{ id: 1 }, { id: 2 }], total: 2 }, {}, url);
    expect(p.paginate).toBe("{ type: none }");
  });

  it("suggests error_path for `ok: true` APIs (Slack style)", () => {
    const p = probeResponse(
      { ok: true, messages: [{ ts: "1.2" }], response_metadata: { next_cursor: "abc" } },
      {},
      url,
    );
    expect(p.errorPath).toBe("$.error");
    expect(p.recordsPath).toBe("$.messages");
    expect(p.paginate).toBe(`{ type: cursor, cursor: "$.response_metadata.next_cursor", param: cursor }`);
  });

  it("quotes odd member names in the records path", () => {
    const p = probeResponse({ "the items": [{ id: 1 }, { id: 2 }] }, {}, url);
    expect(p.recordsPath).toBe("$['the items']");
  });
});
