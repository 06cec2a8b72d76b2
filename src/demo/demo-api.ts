import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * The demo API: a small fake of five real APIs on 127.0.0.1, with their pagination styles and
 * their habits: a rate limit (429 + Retry-After), some flaky 503s, an empty page that still has a
 * cursor, short-lived OAuth2 tokens, and a few records that break their schema.
 *
 *   GET  /github/repos/acme/widgets/issues?page&per_page   Link header (GitHub)
 *   GET  /slack/conversations.history?cursor&limit          cursor in response_metadata (Slack)
 *   GET  /shop/orders?offset&limit                          offset + total (a typical shop API)
 *   GET  /pokeapi/pokemon?offset&limit                      next URL (PokeAPI)
 *   POST /oauth/token, GET /crm/contacts?page&size          OAuth2 client credentials + page numbers
 */
export interface DemoApi {
  url: string;
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
}

const CLIENT_ID = "demo-client";
const CLIENT_SECRET = "demo-secret-4f9a";
const TOKEN_TTL_S = 2;
const RATE_PER_SECOND = 40;

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const day = (i: number) =>
  new Date(Date.UTC(2025, 0, 1) + i * 3_600_000 * 7).toISOString().replace(/\.000Z$/, "Z");
const LABELS = ["bug", "feature", "docs", "good first issue", "performance"];
const USERS = ["ada", "grace", "linus", "margaret", "ken", "barbara", "dennis"];

const issues = Array.from({ length: 180 }, (_, k) => {
  const i = k + 1;
  const r = rng(i);
  return {
    id: 1_000_000 + i,
    number: i,
    title:
      i % 47 === 0
        ? null
        : `Widget issue #${i}: ${["crash on save", "slow export", "typo in docs", "add dark mode"][i % 4]}`,
    state: r() < 0.3 ? "closed" : "open",
    user: { login: USERS[i % USERS.length], id: 500 + (i % USERS.length) },
    labels: LABELS.filter((_, j) => (i >> j) & 1 && j < 3).map((name) => ({ name })),
    comments: Math.floor(r() * 12),
    created_at: day(i),
    updated_at: day(i + 30),
  };
});

const messages = Array.from({ length: 150 }, (_, k) => ({
  ts: `${1735689600 + k * 97}.000${String(k).padStart(3, "0")}`,
  user: `U0${(k % 6) + 1}DEMO`,
  text: k % 10 === 0 ? `Deploy ${k / 10} finished ✅` : `message ${k + 1}`,
  reply_count: k % 7 === 0 ? 2 : 0,
  ...(k % 40 === 39 ? { edited: { user: "U01DEMO", ts: "1735700000.000100" } } : {}),
}));

const orders = Array.from({ length: 420 }, (_, k) => {
  const i = k + 1;
  const r = rng(1000 + i);
  return {
    order_id: `ORD-${String(i).padStart(5, "0")}`,
    customer: { id: 300 + (i % 57), country: ["DE", "FR", "US", "JP", "BR"][i % 5] },
    // Drift: a few totals come back as strings, as after a real upstream change.
    total: i % 53 === 0 ? (Math.round(r() * 50000) / 100).toFixed(2) : Math.round(r() * 50000) / 100,
    currency: "EUR",
    status: ["paid", "shipped", "refunded"][i % 3],
    placed_at: day(i),
  };
});

const POKEMON = [
  "bulbasaur",
  "ivysaur",
  "venusaur",
  "charmander",
  "charmeleon",
  "charizard",
  "squirtle",
  "wartortle",
  "blastoise",
  "caterpie",
  "metapod",
  "butterfree",
  "weedle",
  "kakuna",
  "beedrill",
  "pidgey",
];
const pokemon = Array.from({ length: 151 }, (_, k) => ({
  name: POKEMON[k] ?? `pokemon-${k + 1}`,
  id: k + 1,
}));

const contacts = Array.from({ length: 95 }, (_, k) => ({
  id: `c_${k + 1}`,
  name: `Contact ${k + 1}`,
  email: k % 31 === 30 ? "not-an-email" : `contact${k + 1}@example.com`,
  company: k % 4 === 0 ? null : `Company ${k % 9}`,
  created: day(k),
}));

