import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  DEFAULT_DATASET_SIZE,
  dataset,
  type FaultKind,
  MAX_PAGE_SIZE,
  type RateLimitStyle,
  type ServerOptions,
  startApiServer,
  type TestServer,
} from "./api-server.js";

// Servers started inside a test are closed after it; `shared` serves the stateless endpoint tests.
const started: TestServer[] = [];
async function start(opts?: ServerOptions): Promise<TestServer> {
  const s = await startApiServer(opts);
  started.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

let shared: TestServer;
beforeAll(async () => {
  shared = await startApiServer();
});
afterAll(async () => {
  await shared.close();
});

type Item = Record<string, unknown> & { id: number };
/** The fake API's bodies as these tests read them: a list, or an object with some of these fields. */
interface Body extends Array<Item> {
  data: Item[];
  items: Item[];
  results: Item[];
  total: number | null;
  total_pages: number;
  count: number;
  has_more: boolean;
  next_cursor: string;
  next: string;
  previous: string | null;
  paging: { next?: { after: string } };
  access_token: string;
  refresh_token: string;
  error: string;
  error_description: string;
  headers: Record<string, string>;
}

async function getJson(url: string, init?: RequestInit): Promise<{ res: Response; body: Body }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { res, body: text ? JSON.parse(text) : undefined };
}

/** RFC 8288 parser good enough for the server's links: quoted commas, multi-token rels. */
function parseLink(header: string): Record<string, { url: string; params: Record<string, string> }> {
  const out: Record<string, { url: string; params: Record<string, string> }> = {};
  let i = 0;
  while (i < header.length) {
    const lt = header.indexOf("<", i);
    if (lt < 0) break;
    const gt = header.indexOf(">", lt);
    const url = header.slice(lt + 1, gt);
    const params: Record<string, string> = {};
    i = gt + 1;
    while (i < header.length) {
      const m = /^\s*;\s*([^=\s;,]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;,\s]*))/.exec(header.slice(i));
      if (!m) break;
      params[m[1].toLowerCase()] = m[2] ?? m[3];
      i += m[0].length;
    }
    const comma = header.indexOf(",", i);
    i = comma < 0 ? header.length : comma + 1;
    for (const rel of (params.rel ?? "").split(/\s+/).filter(Boolean)) out[rel] = { url, params };
  }
  return out;
}

describe("dataset", () => {
  it("is deterministic, ordered, and the same prefix for any size", () => {
    const all = dataset();
    expect(all).toHaveLength(DEFAULT_DATASET_SIZE);
    expect(all).toEqual(dataset());
    expect(all.map((r) => r.id)).toEqual(Array.from({ length: 237 }, (_, k) => k + 1));
    expect(all[0]).toMatchObject({ id: 1, name: "item-1", email: "item-1@example.com" });
    expect(all[0]).toHaveProperty("owner.login");
    expect(dataset("items", 10)).toEqual(all.slice(0, 10));
    for (let k = 1; k < all.length; k++) {
      expect((all[k].updated_at as string) > (all[k - 1].updated_at as string)).toBe(true);
    }
    expect(dataset("users", 1)[0].name).toBe("user-1");
  });

  it("dirty dataset breaks types and adds a field", () => {
    const dirty = dataset("dirty", 50);
    expect(typeof dirty[9].price).toBe("string");
    expect(dirty[24]).toHaveProperty("legacy_code", "L25");
    expect(typeof dirty[8].price).toBe("number");
  });
});

