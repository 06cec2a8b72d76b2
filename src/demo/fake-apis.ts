/**
 * The fake APIs of the demo, one handler each, with the pagination style and the habits of
 * the real one. A handler gets the request and answers a status, a JSON body and headers.
 */
import type { IncomingMessage } from "node:http";
import { contacts, issues, messages, orders, pokemon } from "./demo-data.js";

export const CLIENT_ID = "demo-client";
export const CLIENT_SECRET = "demo-secret-4f9a";
/**
 * Access tokens live 0.8 s and the token endpoint does not say so (no `expires_in`, as some APIs
 * do): the runner learns it from a 401 mid-run, refreshes the token once and retries.
 */
const TOKEN_TTL_MS = 800;
/**
 * The CRM's own quota, stricter than the pipeline's `rate_limit`: bursts of 6 requests, then a
 * 429 asking for a 1 s pause (Retry-After: 1). Counted per request, not per clock second, so the
 * demo meets it however fast or slow the machine is.
 */
export const CRM_BURST = 6;

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface DemoRequest {
  req: IncomingMessage;
  url: URL;
  /** A whole-number query parameter, clamped to 0..max (the default when absent or not a number). */
  int(name: string, dflt: number, max?: number): number;
  /** The rate-limit headers every answer carries. */
  rl: Record<string, string>;
  /** Access tokens issued by /oauth/token, with their expiry (epoch ms), and how many were issued. */
  auth: { tokens: Map<string, number>; issued: number };
  /** Requests of the CRM's current burst (see CRM_BURST). */
  crm: { burst: number };
}

const ok = (body: unknown, headers?: Record<string, string>): Reply => ({ status: 200, body, headers });

/** GET /github/repos/acme/widgets/issues?page&per_page — a Link header (GitHub). */
export function githubIssues({ int, rl }: DemoRequest): Reply {
  const per = int("per_page", 30);
  const page = Math.max(1, int("page", 1, 1e6));
  const rows = issues.slice((page - 1) * per, page * per);
  const last = Math.max(1, Math.ceil(issues.length / per));
  const link = (p: number, rel: string) =>
    `</github/repos/acme/widgets/issues?page=${p}&per_page=${per}>; rel="${rel}"`;
  const links = [page < last ? link(page + 1, "next") : null, link(last, "last"), link(1, "first")].filter(
    Boolean,
  );
  return ok(rows, { ...rl, link: links.join(", ") });
}