export async function startDemoApi(port = 0): Promise<DemoApi> {
  const tokens = new Map<string, number>();
  const window: number[] = [];
  const flaky = rng(42);
  const seenFlaky = new Set<string>();
  let tokenCount = 0;

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://demo");
    const q = url.searchParams;
    const int = (name: string, dflt: number, max = 100) =>
      Math.max(0, Math.min(max, Number(q.get(name) ?? dflt) || dflt));
    await new Promise((r) => setTimeout(r, 15));

    if (url.pathname === "/oauth/token" && req.method === "POST") {
      let body = "";
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      if (form.get("client_id") !== CLIENT_ID || form.get("client_secret") !== CLIENT_SECRET) {
        return send(res, 401, {
          error: "invalid_client",
          error_description: "unknown client or wrong secret",
        });
      }
      const token = `demo_at_${++tokenCount}_${Math.random().toString(36).slice(2)}`;
      tokens.set(token, Date.now() + TOKEN_TTL_S * 1000);
      return send(res, 200, { access_token: token, token_type: "Bearer", expires_in: TOKEN_TTL_S });
    }

    // One rate limit for the whole API: a sliding one-second window.
    const now = Date.now();
    while (window.length && window[0] <= now - 1000) window.shift();
    if (window.length >= RATE_PER_SECOND) {
      const wait = Math.max(0.1, (window[0] + 1000 - now) / 1000);
      return send(
        res,
        429,
        { message: "API rate limit exceeded" },
        { "retry-after": wait.toFixed(1), "x-ratelimit-remaining": "0" },
      );
    }
    window.push(now);
    const remaining = String(RATE_PER_SECOND - window.length);

    // A flaky upstream: about 4% of requests fail once with a 503.
    const key = `${req.method} ${req.url}`;
    if (!seenFlaky.has(key) && flaky() < 0.04) {
      seenFlaky.add(key);
      return send(res, 503, { message: "upstream temporarily unavailable" }, { "retry-after": "0" });
    }
    seenFlaky.add(key);
    const rl = { "x-ratelimit-remaining": remaining, "x-ratelimit-reset": "1" };

    if (url.pathname === "/github/repos/acme/widgets/issues") {
      const per = int("per_page", 30);
      const page = Math.max(1, int("page", 1, 1e6));
      const rows = issues.slice((page - 1) * per, page * per);
      const last = Math.max(1, Math.ceil(issues.length / per));
      const link = (p: number, rel: string) =>
        `</github/repos/acme/widgets/issues?page=${p}&per_page=${per}>; rel="${rel}"`;
      const links = [
        page < last ? link(page + 1, "next") : null,
        link(last, "last"),
        link(1, "first"),
      ].filter(Boolean);
      return send(res, 200, rows, { ...rl, link: links.join(", ") });
    }
    if (url.pathname === "/slack/conversations.history") {
      const limit = int("limit", 50, 40);
      const cursor = q.get("cursor");
      // Cursors: `bmV4dDo<n>` = records from n; `ZW1wdHk<n>` = an empty page that still points on.
      let start = 0;
      if (cursor) {
        const m = /^(bmV4dDo|ZW1wdHk)(\d+)$/.exec(cursor);
        if (!m) return send(res, 200, { ok: false, error: "invalid_cursor" });
        if (m[1] === "ZW1wdHk") {
          return send(
            res,
            200,
            { ok: true, messages: [], has_more: true, response_metadata: { next_cursor: `bmV4dDo${m[2]}` } },
            rl,
          );
        }
        start = Number(m[2]);
      }
      const rows = messages.slice(start, start + limit);
      const more = start + limit < messages.length;
      // Slack habit: after the first page comes an empty page that still carries a cursor.
      const next = !more ? "" : start === 0 ? `ZW1wdHk${start + limit}` : `bmV4dDo${start + limit}`;
      return send(
        res,
        200,
        { ok: true, messages: rows, has_more: more, response_metadata: { next_cursor: next } },
        rl,
      );
    }
    if (url.pathname === "/shop/orders") {
      const limit = int("limit", 100, 100);
      const offset = int("offset", 0, 1e9);
      return send(
        res,
        200,
        { data: orders.slice(offset, offset + limit), meta: { total: orders.length } },
        rl,
      );
    }
    if (url.pathname === "/pokeapi/pokemon") {
      const limit = int("limit", 20, 40);
      const offset = int("offset", 0, 1e9);
      const next =
        offset + limit < pokemon.length ? `${url.pathname}?offset=${offset + limit}&limit=${limit}` : null;
      return send(
        res,
        200,
        {
          count: pokemon.length,
          next: next && `http://${req.headers.host}${next}`,
          results: pokemon
            .slice(offset, offset + limit)
            .map((p) => ({ name: p.name, url: `http://${req.headers.host}/pokeapi/pokemon/${p.id}/` })),
        },
        rl,
      );
    }
    if (url.pathname === "/crm/contacts") {
      const auth = req.headers.authorization ?? "";
      const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
      const exp = tokens.get(token);
      if (!exp || exp < Date.now())
        return send(res, 401, { error: "invalid_token", error_description: "the access token expired" });
      const size = int("size", 25, 25);
      const page = Math.max(1, int("page", 1, 1e6));
      const rows = contacts.slice((page - 1) * size, page * size);
      return send(res, 200, { items: rows, page, total_pages: Math.ceil(contacts.length / size) }, rl);
    }
    return send(res, 404, { message: "Not Found" });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => send(res, 500, { message: String(err) }));
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const { port: actual } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${actual}`,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