describe("pagination endpoints", () => {
  it("/none/items returns the whole dataset; n overrides its size", async () => {
    expect((await getJson(`${shared.url}/none/items`)).body).toEqual(dataset());
    expect((await getJson(`${shared.url}/none/items?n=10`)).body).toEqual(dataset("items", 10));
    expect((await getJson(`${shared.url}/none/items?n=0`)).body).toEqual([]);
  });

  it("since filters updated_at >= since", async () => {
    const all = dataset();
    const since = all[100].updated_at as string;
    const { body } = await getJson(`${shared.url}/none/items?since=${encodeURIComponent(since)}`);
    expect(body).toEqual(all.slice(100));
    const { body: off } = await getJson(`${shared.url}/offset/items?since=${since}&offset=0&limit=5`);
    expect(off).toEqual({ items: all.slice(100, 105), total: 137 });
  });

  it("rejects bad numeric params with 400", async () => {
    const r = await getJson(`${shared.url}/offset/items?limit=abc`);
    expect(r.res.status).toBe(400);
    expect(r.body).toMatchObject({ error: "invalid_parameter", parameter: "limit" });
    expect((await getJson(`${shared.url}/page/items?page=0`)).res.status).toBe(400);
  });

  it("/cursor/items walks the dataset with opaque cursors, caps page size at 50", async () => {
    const seen: unknown[] = [];
    let cursor: string | null = null;
    const sizes: number[] = [];
    let last: Body | undefined;
    do {
      const q = new URLSearchParams({ limit: "100" });
      if (cursor) q.set("cursor", cursor);
      last = (await getJson(`${shared.url}/cursor/items?${q}`)).body;
      sizes.push(last.data.length);
      seen.push(...last.data);
      expect(last.has_more).toBe(last.next_cursor !== null);
      cursor = last.next_cursor;
    } while (cursor);
    expect(seen).toEqual(dataset());
    expect(sizes).toEqual([50, 50, 50, 50, 37]);
    expect(last.next_cursor).toBeNull();
  });

  it("cursors need URL encoding (they contain + and /)", async () => {
    const first = (await getJson(`${shared.url}/cursor/items`)).body;
    expect(first.next_cursor).toMatch(/[+/]/);
    const raw = await fetch(`${shared.url}/cursor/items?cursor=${first.next_cursor}`);
    expect(raw.status).toBe(400);
    expect(await raw.json()).toMatchObject({ error: "invalid_cursor" });
    const ok = await getJson(`${shared.url}/cursor/items?cursor=${encodeURIComponent(first.next_cursor)}`);
    expect(ok.body.data[0].id).toBe(26);
  });

  async function walkCursor(query: string, maxPages = 50) {
    const pages: Body[] = [];
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams(query);
      if (cursor) q.set("cursor", cursor);
      const { body } = await getJson(`${shared.url}/cursor/items?${q}`);
      pages.push(body);
      cursor = body.next_cursor;
    } while (cursor && pages.length < maxPages);
    return pages;
  }

  it("empty_pages=1 inserts an empty page before page 2 and two at the end", async () => {
    const pages = await walkCursor("n=60&empty_pages=1");
    expect(pages.map((p) => p.data.length)).toEqual([25, 0, 25, 10, 0, 0]);
    expect(pages.map((p) => p.next_cursor === null)).toEqual([false, false, false, false, false, true]);
    expect(pages.flatMap((p) => p.data)).toEqual(dataset("items", 60));
  });

  it("loop=1 repeats page 2's cursor on page 3", async () => {
    const pages = await walkCursor("loop=1", 5);
    expect(pages[2].next_cursor).toBe(pages[1].next_cursor);
    expect(pages[3].data).toEqual(pages[2].data);
  });

  it("cursor_style=empty_string ends with an empty string cursor", async () => {
    const pages = await walkCursor("n=30&cursor_style=empty_string");
    expect(pages).toHaveLength(2);
    expect(pages[1]).toMatchObject({ next_cursor: "", has_more: false });
  });

  it("/cursor-header/items puts the cursor in X-Next-Cursor", async () => {
    const seen: unknown[] = [];
    let cursor: string | null = null;
    let requests = 0;
    do {
      const q = new URLSearchParams({ n: "60" });
      if (cursor) q.set("cursor", cursor);
      const { res, body } = await getJson(`${shared.url}/cursor-header/items?${q}`);
      requests++;
      seen.push(...body);
      cursor = res.headers.get("x-next-cursor");
    } while (cursor);
    expect(requests).toBe(3);
    expect(seen).toEqual(dataset("items", 60));
  });

  it("/cursor-body/search pages through paging.next.after in a POST body", async () => {
    const seen: unknown[] = [];
    let after: string | undefined;
    let last: Body | undefined;
    do {
      const { body } = await getJson(`${shared.url}/cursor-body/search?n=120`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ limit: 60, ...(after ? { cursor: after } : {}) }),
      });
      last = body;
      seen.push(...body.results);
      after = body.paging.next?.after;
    } while (after);
    expect(seen).toEqual(dataset("items", 120));
    expect(last.paging).toEqual({});
    const bad = await fetch(`${shared.url}/cursor-body/search`, { method: "POST", body: "{nope" });
    expect(bad.status).toBe(400);
    expect((await fetch(`${shared.url}/cursor-body/search`)).status).toBe(405);
  });

  it("/offset/items caps limit, reports total or null, and ends with an empty page", async () => {
    const p = (await getJson(`${shared.url}/offset/items?offset=0&limit=100`)).body;
    expect(p.items).toHaveLength(MAX_PAGE_SIZE);
    expect(p.total).toBe(237);
    const seen: unknown[] = [];
    for (let offset = 0; ; ) {
      const { body } = await getJson(`${shared.url}/offset/items?offset=${offset}&limit=100&total=estimate`);
      expect(body.total).toBeNull();
      if (body.items.length === 0) break;
      seen.push(...body.items);
      offset += body.items.length;
    }
    expect(seen).toEqual(dataset());
  });

  it("/page/items has total_pages unless no_total=1", async () => {
    const p1 = (await getJson(`${shared.url}/page/items?page=1&per_page=100`)).body;
    expect(p1.results).toHaveLength(50);
    expect(p1.total_pages).toBe(5);
    const p5 = (await getJson(`${shared.url}/page/items?page=5&per_page=50`)).body;
    expect(p5.results.map((r) => r.id)).toEqual(
      dataset()
        .slice(200)
        .map((r) => r.id),
    );
    expect((await getJson(`${shared.url}/page/items?page=6&per_page=50`)).body.results).toEqual([]);
    const noTotal = (await getJson(`${shared.url}/page/items?no_total=1`)).body;
    expect(noTotal).not.toHaveProperty("total_pages");
    expect(noTotal.results).toHaveLength(25);
  });

  it("/link/items sends first, prev, next and last links and walks with next", async () => {
    const { res } = await getJson(`${shared.url}/link/items?page=2&per_page=25&n=100`);
    const links = parseLink(res.headers.get("link")!);
    expect(Object.keys(links).sort()).toEqual(["first", "last", "next", "prev"]);
    expect(links.next.url).toBe(`${shared.url}/link/items?page=3&per_page=25&n=100`);
    expect(links.prev.url).toBe(`${shared.url}/link/items?page=1&per_page=25&n=100`);
    expect(links.last.url).toBe(`${shared.url}/link/items?page=4&per_page=25&n=100`);

    const seen: unknown[] = [];
    let next: string | undefined = `${shared.url}/link/items?per_page=100`;
    let pages = 0;
    while (next) {
      const r = await getJson(next);
      seen.push(...r.body);
      pages++;
      const l = parseLink(r.res.headers.get("link")!);
      if (pages === 1) expect(l.prev).toBeUndefined();
      next = l.next?.url;
    }
    expect(pages).toBe(5);
    expect(seen).toEqual(dataset());
  });

  it("/link/items relative=1 and link_style=tricky", async () => {
    const rel = await fetch(`${shared.url}/link/items?page=2&relative=1`);
    const links = parseLink(rel.headers.get("link")!);
    expect(links.next.url).toBe("/link/items?page=3&relative=1&per_page=25");
    const tricky = await fetch(`${shared.url}/link/items?page=2&link_style=tricky`);
    const header = tricky.headers.get("link")!;
    expect(header).toContain('title="page, one"');
    const t = parseLink(header);
    expect(t.next.url).toBe(`${shared.url}/link/items?page=3&link_style=tricky&per_page=25`);
    expect(t.nofollow.url).toBe(t.next.url);
    expect(t.last.url).toContain("page=10");
    expect(t.first.params.title).toBe("page, one");
  });

  it("cross_origin sends page 2's next link to another origin (127.0.0.2)", async () => {
    const other = await start({ host: "127.0.0.2" });
    expect(other.url).toMatch(/^http:\/\/127\.0\.0\.2:\d+$/);
    const co = encodeURIComponent(other.origin);
    const p1 = parseLink((await fetch(`${shared.url}/link/items?cross_origin=${co}`)).headers.get("link")!);
    expect(p1.next.url.startsWith(shared.url)).toBe(true);
    const p2 = parseLink((await fetch(p1.next.url)).headers.get("link")!);
    expect(new URL(p2.next.url).origin).toBe(other.origin);
    expect(new URL(p2.prev.url).origin).toBe(shared.origin);
    const p3 = await getJson(p2.next.url);
    expect(p3.body.map((r) => r.id)[0]).toBe(51);
    expect(other.requests).toHaveLength(1);

    const n1 = (await getJson(`${shared.url}/next/items?cross_origin=${co}`)).body;
    const n2 = (await getJson(n1.next)).body;
    expect(new URL(n2.next).origin).toBe(other.origin);
  });

  it("/next/items gives absolute, path-relative and query-relative next URLs", async () => {
    const seen: unknown[] = [];
    let next: string | null = `${shared.url}/next/items?limit=100`;
    let first: Body | undefined;
    while (next) {
      const { body } = await getJson(next);
      first ??= body;
      expect(body.count).toBe(237);
      seen.push(...body.results);
      next = body.next;
    }
    expect(first?.previous).toBeNull();
    expect(first?.next).toBe(`${shared.url}/next/items?limit=50&offset=50`);
    expect(seen).toEqual(dataset());

    const rel = (await getJson(`${shared.url}/next/items?relative=1&offset=25`)).body;
    expect(rel.next).toBe("/next/items?relative=1&offset=50&limit=25");
    expect(rel.previous).toBe("/next/items?relative=1&offset=0&limit=25");
    const q = (await getJson(`${shared.url}/next/items?relative=query`)).body;
    expect(q.next).toBe("?relative=query&offset=25&limit=25");
    const resolved = new URL(q.next, `${shared.url}/next/items?relative=query`).href;
    expect((await getJson(resolved)).body.results[0].id).toBe(26);
  });
});