/** GET /slack/conversations.history?cursor&limit — a cursor in response_metadata (Slack). */
export function slackHistory({ url, int, rl }: DemoRequest): Reply {
  const limit = int("limit", 50, 40);
  const cursor = url.searchParams.get("cursor");
  // Cursors: `bmV4dDo<n>` = records from n; `ZW1wdHk<n>` = an empty page that still points on.
  let start = 0;
  if (cursor) {
    const m = /^(bmV4dDo|ZW1wdHk)(\d+)$/.exec(cursor);
    if (!m) return ok({ ok: false, error: "invalid_cursor" });
    if (m[1] === "ZW1wdHk") {
      return ok(
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
  return ok({ ok: true, messages: rows, has_more: more, response_metadata: { next_cursor: next } }, rl);
}

/** GET /shop/orders?offset&limit — offset and a total (a typical shop API). */
export function shopOrders({ int, rl }: DemoRequest): Reply {
  const limit = int("limit", 100, 100);
  const offset = int("offset", 0, 1e9);
  return ok({ data: orders.slice(offset, offset + limit), meta: { total: orders.length } }, rl);
}

/** GET /pokeapi/pokemon?offset&limit — a next URL in the body (PokeAPI). */
export function pokeapiPokemon({ req, url, int, rl }: DemoRequest): Reply {
  const limit = int("limit", 20, 40);
  const offset = int("offset", 0, 1e9);
  const next =
    offset + limit < pokemon.length ? `${url.pathname}?offset=${offset + limit}&limit=${limit}` : null;
  return ok(
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

/** GET /crm/contacts?page&size — page numbers, behind a short-lived OAuth2 token. */
export function crmContacts({ req, int, rl, auth: { tokens }, crm }: DemoRequest): Reply {
  const auth = req.headers.authorization ?? "";
  const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
  const exp = tokens.get(token);
  if (!exp || exp < Date.now())
    return { status: 401, body: { error: "invalid_token", error_description: "the access token expired" } };
  if (crm.burst >= CRM_BURST) {
    crm.burst = 0;
    return { status: 429, body: { message: "CRM quota: pause 1 s" }, headers: { "retry-after": "1" } };
  }
  crm.burst++;
  const size = int("size", 25, 25);
  const page = Math.max(1, int("page", 1, 1e6));
  const rows = contacts.slice((page - 1) * size, page * size);
  return ok({ items: rows, page, total_pages: Math.ceil(contacts.length / size) }, rl);
}

/** POST /oauth/token — OAuth2 client credentials; tokens live TOKEN_TTL_MS, unannounced. */
export async function oauthToken({ req, auth }: DemoRequest): Promise<Reply> {
  let body = "";
  for await (const chunk of req) body += chunk;
  const form = new URLSearchParams(body);
  if (form.get("client_id") !== CLIENT_ID || form.get("client_secret") !== CLIENT_SECRET) {
    return {
      status: 401,
      body: { error: "invalid_client", error_description: "unknown client or wrong secret" },
    };
  }
  const token = `demo_at_${++auth.issued}_${Math.random().toString(36).slice(2)}`;
  auth.tokens.set(token, Date.now() + TOKEN_TTL_MS);
  return ok({ access_token: token, token_type: "Bearer" });
}

const DAY_MS = 86_400_000;
/** Events of the analytics export, per day: this many (ids `<day>-<n>`). */
export const EVENTS_PER_DAY = 3;

/**
 * GET /analytics/export?from_date&to_date&cursor — an export API (Mixpanel style): inclusive
 * dates, ranges wider than 7 days refused (400), events paged by a cursor, 10 a page.
 */
export function analyticsExport({ url, rl }: DemoRequest): Reply {
  const from = Date.parse(`${url.searchParams.get("from_date")}T00:00:00Z`);
  const to = Date.parse(`${url.searchParams.get("to_date")}T00:00:00Z`);
  if (Number.isNaN(from) || Number.isNaN(to) || to < from)
    return { status: 400, body: { error: "from_date and to_date must be dates, from ≤ to" }, headers: rl };
  if ((to - from) / DAY_MS + 1 > 7)
    return { status: 400, body: { error: "the range is wider than 7 days" }, headers: rl };
  const all: { id: string; day: string; event: string }[] = [];
  for (let t = from; t <= to; t += DAY_MS) {
    const day = new Date(t).toISOString().slice(0, 10);
    for (let n = 0; n < EVENTS_PER_DAY; n++)
      all.push({ id: `${day}-${n}`, day, event: n ? "view" : "signup" });
  }
  const at = Math.min(Math.max(0, Number(url.searchParams.get("cursor") ?? 0) || 0), all.length);
  return ok({ events: all.slice(at, at + 10), next: at + 10 < all.length ? String(at + 10) : null }, rl);
}

/** Releases of the demo repositories (GET /github/repos/acme/<repo>/releases). */
export const RELEASES: Record<string, number> = { widgets: 5, gadgets: 3, gizmos: 0 };

function githubReleases(repo: string, count: number) {
  return ({ rl }: DemoRequest): Reply =>
    ok(
      Array.from({ length: count }, (_, k) => ({
        id: `${repo}-v${k + 1}`,
        tag_name: `v1.${k}.0`,
        published_at: new Date(Date.UTC(2024, 0, 1 + 7 * k)).toISOString(),
      })),
      rl,
    );
}

/** The rate-limited GET endpoints, by path. */
export const ROUTES = new Map<string, (r: DemoRequest) => Reply>([
  ["/github/repos/acme/widgets/issues", githubIssues],
  ["/slack/conversations.history", slackHistory],
  ["/shop/orders", shopOrders],
  ["/pokeapi/pokemon", pokeapiPokemon],
  ["/crm/contacts", crmContacts],
  ["/analytics/export", analyticsExport],
  ...Object.entries(RELEASES).map(
    ([repo, n]) => [`/github/repos/acme/${repo}/releases`, githubReleases(repo, n)] as const,
  ),
]);
