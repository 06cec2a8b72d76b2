import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Local fakes of the real APIs the example pipelines in pipelines/ pull from, answering with the
 * response shapes of their documentation (full objects: the pipelines' `fields` pick from them).
 * Each API lives under a prefix of one server on 127.0.0.1:
 *
 *   /stripe/v1/charges                          Stripe list: { object, url, has_more, data }, starting_after, created[gte]
 *   /slack/api/conversations.history            Slack: { ok, messages, has_more, response_metadata.next_cursor }, oldest
 *   /jira/rest/api/3/project/search             Jira Cloud: { self, nextPage, maxResults, startAt, total, isLast, values }
 *   /pokeapi/api/v2/pokemon                     PokeAPI: { count, next, previous, results }
 *   /spotify-accounts/api/token                 Spotify token endpoint (client credentials, HTTP Basic)
 *   /spotify/v1/browse/new-releases             Spotify: { albums: paging object }
 *   /spotify/v1/albums/:id/tracks               Spotify paging object of tracks
 *   /github/orgs/:org/repos, /github/repos/:owner/:repo/issues   GitHub: arrays + Link headers
 *
 * Credentials are checked as the real APIs do; page sizes are capped lower than the real ones
 * where that makes a test fetch several pages (noted at each cap).
 */
export const CREDENTIALS = {
  STRIPE_SECRET_KEY: "sk_test_51FakeKey0123456789",
  SLACK_BOT_TOKEN: "xoxb-1111-2222-FakeSlackToken",
  SLACK_CHANNEL_ID: "C0123ABCDEF",
  JIRA_EMAIL: "analyst@example.com",
  JIRA_API_TOKEN: "ATATT3xFakeJiraToken",
  SPOTIFY_CLIENT_ID: "fake0spotify0client0id",
  SPOTIFY_CLIENT_SECRET: "fake0spotify0client0secret",
  GITHUB_TOKEN: "github_pat_11FakeToken",
  GITHUB_ORG: "acme",
} as const;

export interface SeenRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string;
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** A Spotify-style 22-character base62 id. */
const spotifyId = (kind: string, i: number) => {
  let s = "";
  let n = i * 7919 + kind.length * 104729;
  for (let k = 0; k < 22; k++) {
    s += BASE62[(n + k * 31) % 62];
    n = Math.floor(n / 3) + 17;
  }
  return s;
};

// --- Stripe ---------------------------------------------------------------------------------

export const CHARGE_COUNT = 230;
/** Charges newest first, as Stripe lists them. */
export const charges = Array.from({ length: CHARGE_COUNT }, (_, k) => {
  const i = CHARGE_COUNT - k;
  const card = i % 11 !== 0;
  const failed = i % 17 === 0;
  const refunded = !failed && i % 23 === 0;
  const amount = 500 + i * 7;
  return {
    id: `${card ? "ch" : "py"}_3Pq${String(i).padStart(21, "0")}`,
    object: "charge",
    amount,
    amount_captured: failed ? 0 : amount,
    amount_refunded: refunded ? amount : 0,
    application: null,
    application_fee: null,
    balance_transaction: failed ? null : `txn_3Pq${String(i).padStart(21, "0")}`,
    billing_details: {
      address: { city: null, country: "US", line1: null, line2: null, postal_code: "94103", state: null },
      email: i % 3 === 0 ? null : `customer${i}@example.com`,
      name: i % 3 === 0 ? null : `Customer ${i}`,
      phone: null,
    },
    calculated_statement_descriptor: "ACME",
    captured: !failed,
    created: 1717200000 + i * 3600,
    currency: i % 5 === 0 ? "eur" : "usd",
    customer: i % 3 === 0 ? null : `cus_Q${String(i).padStart(13, "0")}`,
    description: i % 4 === 0 ? `Order ${i}` : null,
    disputed: false,
    failure_code: failed ? "card_declined" : null,
    failure_message: failed ? "Your card was declined." : null,
    fraud_details: {},
    livemode: false,
    metadata: { order_id: String(10_000 + i) },
    outcome: {
      network_status: failed ? "declined_by_network" : "approved_by_network",
      reason: failed ? "generic_decline" : null,
      risk_level: "normal",
      risk_score: i % 100,
      seller_message: failed ? "The bank did not return any further details." : "Payment complete.",
      type: failed ? "issuer_declined" : "authorized",
    },
    paid: !failed,
    payment_intent: `pi_3Pq${String(i).padStart(21, "0")}`,
    payment_method: card ? `pm_1Pq${String(i).padStart(21, "0")}` : `pm_1Ba${String(i).padStart(21, "0")}`,
    payment_method_details: card
      ? {
          card: {
            brand: i % 2 ? "visa" : "mastercard",
            checks: { address_line1_check: null, address_postal_code_check: "pass", cvc_check: "pass" },
            country: "US",
            exp_month: (i % 12) + 1,
            exp_year: 2030,
            fingerprint: `fp${i}`,
            funding: "credit",
            last4: String(4242 + (i % 5)).slice(-4),
            network: i % 2 ? "visa" : "mastercard",
            three_d_secure: null,
            wallet: null,
          },
          type: "card",
        }
      : {
          type: "us_bank_account",
          us_bank_account: {
            account_holder_type: "individual",
            bank_name: "STRIPE TEST BANK",
            last4: "6789",
          },
        },
    receipt_email: i % 3 === 0 ? null : `customer${i}@example.com`,
    receipt_number: null,
    receipt_url: `https://pay.stripe.com/receipts/payment/CAcaFwoV${i}`,
    refunded,
    review: null,
    shipping: null,
    source_transfer: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: failed ? "failed" : "succeeded",
    transfer_data: null,
    transfer_group: null,
  };
});

// --- Slack ----------------------------------------------------------------------------------

export const MESSAGE_COUNT = 450;
/** Messages newest first, as conversations.history returns them. */
export const messages = Array.from({ length: MESSAGE_COUNT }, (_, k) => {
  const i = MESSAGE_COUNT - k;
  const ts = `${1717200000 + i * 60}.${String(100000 + i).padStart(6, "0")}`;
  if (i % 25 === 0)
    return {
      type: "message",
      subtype: "bot_message",
      text: `Deploy ${i} finished`,
      ts,
      username: "deploybot",
      bot_id: "B0123DEPLOY",
      app_id: "A0123DEPLOY",
      blocks: [],
    };
  if (i % 40 === 0)
    return {
      type: "message",
      subtype: "channel_join",
      ts,
      user: "U0NEWUSER1",
      text: "<@U0NEWUSER1> has joined the channel",
    };
  return {
    type: "message",
    user: `U0${(i % 7) + 1}ABCDEFG`,
    text: `message number ${i}`,
    ts,
    team: "T0123TEAM",
    client_msg_id: `5d7c0a8e-0000-4000-8000-${String(i).padStart(12, "0")}`,
    blocks: [{ type: "rich_text", block_id: `b${i}`, elements: [] }],
    ...(i % 9 === 0
      ? {
          thread_ts: ts,
          reply_count: 2,
          reply_users_count: 1,
          latest_reply: `${1717200000 + i * 60 + 30}.000100`,
          reply_users: ["U01ABCDEFG"],
          is_locked: false,
          subscribed: false,
        }
      : {}),
    ...(i % 6 === 0
      ? {
          reactions: [
            { name: "thumbsup", users: ["U01ABCDEFG"], count: 1 },
            { name: "eyes", users: ["U02ABCDEFG"], count: 1 },
          ],
        }
      : {}),
    ...(i % 13 === 0
      ? { edited: { user: `U0${(i % 7) + 1}ABCDEFG`, ts: `${1717200000 + i * 60 + 5}.000200` } }
      : {}),
  };
});

// --- Jira -----------------------------------------------------------------------------------

export const PROJECT_COUNT = 120;
export const projects = (site: string) =>
  Array.from({ length: PROJECT_COUNT }, (_, k) => {
    const i = k + 1;
    const id = String(10_000 + i);
    return {
      expand: "description,lead,issueTypes,url,projectKeys,permissions,insight",
      self: `${site}/rest/api/3/project/${id}`,
      id,
      key: `P${String(i).padStart(3, "0")}`,
      description: i % 5 === 0 ? "" : `Project number ${i}, with, commas`,
      lead: {
        self: `${site}/rest/api/3/user?accountId=5b10a2844c20165700ede21g`,
        accountId: `5b10a2844c20165700ede2${String(i % 10).padStart(2, "0")}`,
        avatarUrls: { "48x48": "https://avatar-management.example/48" },
        displayName: `Lead ${i % 10}`,
        active: true,
      },
      name: `Project ${i}`,
      avatarUrls: { "48x48": `${site}/secure/projectavatar?pid=${id}` },
      ...(i % 4 === 0
        ? {
            projectCategory: {
              self: `${site}/rest/api/3/projectCategory/10000`,
              id: "10000",
              name: "Platform",
              description: "",
            },
          }
        : {}),
      projectTypeKey: ["software", "service_desk", "business"][i % 3],
      simplified: i % 2 === 0,
      style: i % 2 === 0 ? "next-gen" : "classic",
      isPrivate: false,
      properties: {},
      insight: { totalIssueCount: i * 13, lastIssueUpdateTime: "2024-04-22T05:37:05.000+0000" },
    };
  });

// --- PokeAPI --------------------------------------------------------------------------------

export const POKEMON = [
  "bulbasaur",
  "ivysaur",
  "venusaur",
  "charmander",
  "charmeleon",
  "charizard",
  "mr-mime",
  "porygon2",
];
export const POKEMON_COUNT = 151;
export const pokemonName = (id: number) => POKEMON[id - 1] ?? `pokemon-${id}`;

// --- Spotify --------------------------------------------------------------------------------

export const albums = Array.from({ length: 8 }, (_, k) => {
  const id = spotifyId("album", k + 1);
  const year = k === 3;
  return {
    album_type: ["album", "single", "compilation"][k % 3],
    total_tracks: k === 0 ? 60 : 3 + k,
    available_markets: ["DE", "FR", "US"],
    external_urls: { spotify: `https://open.spotify.com/album/${id}` },
    href: `https://api.spotify.com/v1/albums/${id}`,
    id,
    images:
      k === 5
        ? []
        : [
            { url: `https://i.scdn.co/image/ab67616d0000b273${id}`, height: 640, width: 640 },
            { url: `https://i.scdn.co/image/ab67616d00001e02${id}`, height: 300, width: 300 },
          ],
    name: `Album ${k + 1}`,
    release_date: year ? "2024" : `2024-05-${String(10 + k).padStart(2, "0")}`,
    release_date_precision: year ? "year" : "day",
    type: "album",
    uri: `spotify:album:${id}`,
    artists: [
      {
        external_urls: { spotify: `https://open.spotify.com/artist/${spotifyId("artist", k + 1)}` },
        href: `https://api.spotify.com/v1/artists/${spotifyId("artist", k + 1)}`,
        id: spotifyId("artist", k + 1),
        name: `Artist ${k + 1}`,
        type: "artist",
        uri: `spotify:artist:${spotifyId("artist", k + 1)}`,
      },
    ],
  };
});
export const tracksOf = (albumIndex: number) =>
  Array.from({ length: albums[albumIndex].total_tracks }, (_, t) => {
    const id = spotifyId("track", albumIndex * 100 + t + 1);
    return {
      artists: albums[albumIndex].artists,
      available_markets: ["DE", "FR", "US"],
      disc_number: t < 30 ? 1 : 2,
      duration_ms: 180_000 + t * 1000,
      explicit: t % 4 === 0,
      external_urls: { spotify: `https://open.spotify.com/track/${id}` },
      href: `https://api.spotify.com/v1/tracks/${id}`,
      id,
      name: `Track ${t + 1}`,
      preview_url: null,
      track_number: (t % 30) + 1,
      type: "track",
      uri: `spotify:track:${id}`,
      is_local: false,
    };
  });

// --- GitHub ---------------------------------------------------------------------------------

export const REPO_NAMES = ["api", "docs", "legacy-wiki", "web", "widgets"];
export const ISSUES_DISABLED = "legacy-wiki";
export const issueCounts: Record<string, number> = { api: 1, docs: 4, "legacy-wiki": 0, web: 5, widgets: 3 };
export const repos = REPO_NAMES.map((name, k) => ({
  id: 700_000 + k,
  node_id: `R_kgDO${k}`,
  name,
  full_name: `acme/${name}`,
  private: k === 1,
  owner: { login: "acme", id: 9919, type: "Organization", site_admin: false },
  html_url: `https://github.com/acme/${name}`,
  description: k % 2 ? null : `The ${name}`,
  fork: false,
  url: `https://api.github.com/repos/acme/${name}`,
  created_at: "2020-01-01T00:00:00Z",
  updated_at: `2024-0${k + 1}-01T00:00:00Z`,
  pushed_at: k === 2 ? null : `2024-0${k + 1}-02T00:00:00Z`,
  homepage: null,
  size: 100 * k,
  stargazers_count: 10 * k,
  watchers_count: 10 * k,
  language: k === 2 ? null : "TypeScript",
  has_issues: name !== ISSUES_DISABLED,
  has_projects: true,
  has_wiki: true,
  forks_count: k,
  archived: name === ISSUES_DISABLED,
  disabled: false,
  open_issues_count: issueCounts[name],
  license: null,
  topics: ["api"],
  visibility: k === 1 ? "private" : "public",
  default_branch: "main",
}));
export const issuesOf = (repo: string) =>
  Array.from({ length: issueCounts[repo] }, (_, k) => {
    const n = issueCounts[repo] - k;
    const pr = n % 3 === 0;
    return {
      url: `https://api.github.com/repos/acme/${repo}/issues/${n}`,
      html_url: `https://github.com/acme/${repo}/${pr ? "pull" : "issues"}/${n}`,
      id: 2_000_000 + REPO_NAMES.indexOf(repo) * 1000 + n,
      node_id: `I_kwDO${n}`,
      number: n,
      title: `${repo} #${n}`,
      user: { login: n % 2 ? "ada" : "linus", id: 1 + (n % 2), type: "User" },
      labels: n % 2 ? [{ id: 1, name: "bug", color: "d73a4a", default: true }] : [],
      state: n === 1 ? "closed" : "open",
      locked: false,
      assignee: null,
      assignees: n === 2 ? [{ login: "grace", id: 3 }] : [],
      milestone: null,
      comments: n,
      created_at: `2024-02-0${n}T10:00:00Z`,
      updated_at: `2024-03-0${n}T10:00:00Z`,
      closed_at: n === 1 ? "2024-03-01T10:00:00Z" : null,
      author_association: "MEMBER",
      body: "text",
      state_reason: n === 1 ? "completed" : null,
      ...(pr
        ? {
            pull_request: {
              url: `https://api.github.com/repos/acme/${repo}/pulls/${n}`,
              html_url: `https://github.com/acme/${repo}/pull/${n}`,
              diff_url: `https://github.com/acme/${repo}/pull/${n}.diff`,
              patch_url: `https://github.com/acme/${repo}/pull/${n}.patch`,
              merged_at: null,
            },
          }
        : {}),
    };
  });

// --- the server -----------------------------------------------------------------------------

export interface FakeApis {
  url: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

export async function startFakeApis(): Promise<FakeApis> {
  const requests: SeenRequest[] = [];
  const issuedTokens = new Set<string>();
  let url = "";

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
    res.end(text);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const u = new URL(req.url ?? "/", url);
    const q = u.searchParams;
    const auth = req.headers.authorization ?? "";
    const int = (name: string, dflt: number) => (q.has(name) ? Number(q.get(name)) : dflt);
    let m: RegExpExecArray | null;

    // Stripe: https://docs.stripe.com/api/charges/list and https://docs.stripe.com/api/pagination
    if (u.pathname === "/stripe/v1/charges") {
      if (auth !== basic(CREDENTIALS.STRIPE_SECRET_KEY, ""))
        return send(res, 401, {
          error: { message: "Invalid API Key provided: sk_test_****", type: "invalid_request_error" },
        });
      const limit = Math.min(100, int("limit", 10));
      const gte = q.has("created[gte]") ? Number(q.get("created[gte]")) : -Infinity;
      let list = charges.filter((c) => c.created >= gte);
      const after = q.get("starting_after");
      if (after) {
        const at = list.findIndex((c) => c.id === after);
        if (at < 0)
          return send(res, 400, {
            error: {
              message: `No such charge: '${after}'`,
              param: "starting_after",
              type: "invalid_request_error",
            },
          });
        list = list.slice(at + 1);
      }
      return send(res, 200, {
        object: "list",
        url: "/v1/charges",
        has_more: list.length > limit,
        data: list.slice(0, limit),
      });
    }

    // Slack: https://api.slack.com/methods/conversations.history (errors are 200 { ok: false })
    if (u.pathname === "/slack/api/conversations.history") {
      if (auth !== `Bearer ${CREDENTIALS.SLACK_BOT_TOKEN}`)
        return send(res, 200, { ok: false, error: "invalid_auth" });
      if (q.get("channel") !== CREDENTIALS.SLACK_CHANNEL_ID)
        return send(res, 200, { ok: false, error: "channel_not_found" });
      const limit = Math.min(999, int("limit", 100));
      const oldest = Number(q.get("oldest") ?? "0");
      const list = messages.filter((msg) => Number(msg.ts) > oldest);
      const cursor = q.get("cursor");
      const start = cursor
        ? Number(Buffer.from(cursor, "base64").toString("utf8").replace("next_ts:", ""))
        : 0;
      const page = list.slice(start, start + limit);
      const more = start + limit < list.length;
      return send(res, 200, {
        ok: true,
        messages: page,
        has_more: more,
        pin_count: 0,
        channel_actions_ts: null,
        channel_actions_count: 0,
        ...(more
          ? { response_metadata: { next_cursor: Buffer.from(`next_ts:${start + limit}`).toString("base64") } }
          : {}),
      });
    }

    // Jira Cloud: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-projects/#api-rest-api-3-project-search-get
    if (u.pathname === "/jira/rest/api/3/project/search") {
      if (auth !== basic(CREDENTIALS.JIRA_EMAIL, CREDENTIALS.JIRA_API_TOKEN))
        return send(res, 401, { errorMessages: ["You are not authenticated."], errors: {} });
      const site = `${url}/jira`;
      const all = projects(site).map((p) => {
        const expand = (q.get("expand") ?? "").split(",");
        const { description, lead, insight, ...rest } = p;
        return {
          ...rest,
          ...(expand.includes("description") ? { description } : {}),
          ...(expand.includes("lead") ? { lead } : {}),
          ...(expand.includes("insight") ? { insight } : {}),
        };
      });
      // Jira caps maxResults (at 50 here, to get several pages).
      const maxResults = Math.min(50, int("maxResults", 50));
      const startAt = int("startAt", 0);
      const values = all.slice(startAt, startAt + maxResults);
      const isLast = startAt + maxResults >= all.length;
      const self = `${site}/rest/api/3/project/search?startAt=${startAt}&maxResults=${maxResults}`;
      return send(res, 200, {
        self,
        ...(isLast
          ? {}
          : {
              nextPage: `${site}/rest/api/3/project/search?startAt=${startAt + maxResults}&maxResults=${maxResults}`,
            }),
        maxResults,
        startAt,
        total: all.length,
        isLast,
        values,
      });
    }

    // PokeAPI: https://pokeapi.co/docs/v2#resource-listspagination-section
    if (u.pathname === "/pokeapi/api/v2/pokemon") {
      const limit = int("limit", 20);
      const offset = int("offset", 0);
      const link = (o: number) => `${url}/pokeapi/api/v2/pokemon?offset=${o}&limit=${limit}`;
      const results = [];
      for (let id = offset + 1; id <= Math.min(POKEMON_COUNT, offset + limit); id++)
        results.push({ name: pokemonName(id), url: `https://pokeapi.co/api/v2/pokemon/${id}/` });
      return send(res, 200, {
        count: POKEMON_COUNT,
        next: offset + limit < POKEMON_COUNT ? link(offset + limit) : null,
        previous: offset > 0 ? link(Math.max(0, offset - limit)) : null,
        results,
      });
    }

    // Spotify accounts: https://developer.spotify.com/documentation/web-api/tutorials/client-credentials-flow
    if (u.pathname === "/spotify-accounts/api/token" && req.method === "POST") {
      const form = new URLSearchParams(body);
      if (auth !== basic(CREDENTIALS.SPOTIFY_CLIENT_ID, CREDENTIALS.SPOTIFY_CLIENT_SECRET))
        return send(res, 400, { error: "invalid_client", error_description: "Invalid client" });
      if (form.get("grant_type") !== "client_credentials")
        return send(res, 400, {
          error: "unsupported_grant_type",
          error_description: "grant_type parameter is missing",
        });
      const token = `BQD${issuedTokens.size + 1}FakeSpotifyAccessToken`;
      issuedTokens.add(token);
      return send(res, 200, { access_token: token, token_type: "Bearer", expires_in: 3600 });
    }
    if (u.pathname.startsWith("/spotify/v1/")) {
      const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
      if (!issuedTokens.has(token))
        return send(res, 401, { error: { status: 401, message: "Invalid access token" } });
      const paging = <T>(href: string, items: T[], max: number) => {
        const limit = Math.min(max, int("limit", 20));
        const offset = int("offset", 0);
        const link = (o: number) => `${url}${href}?offset=${o}&limit=${limit}`;
        return {
          href: link(offset),
          items: items.slice(offset, offset + limit),
          limit,
          next: offset + limit < items.length ? link(offset + limit) : null,
          offset,
          previous: offset > 0 ? link(Math.max(0, offset - limit)) : null,
          total: items.length,
        };
      };
      // https://developer.spotify.com/documentation/web-api/reference/get-new-releases (capped at 5 here)
      if (u.pathname === "/spotify/v1/browse/new-releases")
        return send(res, 200, { albums: paging("/spotify/v1/browse/new-releases", albums, 5) });
      // https://developer.spotify.com/documentation/web-api/reference/get-an-albums-tracks
      if ((m = /^\/spotify\/v1\/albums\/([0-9A-Za-z]{22})\/tracks$/.exec(u.pathname))) {
        const k = albums.findIndex((a) => a.id === m![1]);
        if (k < 0) return send(res, 404, { error: { status: 404, message: "Non existing id" } });
        return send(res, 200, paging(u.pathname, tracksOf(k), 50));
      }
    }

    // GitHub: https://docs.github.com/en/rest/repos/repos#list-organization-repositories
    if (u.pathname.startsWith("/github/")) {
      if (auth !== `Bearer ${CREDENTIALS.GITHUB_TOKEN}`)
        return send(res, 401, {
          message: "Bad credentials",
          documentation_url: "https://docs.github.com/rest",
        });
      const pageOf = <T>(items: T[]) => {
        // GitHub allows per_page up to 100; capped at 2 here.
        const per = Math.min(2, int("per_page", 30));
        const page = int("page", 1);
        const last = Math.max(1, Math.ceil(items.length / per));
        const link = (p: number, rel: string) => {
          const l = new URL(u);
          l.searchParams.set("page", String(p));
          return `<${l}>; rel="${rel}"`;
        };
        const links = [page < last ? link(page + 1, "next") : null, link(last, "last")].filter(Boolean);
        return { rows: items.slice((page - 1) * per, page * per), link: links.join(", ") };
      };
      const headers = (link: string) => ({
        link,
        "x-ratelimit-remaining": "4999",
        "x-ratelimit-reset": "1893456000",
      });
      if ((m = /^\/github\/orgs\/([^/]+)\/repos$/.exec(u.pathname))) {
        if (m[1] !== CREDENTIALS.GITHUB_ORG) return send(res, 404, { message: "Not Found" });
        const { rows, link } = pageOf(repos);
        return send(res, 200, rows, headers(link));
      }
      // https://docs.github.com/en/rest/issues/issues#list-repository-issues
      if ((m = /^\/github\/repos\/([^/]+)\/([^/]+)\/issues$/.exec(u.pathname))) {
        const repo = decodeURIComponent(m[2]);
        if (m[1] !== "acme" || !REPO_NAMES.includes(repo)) return send(res, 404, { message: "Not Found" });
        if (repo === ISSUES_DISABLED)
          return send(res, 410, {
            message: "Issues are disabled for this repo",
            documentation_url: "https://docs.github.com/v3/issues/",
            status: "410",
          });
        const since = q.get("since");
        const list = issuesOf(repo).filter((i) => !since || i.updated_at >= since);
        const { rows, link } = pageOf(list);
        return send(res, 200, rows, headers(link));
      }
    }
    return send(res, 404, { message: "Not Found" });
  };

  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      const u = new URL(req.url ?? "/", "http://fake");
      requests.push({
        method: req.method ?? "GET",
        path: u.pathname,
        query: Object.fromEntries(u.searchParams),
        headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
        body,
      });
      try {
        handle(req, res, body);
      } catch (err) {
        send(res, 500, { message: String(err) });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