describe("quirk endpoints", () => {
  it("/error-body, /not-json, /status/:code", async () => {
    expect((await getJson(`${shared.url}/error-body`)).body).toEqual({ ok: false, error: "invalid_auth" });
    const html = await fetch(`${shared.url}/not-json`);
    expect(html.status).toBe(200);
    expect(html.headers.get("content-type")).toContain("text/html");
    expect(await html.text()).toBe("<html>Service temporarily unavailable</html>");
    const teapot = await getJson(`${shared.url}/status/418?retry_after=3`);
    expect(teapot.res.status).toBe(418);
    expect(teapot.res.headers.get("retry-after")).toBe("3");
    expect(teapot.body).toEqual({ error: "status_418", status: 418 });
    expect((await getJson(`${shared.url}/nope`)).res.status).toBe(404);
  });

  it("/huge returns a valid JSON array of exactly N bytes, with or without Content-Length", async () => {
    for (const bytes of [19, 1000, 300_000]) {
      const res = await fetch(`${shared.url}/huge?bytes=${bytes}`);
      expect(res.headers.get("content-length")).toBe(String(bytes));
      const text = await res.text();
      expect(Buffer.byteLength(text)).toBe(bytes);
      expect(Array.isArray(JSON.parse(text))).toBe(true);
    }
    const chunked = await fetch(`${shared.url}/huge?bytes=200000&chunked=1`);
    expect(chunked.headers.get("content-length")).toBeNull();
    expect(chunked.headers.get("transfer-encoding")).toBe("chunked");
    expect((await chunked.text()).length).toBe(200_000);
    expect(await (await fetch(`${shared.url}/huge?bytes=5`)).json()).toEqual([]);
  });

  it("/echo describes the request", async () => {
    const { body } = await getJson(`${shared.url}/echo/x?a=1&b=two`, {
      method: "POST",
      headers: { "X-Custom": "yes", "content-type": "application/json" },
      body: JSON.stringify({ hello: "world" }),
    });
    expect(body).toMatchObject({
      method: "POST",
      path: "/echo/x",
      url: "/echo/x?a=1&b=two",
      query: { a: "1", b: "two" },
      body: '{"hello":"world"}',
      json: { hello: "world" },
    });
    expect(body.headers["x-custom"]).toBe("yes");
  });
});

