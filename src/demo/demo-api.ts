import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { rng } from "./demo-data.js";
import { CLIENT_ID, CLIENT_SECRET, type DemoRequest, oauthToken, type Reply, ROUTES } from "./fake-apis.js";

/**
 * The demo API: a small fake of five real APIs on 127.0.0.1, with their pagination styles and
 * their habits: a rate limit (429 + Retry-After; the CRM's own quota is met by every demo run),
 * some flaky 503s, an empty page that still has a cursor, short-lived OAuth2 tokens (expired
 * mid-run), and a few records that break their schema.
 *
 *   GET  /github/repos/acme/widgets/issues?page&per_page   Link header (GitHub)
 *   GET  /slack/conversations.history?cursor&limit          cursor in response_metadata (Slack)
 *   GET  /shop/orders?offset&limit                          offset + total (a typical shop API)
 *   GET  /pokeapi/pokemon?offset&limit                      next URL (PokeAPI)
 *   POST /oauth/token, GET /crm/contacts?page&size          OAuth2 client credentials + page numbers
 *   GET  /analytics/export?from_date&to_date&cursor         a 7-day export (date windows)
 *   GET  /github/repos/acme/<repo>/releases                 one request per listed repository
 *
 * The handlers of the five APIs are in fake-apis.ts, their records in demo-data.ts.
 */
export interface DemoApi {
  url: string;
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
}

const RATE_PER_SECOND = 40;

function send(res: ServerResponse, { status, body, headers = {} }: Reply): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** One rate limit for the whole API (a sliding one-second window) and a flaky upstream. */
class Gate {
  private readonly window: number[] = [];
  private readonly flaky = rng(42);
  private readonly seenFlaky = new Set<string>();

  /** A 429 or 503 to answer instead, or the rate-limit headers of a request let through. */
  admit(req: IncomingMessage): { refuse: Reply } | { rl: Record<string, string> } {
    const now = Date.now();
    const window = this.window;
    while (window.length && window[0] <= now - 1000) window.shift();
    if (window.length >= RATE_PER_SECOND) {
      const wait = Math.max(0.1, (window[0] + 1000 - now) / 1000);
      return {
        refuse: {
          status: 429,
          body: { message: "API rate limit exceeded" },
          headers: { "retry-after": wait.toFixed(1), "x-ratelimit-remaining": "0" },
        },
      };
    }
    window.push(now);
    const remaining = String(RATE_PER_SECOND - window.length);
    // A flaky upstream: about 4% of requests fail once with a 503.
    const key = `${req.method} ${req.url}`;
    if (!this.seenFlaky.has(key) && this.flaky() < 0.04) {
      this.seenFlaky.add(key);
      return {
        refuse: {
          status: 503,
          body: { message: "upstream temporarily unavailable" },
          headers: { "retry-after": "0" },
        },
      };
    }
    this.seenFlaky.add(key);
    return { rl: { "x-ratelimit-remaining": remaining, "x-ratelimit-reset": "1" } };
  }
}

export async function startDemoApi(port = 0): Promise<DemoApi> {
  const auth = { tokens: new Map<string, number>(), issued: 0 };
  const crm = { burst: 0 };
  const gate = new Gate();

  const handle = async (req: IncomingMessage): Promise<Reply> => {
    const url = new URL(req.url ?? "/", "http://demo");
    const q = url.searchParams;
    const int = (name: string, dflt: number, max = 100) =>
      Math.max(0, Math.min(max, Number(q.get(name) ?? dflt) || dflt));
    await new Promise((r) => setTimeout(r, 15));
    const request: DemoRequest = { req, url, int, rl: {}, auth, crm };
    // The token endpoint is outside the rate limit.
    if (url.pathname === "/oauth/token" && req.method === "POST") return oauthToken(request);
    const admitted = gate.admit(req);
    if ("refuse" in admitted) return admitted.refuse;
    const route = ROUTES.get(url.pathname);
    return route ? route({ ...request, rl: admitted.rl }) : { status: 404, body: { message: "Not Found" } };
  };

  const server = createServer((req, res) => {
    handle(req).then(
      (reply) => send(res, reply),
      (err) => send(res, { status: 500, body: { message: String(err) } }),
    );
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