describe("recording and lifecycle", () => {
  it("records every request with status, query, lowercased headers and body; stats count them", async () => {
    const s = await start();
    await fetch(`${s.url}/offset/items?limit=2`, { headers: { "X-Trace": "t1" } });
    await fetch(`${s.url}/status/503`, { method: "POST", body: "payload" });
    await fetch(`${s.url}/status/503`);
    expect(s.requests.map((r) => [r.method, r.path, r.status])).toEqual([
      ["GET", "/offset/items", 200],
      ["POST", "/status/503", 503],
      ["GET", "/status/503", 503],
    ]);
    expect(s.requests[0]).toMatchObject({ url: "/offset/items?limit=2", query: { limit: "2" } });
    expect(s.requests[0].headers["x-trace"]).toBe("t1");
    expect(s.requests[1].body).toBe("payload");
    expect(typeof s.requests[0].at).toBe("number");
    expect(s.stats()).toMatchObject({ requests: 3, byStatus: { 200: 1, 503: 2 }, rateLimited: 0 });
    s.reset();
    expect(s.requests).toHaveLength(0);
    expect(s.stats().requests).toBe(0);
  });

  it("latencyMs delays every response", async () => {
    const s = await start({ latencyMs: 60 });
    const t0 = performance.now();
    await fetch(`${s.url}/echo`);
    // A lower bound only: it cannot flake on a slow machine.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
  });

  it("close() destroys open sockets, even with a pending slow response", async () => {
    const s = await startApiServer({ faults: { rate: 1, kinds: ["slow"], slowMs: 60_000 } });
    const pending = fetch(`${s.url}/none/items?n=1`).then(
      () => "answered",
      () => "failed",
    );
    while (s.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    await s.close();
    expect(await pending).toBe("failed");
  });
});

describe("auth", () => {
  it("bearer: data endpoints need the token, /echo does not", async () => {
    const s = await start({ auth: { bearer: "s3cret" } });
    const no = await getJson(`${s.url}/none/items?n=1`);
    expect(no.res.status).toBe(401);
    expect(no.body).toEqual({ error: "unauthorized" });
    const wrong = await fetch(`${s.url}/none/items?n=1`, { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    const ok = await fetch(`${s.url}/none/items?n=1`, { headers: { authorization: "Bearer s3cret" } });
    expect(ok.status).toBe(200);
    expect((await fetch(`${s.url}/echo`)).status).toBe(200);
  });

  it("bearer with a custom scheme", async () => {
    const s = await start({ auth: { bearer: "gh", bearerScheme: "token" } });
    expect((await fetch(`${s.url}/none/items`, { headers: { authorization: "Bearer gh" } })).status).toBe(
      401,
    );
    expect((await fetch(`${s.url}/none/items`, { headers: { authorization: "token gh" } })).status).toBe(200);
  });

  it("basic, with an empty password", async () => {
    const s = await start({ auth: { basic: { username: "ann", password: "" } } });
    const header = (u: string, p: string) => ({
      authorization: `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`,
    });
    expect((await fetch(`${s.url}/none/items`, { headers: header("ann", "") })).status).toBe(200);
    expect((await fetch(`${s.url}/none/items`, { headers: header("ann", "x") })).status).toBe(401);
  });

  it("api key in a header or in the query (which links do not repeat)", async () => {
    const h = await start({ auth: { apiKey: { name: "X-Api-Key", value: "k1", in: "header" } } });
    expect((await fetch(`${h.url}/none/items`, { headers: { "x-api-key": "k1" } })).status).toBe(200);
    expect((await fetch(`${h.url}/none/items`, { headers: { "x-api-key": "k2" } })).status).toBe(401);
    const q = await start({ auth: { apiKey: { name: "api_key", value: "k1", in: "query" } } });
    expect((await fetch(`${q.url}/none/items?api_key=k2`)).status).toBe(401);
    const res = await fetch(`${q.url}/link/items?api_key=k1&n=60`);
    expect(res.status).toBe(200);
    const next = parseLink(res.headers.get("link")!).next.url;
    expect(next).not.toContain("api_key");
    expect((await fetch(next)).status).toBe(401);
    expect((await fetch(`${next}&api_key=k1`)).status).toBe(200);
    const body = (await getJson(`${q.url}/next/items?api_key=k1`)).body;
    expect(body.next).not.toContain("api_key");
  });
});

describe("oauth2", () => {
  const form = (fields: Record<string, string>) => ({
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  });
  const basicAuth = (id: string, secret: string) =>
    `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

  it("client_credentials in the body, token use, expiry, unknown tokens", async () => {
    const s = await start({
      auth: { oauth2: { clientId: "app", clientSecret: "pw", tokenTtlSeconds: 3600 } },
    });
    const { res, body } = await getJson(
      `${s.url}/oauth/token`,
      form({ grant_type: "client_credentials", client_id: "app", client_secret: "pw", scope: "read" }),
    );
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 3600, scope: "read" });
    expect(body).not.toHaveProperty("refresh_token");
    const auth = { authorization: `Bearer ${body.access_token}` };
    expect((await fetch(`${s.url}/cursor/items`, { headers: auth })).status).toBe(200);

    s.expireTokens();
    const expired = await getJson(`${s.url}/cursor/items`, { headers: auth });
    expect(expired.res.status).toBe(401);
    expect(expired.body).toMatchObject({ error: "invalid_token" });
    const unknown = await getJson(`${s.url}/cursor/items`, { headers: { authorization: "Bearer forged" } });
    expect(unknown.body).toMatchObject({ error: "invalid_token" });
    expect((await getJson(`${s.url}/cursor/items`)).body).toEqual({ error: "unauthorized" });
    expect(s.stats()).toMatchObject({ tokensIssued: 1, refreshes: 0 });
  });

  it("tokens expire after tokenTtlSeconds", async () => {
    const s = await start({
      auth: { oauth2: { clientId: "app", clientSecret: "pw", tokenTtlSeconds: 0.15 } },
    });
    const { body } = await getJson(
      `${s.url}/oauth/token`,
      form({ grant_type: "client_credentials", client_id: "app", client_secret: "pw" }),
    );
    const auth = { authorization: `Bearer ${body.access_token}` };
    expect((await fetch(`${s.url}/none/items?n=1`, { headers: auth })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect((await fetch(`${s.url}/none/items?n=1`, { headers: auth })).status).toBe(401);
  });

  it("client authentication: basic, wrong secret, and clientAuth restrictions", async () => {
    const s = await start({
      auth: { oauth2: { clientId: "app", clientSecret: "pw", tokenTtlSeconds: 60, clientAuth: "basic" } },
    });
    const viaBasic = await fetch(`${s.url}/oauth/token`, {
      ...form({ grant_type: "client_credentials" }),
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: basicAuth("app", "pw") },
    });
    expect(viaBasic.status).toBe(200);
    const wrong = await getJson(`${s.url}/oauth/token`, {
      ...form({ grant_type: "client_credentials" }),
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: basicAuth("app", "no") },
    });
    expect(wrong.res.status).toBe(401);
    expect(wrong.body.error).toBe("invalid_client");
    const inBody = await getJson(
      `${s.url}/oauth/token`,
      form({ grant_type: "client_credentials", client_id: "app", client_secret: "pw" }),
    );
    expect(inBody.res.status).toBe(401);
    const notForm = await fetch(`${s.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: basicAuth("app", "pw") },
      body: "{}",
    });
    expect(notForm.status).toBe(400);
    const bodyOnly = await start({
      auth: { oauth2: { clientId: "a", clientSecret: "b", tokenTtlSeconds: 60 } },
    });
    const badSecret = await getJson(
      `${bodyOnly.url}/oauth/token`,
      form({ grant_type: "client_credentials", client_id: "a", client_secret: "x" }),
    );
    expect(badSecret.res.status).toBe(401);
    expect(badSecret.body.error).toBe("invalid_client");
    const badGrant = await getJson(
      `${bodyOnly.url}/oauth/token`,
      form({ grant_type: "password", client_id: "a", client_secret: "b" }),
    );
    expect(badGrant.body.error).toBe("unsupported_grant_type");
  });

  it("rotating refresh tokens revoke the previous one", async () => {
    const s = await start({
      auth: {
        oauth2: {
          clientId: "app",
          clientSecret: "pw",
          refreshToken: "rt0",
          tokenTtlSeconds: 60,
          rotateRefreshToken: true,
        },
      },
    });
    const refresh = (rt: string) =>
      getJson(
        `${s.url}/oauth/token`,
        form({ grant_type: "refresh_token", refresh_token: rt, client_id: "app", client_secret: "pw" }),
      );
    const r1 = await refresh("rt0");
    expect(r1.res.status).toBe(200);
    expect(r1.body.refresh_token).toMatch(/^rt_/);
    expect(s.refreshToken()).toBe(r1.body.refresh_token);
    const again = await refresh("rt0");
    expect(again.res.status).toBe(400);
    expect(again.body).toEqual({ error: "invalid_grant", error_description: "refresh token revoked" });
    const r2 = await refresh(r1.body.refresh_token);
    expect(r2.body.refresh_token).not.toBe(r1.body.refresh_token);
    expect((await refresh("never-issued")).body.error_description).toBe("unknown refresh token");
    expect(s.stats()).toMatchObject({ tokensIssued: 2, refreshes: 2 });
  });

  it("without rotation the refresh token stays valid; failWith fails every token request", async () => {
    const s = await start({
      auth: { oauth2: { clientId: "app", clientSecret: "pw", refreshToken: "rt0", tokenTtlSeconds: 60 } },
    });
    for (let k = 0; k < 2; k++) {
      const { res, body } = await getJson(
        `${s.url}/oauth/token`,
        form({ grant_type: "refresh_token", refresh_token: "rt0", client_id: "app", client_secret: "pw" }),
      );
      expect(res.status).toBe(200);
      expect(body).not.toHaveProperty("refresh_token");
    }
    const f = await start({
      auth: {
        oauth2: {
          clientId: "app",
          clientSecret: "pw",
          tokenTtlSeconds: 60,
          failWith: { status: 400, error: "invalid_scope" },
        },
      },
    });
    const failed = await getJson(
      `${f.url}/oauth/token`,
      form({ grant_type: "client_credentials", client_id: "app", client_secret: "pw" }),
    );
    expect(failed.res.status).toBe(400);
    expect(failed.body).toEqual({ error: "invalid_scope" });
  });
});

describe("rate limits", () => {
  async function burst(style: RateLimitStyle) {
    const s = await start({ rateLimit: { perSecond: 3, style } });
    const responses: Response[] = [];
    for (let k = 0; k < 4; k++) responses.push(await fetch(`${s.url}/none/items?n=1`));
    return { s, ok: responses.slice(0, 3), limited: responses[3] };
  }

  it("accepted responses carry remaining and reset headers", async () => {
    const { ok, s } = await burst("429-reset-delta");
    expect(ok.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(ok.map((r) => r.headers.get("x-ratelimit-remaining"))).toEqual(["2", "1", "0"]);
    expect(ok[0].headers.get("x-ratelimit-reset")).toBe("1");
    expect(s.stats().rateLimited).toBe(1);
    expect(s.requests[3]).toMatchObject({ rateLimited: true, status: 429 });
  });

  it("429 with Retry-After seconds (decimals allowed)", async () => {
    const { limited } = await burst("429-retry-after-seconds");
    expect(limited.status).toBe(429);
    const value = Number(limited.headers.get("retry-after"));
    expect(value).toBeGreaterThan(0);
    expect(value).toBeLessThanOrEqual(1);
  });

  it("429 with Retry-After HTTP date", async () => {
    const { limited } = await burst("429-retry-after-date");
    expect(limited.status).toBe(429);
    const date = Date.parse(limited.headers.get("retry-after")!);
    expect(date).toBeGreaterThan(Date.now() - 1000);
    expect(date).toBeLessThanOrEqual(Date.now() + 2000);
  });

  it("403 with remaining 0 and an epoch reset", async () => {
    const { limited, ok } = await burst("403-reset-epoch");
    expect(limited.status).toBe(403);
    expect(limited.headers.get("x-ratelimit-remaining")).toBe("0");
    const reset = Number(limited.headers.get("x-ratelimit-reset"));
    expect(reset).toBeGreaterThan(1e9);
    expect(reset * 1000).toBeGreaterThanOrEqual(Date.now() - 1000);
    expect(Number(ok[0].headers.get("x-ratelimit-reset"))).toBeGreaterThan(1e9);
  });

  it("429 with remaining 0 and a delta reset", async () => {
    const { limited } = await burst("429-reset-delta");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(limited.headers.get("x-ratelimit-reset")).toBe("1");
  });
});

describe("faults", () => {
  it("are injected at roughly the configured rate, deterministically even when concurrent", async () => {
    const opts: ServerOptions = { faults: { seed: 42, rate: 0.3, kinds: ["500", "503"] } };
    const a = await start(opts);
    const b = await start(opts);
    const keys = Array.from({ length: 150 }, (_, k) => `/none/items?n=${k % 3}&k=${k}`);
    // a: all at once (arrival order varies); b: one by one in reverse.
    const statusesA = await Promise.all(keys.map(async (k) => (await fetch(a.url + k)).status));
    const statusesB: number[] = [];
    for (const k of [...keys].reverse()) statusesB.unshift((await fetch(b.url + k)).status);
    expect(statusesA).toEqual(statusesB);
    const faulted = statusesA.filter((s) => s !== 200).length;
    expect(faulted).toBeGreaterThan(25);
    expect(faulted).toBeLessThan(65);
    const c = await start({ faults: { ...opts.faults!, seed: 43 } });
    const statusesC = await Promise.all(keys.map(async (k) => (await fetch(c.url + k)).status));
    expect(statusesC).not.toEqual(statusesA);
    const stats = a.stats();
    expect((stats.faultsInjected["500"] ?? 0) + (stats.faultsInjected["503"] ?? 0)).toBe(faulted);
    expect(a.requests.filter((r) => r.fault).length).toBe(faulted);
  });

  it("never fault the same request twice in a row", async () => {
    const s = await start({ faults: { seed: 3, rate: 1, kinds: ["502"] } });
    const statuses: number[] = [];
    for (let k = 0; k < 6; k++) statuses.push((await fetch(`${s.url}/offset/items?offset=10`)).status);
    expect(statuses).toEqual([502, 200, 502, 200, 502, 200]);
    // The body is part of the request's identity.
    const post = (body: string) => fetch(`${s.url}/cursor-body/search`, { method: "POST", body });
    expect((await post("{}")).status).toBe(502);
    expect((await post('{"limit":5}')).status).toBe(502);
    expect((await post("{}")).status).toBe(200);
    // A high-rate random run: no request key is faulted twice in a row.
    const r = await start({ faults: { seed: 9, rate: 0.7, kinds: ["500", "504"] } });
    const last = new Map<string, boolean>();
    for (let k = 0; k < 60; k++) {
      const url = `/page/items?page=${k % 7}`.replace("page=0", "page=1");
      const res = await fetch(r.url + url);
      const faulted = res.status !== 200;
      if (faulted) expect(last.get(url)).not.toBe(true);
      last.set(url, faulted);
    }
  });

  it("never fault /echo; setFaults(null) turns them off", async () => {
    const s = await start({ faults: { rate: 1, kinds: ["500"] } });
    for (let k = 0; k < 5; k++) expect((await fetch(`${s.url}/echo?k=${k}`)).status).toBe(200);
    expect((await fetch(`${s.url}/none/items`)).status).toBe(500);
    s.setFaults(null);
    expect((await fetch(`${s.url}/none/items?n=3`)).status).toBe(200);
    s.setFaults({ rate: 1, kinds: ["503"], paths: ["/cursor/"] });
    expect((await fetch(`${s.url}/none/items?n=4`)).status).toBe(200);
    expect((await fetch(`${s.url}/cursor/items`)).status).toBe(503);
  });

  async function faulted(
    kind: FaultKind,
    extra: Partial<ServerOptions["faults"]> = {},
    path = "/none/items",
  ) {
    const s = await start({ faults: { rate: 1, kinds: [kind], ...extra } });
    return { s, url: `${s.url}${path}` };
  }

  it("reset closes the connection without a response", async () => {
    const { s, url } = await faulted("reset");
    await expect(fetch(url)).rejects.toThrow();
    expect(s.requests[0]).toMatchObject({ fault: "reset", status: 0 });
    expect((await fetch(url)).status).toBe(200);
  });

  it("truncate sends fewer bytes than Content-Length, or no final chunk", async () => {
    for (const truncateStyle of ["content-length", "chunked"] as const) {
      const { s, url } = await faulted("truncate", { truncateStyle });
      const res = await fetch(url);
      expect(res.status).toBe(200);
      if (truncateStyle === "content-length") {
        expect(Number(res.headers.get("content-length"))).toBe(JSON.stringify(dataset()).length);
      } else {
        expect(res.headers.get("transfer-encoding")).toBe("chunked");
      }
      await expect(res.text()).rejects.toThrow();
      expect(s.requests[0].fault).toBe("truncate");
      expect(await (await fetch(url)).json()).toEqual(dataset());
    }
    const { url } = await faulted("truncate", {}, "/huge?bytes=500000");
    const big = await fetch(url);
    expect(big.headers.get("content-length")).toBe("500000");
    await expect(big.text()).rejects.toThrow();
  });

  it("slow delays the response past a client timeout", async () => {
    const { s, url } = await faulted("slow", { slowMs: 2000 });
    await expect(fetch(url, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    expect(s.requests[0].fault).toBe("slow");
    expect((await fetch(url)).status).toBe(200);
  });

  it("429 and 403 faults say when to come back", async () => {
    const sec = await faulted("429-seconds", { retryAfterSeconds: 0.5 });
    const r1 = await fetch(sec.url);
    expect(r1.status).toBe(429);
    expect(r1.headers.get("retry-after")).toBe("0.5");

    const date = await faulted("429-date");
    const r2 = await fetch(date.url);
    expect(r2.status).toBe(429);
    const at = Date.parse(r2.headers.get("retry-after")!);
    expect(at).toBeGreaterThan(Date.now());

    const reset = await faulted("403-reset");
    const r3 = await fetch(reset.url);
    expect(r3.status).toBe(403);
    expect(r3.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(Number(r3.headers.get("x-ratelimit-reset")) * 1000).toBeGreaterThan(Date.now());
    expect(reset.s.stats().faultsInjected).toEqual({ "403-reset": 1 });
  });

  it("faults apply to /oauth/token too", async () => {
    const s = await start({
      auth: { oauth2: { clientId: "a", clientSecret: "b", tokenTtlSeconds: 60 } },
      faults: { rate: 1, kinds: ["503"] },
    });
    const init = {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials&client_id=a&client_secret=b",
    };
    expect((await fetch(`${s.url}/oauth/token`, init)).status).toBe(503);
    expect((await fetch(`${s.url}/oauth/token`, init)).status).toBe(200);
    expect(s.stats().tokensIssued).toBe(1);
  });

  it("fail=k&fail_kind fails the first k attempts of each request", async () => {
    const s = await start();
    const statuses: number[] = [];
    for (let k = 0; k < 4; k++)
      statuses.push((await fetch(`${s.url}/cursor/items?fail=2&fail_kind=504`)).status);
    expect(statuses).toEqual([504, 504, 200, 200]);
    await expect(fetch(`${s.url}/none/items?fail=1&fail_kind=reset`)).rejects.toThrow();
    expect((await fetch(`${s.url}/none/items?fail=1&fail_kind=reset`)).status).toBe(200);
    expect((await fetch(`${s.url}/none/items?fail=1&fail_kind=bogus`)).status).toBe(400);
  });
});
