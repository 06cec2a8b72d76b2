/**
 * A real HTTP API server (node:http) for integration tests of the HTTP client, paginators, retries,
 * rate limits and OAuth2. Start one per test (or per file) and close it afterwards:
 *
 *   const server = await startApiServer({ faults: { seed: 7, rate: 0.2, kinds: ["503", "reset"] } });
 *   // ... point a pipeline at server.url ...
 *   expect(records).toEqual(dataset());
 *   await server.close();
 *
 * GROUND TRUTH
 *   dataset(name = "items", n = 237) → [{ id: 1.., name: "item-1", email: "item-1@example.com",
 *   updated_at: "2024-01-01T01:12:59Z" (strictly increasing, second precision), price: 79.19,
 *   tags: [0..3 strings], owner: { login: "user-2", id: 1002 } }, ...]. Deterministic.
 *   Every data endpoint serves this ordered list. Query params shared by all of them:
 *     n=<count>          dataset size for this request (0..10,000,000; default 237)
 *     dataset=<name>     record prefix is the name without a trailing "s" ("users" → "user-1").
 *                        dataset=dirty breaks the schema on purpose: price is a string when id % 10 == 0,
 *                        and an extra field `legacy_code` appears when id % 25 == 0.
 *     since=<ISO date>   only records with updated_at >= since (GitHub style, inclusive); for POST
 *                        /cursor-body/search it may also be a top-level body field.
 *     fail=<k>&fail_kind=<kind>   the first k attempts of each identical request (method + path?query +
 *                        body) get fault <kind> (default "503", see FAULTS); then it succeeds.
 *                        Deterministic alternative to random faults (which are skipped for that request).
 *   Page size: the param named per endpoint, default 25, silently CAPPED at 50. A non-integer or
 *   negative numeric param gives 400 {error:"invalid_parameter", parameter}.
 *
 * PAGINATED ENDPOINTS
 *   GET /none/items                       → the whole dataset as a bare array.
 *   GET /cursor/items?cursor=&limit=      → { data, next_cursor: string | null, has_more }.
 *       Cursors are opaque STANDARD base64 and always contain "+" and "/" (often "="): a client that
 *       does not URL-encode them gets 400 {error:"invalid_cursor"}.
 *       empty_pages=1   Slack style: an empty page (data [] + a cursor) before the 2nd real page, and
 *                       after the last real page one empty page with a cursor, then a final empty page
 *                       with next_cursor null. (2 extra empty requests in a row at the end.)
 *       loop=1          the 3rd page returns the same next_cursor as the 2nd (a pagination loop):
 *                       requesting it again yields page 3 again, forever.
 *       cursor_style=empty_string   the last page has next_cursor "" (has_more false).
 *   GET /cursor-header/items?cursor=&limit=   → bare array; next cursor in the `X-Next-Cursor` response
 *       header, absent on the last page. (empty_pages / loop work here too.)
 *   POST /cursor-body/search  body { cursor?, limit?, since?, n? } (JSON)
 *       → { results, paging: { next: { after } } }; `paging` is {} on the last page. Bad JSON → 400.
 *   GET /offset/items?offset=&limit=      → { items, total }. total=estimate → total is null.
 *       Offsets past the end give items [].
 *   GET /page/items?page=&per_page=       → { results, total_pages } (pages 1-based; page 0 → 400);
 *       no_total=1 omits total_pages; pages past the end give results [].
 *   GET /link/items?page=&per_page=       → bare array + RFC 8288 `Link` header with rels first, prev
 *       (page > 1), next (not on the last page), last, in that order. Link URLs keep the request's
 *       other query params (n, dataset, since, …), EXCEPT an auth.apiKey query param, which the client
 *       must add again. Page size in links is the effective (capped) one.
 *       relative=1          link URLs are path-relative: </link/items?page=3&per_page=25>.
 *       cross_origin=<origin>   page 2's next link points to that origin (e.g. http://127.0.0.2:PORT).
 *       link_style=tricky   harder to parse: rel=last unquoted, `title="page, one"` params containing a
 *                           comma, and next given as rel="next nofollow" with a type param before it.
 *   GET /next/items?offset=&limit=        → PokeAPI style { count, next, previous, results }; next is an
 *       absolute URL (null on the last page).
 *       relative=1          next/previous are "/next/items?offset=50&limit=25&..."
 *       relative=query      next/previous are "?offset=50&limit=25&..." (resolve against the request URL)
 *       cross_origin=<origin>   page 2's next points to that origin.
 *
 * QUIRK ENDPOINTS
 *   GET /error-body      → 200 { ok: false, error: "invalid_auth" } (Slack style)
 *   GET /not-json        → 200 text/html "<html>Service temporarily unavailable</html>"
 *   GET /huge?bytes=N    → a valid JSON array of exactly N bytes (N >= 19; smaller N gives "[]"),
 *                          default 1 MiB, streamed with backpressure; Content-Length is set unless
 *                          chunked=1. Elements: {"id":1,"pad":"xxx…"}.
 *   ANY /echo[/…]        → 200 { method, path, url, query, headers, body, json? } describing the request.
 *                          Never faulted, never needs auth (rate limits do apply).
 *   ANY /status/:code    → that status, body { error: "status_<code>", status }. retry_after=<v> adds a
 *                          Retry-After header with that raw value.
 *   Unknown paths → 404 { error: "not_found" }; wrong method → 405.
 *
 * AUTH (opts.auth). When set, every endpoint except /echo and /oauth/token needs ONE of the configured
 *   credentials, else 401 { error: "unauthorized" } (+ WWW-Authenticate):
 *   bearer: "tok"         Authorization: <bearerScheme, default "Bearer"> tok
 *   basic: {username, password}   Authorization: Basic base64(user:pass) (password may be "")
 *   apiKey: {name, value, in}     header `name` (case-insensitive) or query param `name`
 *   oauth2: {...}                 Authorization: Bearer <a token issued by POST /oauth/token>;
 *                                 expired or unknown → 401 { error: "invalid_token" }.
 *
 * OAUTH2 — POST /oauth/token (application/x-www-form-urlencoded)
 *   grant_type=client_credentials | refresh_token (&refresh_token=…), optional scope (echoed back).
 *   Client auth: client_id/client_secret in the body or HTTP Basic; oauth2.clientAuth restricts to one.
 *   → 200 { access_token, token_type: "Bearer", expires_in: tokenTtlSeconds, scope?, refresh_token? }
 *   refresh_token is returned only by a refresh_token grant with rotateRefreshToken: a NEW one each time;
 *   the previous becomes invalid: 400 { error: "invalid_grant", error_description: "refresh token revoked" }.
 *   Unknown refresh token → 400 invalid_grant ("unknown refresh token"). Wrong client id/secret or the
 *   wrong client auth method → 401 { error: "invalid_client" }. Other grant → 400 unsupported_grant_type.
 *   Non-form body → 400 invalid_request. failWith: {status, error} makes every token request fail so.
 *   server.expireTokens() expires every access token at once (no need to sleep for TTLs);
 *   server.refreshToken() is the currently valid refresh token. Not rate limited; can be faulted.
 *
 * RATE LIMIT (opts.rateLimit: { perSecond, style }) — a sliding 1 s window over accepted requests (every
 *   endpoint except /oauth/token). Accepted responses carry X-RateLimit-Limit, X-RateLimit-Remaining
 *   (after this request) and X-RateLimit-Reset (when the oldest request leaves the window: epoch seconds
 *   for "403-reset-epoch", otherwise delta seconds, rounded up). Beyond perSecond:
 *   "429-retry-after-seconds" → 429 Retry-After: <seconds, one decimal when needed, e.g. "0.4">
 *   "429-retry-after-date"    → 429 Retry-After: <HTTP date, rounded up to the next second>
 *   "403-reset-epoch"         → 403 X-RateLimit-Remaining: 0, X-RateLimit-Reset: <epoch seconds>
 *   "429-reset-delta"         → 429 X-RateLimit-Remaining: 0, X-RateLimit-Reset: <delta seconds, >= 1>
 *   Rejected requests do not use up the window. They are recorded with rateLimited: true.
 *
 * FAULTS (opts.faults or server.setFaults()) — { seed?, rate, kinds, slowMs?, retryAfterSeconds?,
 *   truncateStyle?, paths? }. Every endpoint but /echo may be faulted (paths: only these path prefixes).
 *   The decision is a mulberry32 draw seeded from hash(seed, method + path?query + body, attempt number
 *   of that request), so it does not depend on how concurrent requests interleave. The same request
 *   NEVER gets a fault twice in a row: the attempt right after a faulted one always goes through (it may
 *   still be rate limited). Kinds:
 *   "500" "502" "503" "504"  that status, JSON body { error: "injected_fault", status }
 *   "reset"        reads the request, then resets the socket (socket.resetAndDestroy(): TCP RST, no response)
 *   "slow"         the real response, sent after slowMs (default 2000) — use a client timeout below it
 *   "truncate"     the real status and headers, but only the first half of the body, then the socket is
 *                  destroyed: with Content-Length: <full length> (truncateStyle "content-length", default)
 *                  or chunked without the terminating 0-chunk ("chunked"); "mixed" picks per request.
 *                  The JSON received is always incomplete.
 *   "429-seconds"  429 Retry-After: <retryAfterSeconds, default 1>
 *   "429-date"     429 Retry-After: HTTP date retryAfterSeconds (default 1) ahead, rounded up to a second
 *   "403-reset"    403 X-RateLimit-Remaining: 0, X-RateLimit-Reset: epoch seconds ~retryAfterSeconds ahead
 *
 * INSPECTION: server.requests (every request in arrival order: method, path, url, query, headers
 *   (lowercase), body, at (Date.now() ms at arrival), status (0 until answered, 0 for resets), fault?,
 *   rateLimited?), server.stats(), server.reset() (clears requests, stats, fault memory, rate window).
 */
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

// ---------------------------------------------------------------------------------------------
// Public types

export type FaultKind =
  | "500"
  | "502"
  | "503"
  | "504"
  | "reset"
  | "slow"
  | "truncate"
  | "429-seconds"
  | "429-date"
  | "403-reset";

export const FAULT_KINDS: readonly FaultKind[] = [
  "500",
  "502",
  "503",
  "504",
  "reset",
  "slow",
  "truncate",
  "429-seconds",
  "429-date",
  "403-reset",
];

export interface FaultOptions {
  /** Seed of the deterministic fault decisions (default 1). */
  seed?: number;
  /** Fraction (0..1) of requests that get a fault. */
  rate: number;
  kinds: FaultKind[];
  /** Delay of a "slow" response, ms (default 2000). */
  slowMs?: number;
  /** Wait asked by "429-seconds", "429-date" and "403-reset" (default 1). */
  retryAfterSeconds?: number;
  /** How "truncate" cuts the body (default "content-length"). */
  truncateStyle?: "content-length" | "chunked" | "mixed";
  /** Only requests whose path starts with one of these get faults (default: every faultable path). */
  paths?: string[];
}

export type RateLimitStyle =
  | "429-retry-after-seconds"
  | "429-retry-after-date"
  | "403-reset-epoch"
  | "429-reset-delta";

export interface OAuthServerOptions {
  clientId: string;
  clientSecret: string;
  /** The refresh token that is valid at start. */
  refreshToken?: string;
  tokenTtlSeconds: number;
  rotateRefreshToken?: boolean;
  /** Accept client credentials only this way (default: body or basic). */
  clientAuth?: "body" | "basic";
  /** Every token request fails with this status and { error }. */
  failWith?: { status: number; error: string };
}

export interface ServerOptions {
  host?: string;
  port?: number;
  latencyMs?: number;
  faults?: FaultOptions;
  rateLimit?: { perSecond: number; style: RateLimitStyle };
  auth?: {
    bearer?: string;
    /** Scheme expected before the bearer token (default "Bearer", compared case-insensitively). */
    bearerScheme?: string;
    basic?: { username: string; password: string };
    apiKey?: { name: string; value: string; in: "header" | "query" };
    oauth2?: OAuthServerOptions;
  };
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** path + query string, as received */
  url: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string;
  /** Date.now() at arrival */
  at: number;
  /** 0 until answered; stays 0 for a reset connection */
  status: number;
  fault?: FaultKind;
  rateLimited?: boolean;
}

export interface ServerStats {
  requests: number;
  byStatus: Record<number, number>;
  faultsInjected: Record<string, number>;
  rateLimited: number;
  tokensIssued: number;
  refreshes: number;
}

export interface TestServer {
  url: string;
  origin: string;
  requests: RecordedRequest[];
  setFaults(f: FaultOptions | null): void;
  stats(): ServerStats;
  /** Expire every issued OAuth2 access token now. */
  expireTokens(): void;
  /** The currently valid OAuth2 refresh token (the latest one when rotating). */
  refreshToken(): string | undefined;
  /** Forget recorded requests, stats, fault memory and the rate-limit window. */
  reset(): void;
  /** Stops the server and destroys open sockets (pending slow responses are dropped). */
  close(): Promise<void>;
}

export const DEFAULT_DATASET_SIZE = 237;
export const DEFAULT_PAGE_SIZE = 25;
export const MAX_PAGE_SIZE = 50;
const MAX_N = 10_000_000;
const MAX_HUGE_BYTES = 1 << 30;

// ---------------------------------------------------------------------------------------------
// Dataset

const BASE_TIME = Date.UTC(2024, 0, 1);
const TAGS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];

function updatedAtMs(id: number): number {
  // id hours after BASE_TIME plus under an hour of jitter: strictly increasing.
  return BASE_TIME + id * 3_600_000 + ((id * 7919) % 3600) * 1000;
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The record with this id (1-based) of the named dataset. */
export function makeRecord(name: string, id: number): Record<string, unknown> {
  const prefix = name.endsWith("s") ? name.slice(0, -1) : name;
  const tags: string[] = [];
  for (let j = 0; j < id % 4; j++) tags.push(TAGS[(id + 2 * j) % TAGS.length]);
  const owner = (id % 13) + 1;
  const record: Record<string, unknown> = {
    id,
    name: `${prefix}-${id}`,
    email: `${prefix}-${id}@example.com`,
    updated_at: isoSeconds(updatedAtMs(id)),
    price: ((id * 7919) % 100_000) / 100,
    tags,
    owner: { login: `user-${owner}`, id: 1000 + owner },
  };
  if (name === "dirty") {
    if (id % 10 === 0) record.price = (record.price as number).toFixed(2);
    if (id % 25 === 0) record.legacy_code = `L${id}`;
  }
  return record;
}

/** The ground truth every data endpoint serves, in order. */
export function dataset(name = "items", n = DEFAULT_DATASET_SIZE): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let id = 1; id <= n; id++) out.push(makeRecord(name, id));
  return out;
}

/** A window on the dataset: records first+1 .. first+total. */
interface View {
  name: string;
  first: number;
  total: number;
}

function slice(view: View, offset: number, count: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const end = Math.min(view.total, offset + count);
  for (let k = offset; k < end; k++) out.push(makeRecord(view.name, view.first + k + 1));
  return out;
}

/** Number of ids in 1..n whose updated_at is before sinceMs. */
function countBefore(n: number, sinceMs: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (updatedAtMs(mid + 1) < sinceMs) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly payload: Record<string, unknown>,
  ) {
    super(String(payload.error));
  }
}

/** A body produced in pieces: `length` is its exact size, sent as Content-Length unless `chunked`. */
type StreamBody = { length: number; chunked: boolean; chunks: () => Generator<string> };

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string | StreamBody;
}

function json(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  return {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
    body: JSON.stringify(value),
  };
}

function intParam(value: string | number | undefined | null, name: string, def: number, min = 0): number {
  if (value === undefined || value === null || value === "") return def;
  const n = typeof value === "number" ? value : /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new HttpError(400, {
      error: "invalid_parameter",
      parameter: name,
      message: `${name} must be an integer >= ${min}`,
    });
  }
  return n;
}

function pageSize(value: string | number | undefined | null, name: string): number {
  const size = intParam(value, name, DEFAULT_PAGE_SIZE, 1);
  return Math.min(size, MAX_PAGE_SIZE);
}

function viewOf(get: (key: string) => string | number | undefined | null): View {
  const name = String(get("dataset") ?? "items") || "items";
  const n = intParam(get("n"), "n", DEFAULT_DATASET_SIZE);
  if (n > MAX_N) throw new HttpError(400, { error: "invalid_parameter", parameter: "n" });
  let first = 0;
  const since = get("since");
  if (since !== undefined && since !== null && since !== "") {
    const ms = Date.parse(String(since));
    if (Number.isNaN(ms)) throw new HttpError(400, { error: "invalid_parameter", parameter: "since" });
    first = countBefore(n, ms);
  }
  return { name, first, total: n - first };
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

// Cursors: standard base64 of 0xfb 0xff + JSON, so they always contain "+/" (tests URL encoding).
const CURSOR_MAGIC = Buffer.from([0xfb, 0xff]);

interface CursorState {
  /** offset of the next real record */
  o: number;
  /** phase: r = real page, e = inserted empty page, t = trailing empty page, f = final empty page */
  p: "r" | "e" | "t" | "f";
  /** 1-based index of the page this cursor asks for */
  i: number;
}

function encodeCursor(state: CursorState): string {
  return Buffer.concat([CURSOR_MAGIC, Buffer.from(JSON.stringify(state))]).toString("base64");
}

function decodeCursor(cursor: string): CursorState {
  const bad = new HttpError(400, { error: "invalid_cursor", message: `invalid cursor ${cursor}` });
  const buf = Buffer.from(cursor, "base64");
  // Node's decoder skips invalid characters (e.g. a "+" that became " "): insist on a round trip.
  if (buf.toString("base64") !== cursor || !buf.subarray(0, 2).equals(CURSOR_MAGIC)) throw bad;
  try {
    const s = JSON.parse(buf.subarray(2).toString("utf8")) as CursorState;
    if (typeof s.o !== "number" || typeof s.i !== "number" || !["r", "e", "t", "f"].includes(s.p)) throw bad;
    return s;
  } catch {
    throw bad;
  }
}

interface CursorFlags {
  emptyPages: boolean;
  loop: boolean;
}

/** The shared cursor state machine of /cursor, /cursor-header and /cursor-body. */
function cursorPage(
  view: View,
  cursor: string | undefined,
  size: number,
  flags: CursorFlags,
): { data: Record<string, unknown>[]; next: string | null } {
  const state: CursorState = cursor ? decodeCursor(cursor) : { o: 0, p: "r", i: 1 };
  let data: Record<string, unknown>[] = [];
  let next: CursorState | null = null;
  switch (state.p) {
    case "r": {
      data = slice(view, state.o, size);
      const o = state.o + data.length;
      if (o < view.total) next = { o, p: flags.emptyPages && state.i === 1 ? "e" : "r", i: state.i + 1 };
      else if (flags.emptyPages) next = { o: view.total, p: "t", i: state.i + 1 };
      break;
    }
    case "e":
      next = { o: state.o, p: "r", i: state.i + 1 };
      break;
    case "t":
      next = { o: state.o, p: "f", i: state.i + 1 };
      break;
    case "f":
      break;
  }
  // loop: page 3 answers with the cursor page 2 gave, i.e. the one that asked for page 3.
  if (flags.loop && state.i === 3 && cursor) return { data, next: cursor };
  return { data, next: next ? encodeCursor(next) : null };
}

function cursorFlags(q: URLSearchParams): CursorFlags {
  return { emptyPages: q.get("empty_pages") === "1", loop: q.get("loop") === "1" };
}

// ---------------------------------------------------------------------------------------------
// The server

interface Route {
  methods: string[];
  /** counted by the rate limit */
  limited: boolean;
  /** may get injected faults */
  faultable: boolean;
  /** needs the configured auth */
  auth: boolean;
  handle: (ctx: Ctx) => Reply | Promise<Reply>;
}

interface Ctx {
  req: IncomingMessage;
  method: string;
  url: URL;
  query: URLSearchParams;
  body: string;
  params: string[];
}

export async function startApiServer(opts: ServerOptions = {}): Promise<TestServer> {
  const host = opts.host ?? "127.0.0.1";
  let origin = "";
  let faults: FaultOptions | null = opts.faults ?? null;
  let closed = false;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const sleepers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  const attempts = new Map<string, { count: number; lastFaulted: boolean }>();
  let window: number[] = [];
  let st: ServerStats = emptyStats();

  // OAuth2 state
  const oauth = opts.auth?.oauth2;
  const accessTokens = new Map<string, number>(); // token → expiry ms
  const validRefresh = new Set<string>(oauth?.refreshToken ? [oauth.refreshToken] : []);
  const revokedRefresh = new Set<string>();
  let latestRefresh = oauth?.refreshToken;

  function emptyStats(): ServerStats {
    return { requests: 0, byStatus: {}, faultsInjected: {}, rateLimited: 0, tokensIssued: 0, refreshes: 0 };
  }

  function sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          sleepers.delete(entry);
          resolve();
        }, ms),
        resolve,
      };
      sleepers.add(entry);
    });
  }

  // --- links ---------------------------------------------------------------------------------

  const apiKeyQueryName = opts.auth?.apiKey?.in === "query" ? opts.auth.apiKey.name : undefined;

  function pathWith(ctx: Ctx, set: Record<string, string | number>): string {
    const q = new URLSearchParams(ctx.url.search);
    if (apiKeyQueryName) q.delete(apiKeyQueryName);
    for (const [k, v] of Object.entries(set)) q.set(k, String(v));
    return `${ctx.url.pathname}?${q}`;
  }

  function crossOrigin(ctx: Ctx): string | undefined {
    const value = ctx.query.get("cross_origin");
    if (!value) return undefined;
    try {
      return new URL(value).origin;
    } catch {
      throw new HttpError(400, { error: "invalid_parameter", parameter: "cross_origin" });
    }
  }

  // --- handlers ------------------------------------------------------------------------------

  const routes: Array<[RegExp, Route]> = [];
  const data = (methods: string[], handle: Route["handle"]): Route => ({
    methods,
    limited: true,
    faultable: true,
    auth: true,
    handle,
  });
  const getQ = (ctx: Ctx) => (k: string) => ctx.query.get(k);

  routes.push([
    /^\/none\/items$/,
    data(["GET"], (ctx) => {
      const view = viewOf(getQ(ctx));
      return json(200, slice(view, 0, view.total));
    }),
  ]);

  routes.push([
    /^\/cursor\/items$/,
    data(["GET"], (ctx) => {
      const view = viewOf(getQ(ctx));
      const page = cursorPage(
        view,
        ctx.query.get("cursor") ?? undefined,
        pageSize(ctx.query.get("limit"), "limit"),
        cursorFlags(ctx.query),
      );
      const emptyString = ctx.query.get("cursor_style") === "empty_string";
      return json(200, {
        data: page.data,
        next_cursor: page.next ?? (emptyString ? "" : null),
        has_more: page.next !== null,
      });
    }),
  ]);

  routes.push([
    /^\/cursor-header\/items$/,
    data(["GET"], (ctx) => {
      const view = viewOf(getQ(ctx));
      const page = cursorPage(
        view,
        ctx.query.get("cursor") ?? undefined,
        pageSize(ctx.query.get("limit"), "limit"),
        cursorFlags(ctx.query),
      );
      return json(200, page.data, page.next ? { "x-next-cursor": page.next } : {});
    }),
  ]);

  routes.push([
    /^\/cursor-body\/search$/,
    data(["POST"], (ctx) => {
      let body: Record<string, unknown> = {};
      if (ctx.body.trim() !== "") {
        try {
          body = JSON.parse(ctx.body) as Record<string, unknown>;
        } catch {
          throw new HttpError(400, { error: "invalid_json" });
        }
        if (typeof body !== "object" || body === null || Array.isArray(body)) {
          throw new HttpError(400, { error: "invalid_json", message: "expected a JSON object" });
        }
      }
      const fromBody = (k: string) => {
        const v = body[k];
        return typeof v === "string" || typeof v === "number" ? v : ctx.query.get(k);
      };
      const view = viewOf(fromBody);
      const cursor = body.cursor;
      if (cursor !== undefined && cursor !== null && typeof cursor !== "string") {
        throw new HttpError(400, { error: "invalid_cursor" });
      }
      const page = cursorPage(
        view,
        cursor ?? undefined,
        pageSize(fromBody("limit"), "limit"),
        cursorFlags(ctx.query),
      );
      return json(200, { results: page.data, paging: page.next ? { next: { after: page.next } } : {} });
    }),
  ]);

  routes.push([
    /^\/offset\/items$/,
    data(["GET"], (ctx) => {
      const view = viewOf(getQ(ctx));
      const offset = intParam(ctx.query.get("offset"), "offset", 0);
      const items = slice(view, offset, pageSize(ctx.query.get("limit"), "limit"));
      return json(200, { items, total: ctx.query.get("total") === "estimate" ? null : view.total });
    }),
  ]);

  routes.push([
    /^\/page\/items$/,
    data(["GET"], (ctx) => {
      const view = viewOf(getQ(ctx));
      const page = intParam(ctx.query.get("page"), "page", 1, 1);
      const size = pageSize(ctx.query.get("per_page"), "per_page");
      const results = slice(view, (page - 1) * size, size);
      const body: Record<string, unknown> = { results };
      if (ctx.query.get("no_total") !== "1") body.total_pages = Math.ceil(view.total / size);
      return json(200, body);
    }),
  ]);

  routes.push([
    /^\/link\/items$/,
    data(["GET"], (ctx) => {
      const view = viewOf(getQ(ctx));
      const page = intParam(ctx.query.get("page"), "page", 1, 1);
      const size = pageSize(ctx.query.get("per_page"), "per_page");
      const last = Math.max(1, Math.ceil(view.total / size));
      const relative = ctx.query.get("relative") === "1";
      const other = crossOrigin(ctx);
      const link = (p: number, isNext = false) => {
        const path = pathWith(ctx, { page: p, per_page: size });
        if (isNext && page === 2 && other) return other + path;
        return relative ? path : origin + path;
      };
      const parts: string[] = [];
      if (ctx.query.get("link_style") === "tricky") {
        parts.push(`<${link(1)}>; rel="first"; title="page, one"`);
        if (page > 1) parts.push(`<${link(page - 1)}>; title="back"; rel="prev"`);
        if (page < last)
          parts.push(`<${link(page + 1, true)}>; type="application/json"; rel="next nofollow"`);
        parts.push(`<${link(last)}>; rel=last`);
      } else {
        parts.push(`<${link(1)}>; rel="first"`);
        if (page > 1) parts.push(`<${link(page - 1)}>; rel="prev"`);
        if (page < last) parts.push(`<${link(page + 1, true)}>; rel="next"`);
        parts.push(`<${link(last)}>; rel="last"`);
      }
      return json(200, slice(view, (page - 1) * size, size), { link: parts.join(", ") });
    }),
  ]);

  routes.push([
    /^\/next\/items$/,
    data(["GET"], (ctx) => {
      const view = viewOf(getQ(ctx));
      const offset = intParam(ctx.query.get("offset"), "offset", 0);
      const size = pageSize(ctx.query.get("limit"), "limit");
      const results = slice(view, offset, size);
      const relative = ctx.query.get("relative");
      const other = crossOrigin(ctx);
      const pageIndex = Math.floor(offset / size) + 1;
      const urlFor = (o: number, isNext: boolean) => {
        const p = pathWith(ctx, { offset: o, limit: size });
        if (isNext && pageIndex === 2 && other) return other + p;
        if (relative === "1") return p;
        if (relative === "query") return p.slice(p.indexOf("?"));
        return origin + p;
      };
      return json(200, {
        count: view.total,
        next: offset + size < view.total ? urlFor(offset + size, true) : null,
        previous: offset > 0 ? urlFor(Math.max(0, offset - size), false) : null,
        results,
      });
    }),
  ]);

  routes.push([/^\/error-body$/, data(["GET"], () => json(200, { ok: false, error: "invalid_auth" }))]);

  routes.push([
    /^\/not-json$/,
    data(["GET"], () => ({
      status: 200,
      headers: { "content-type": "text/html; charset=utf-8" },
      body: "<html>Service temporarily unavailable</html>",
    })),
  ]);

  routes.push([
    /^\/huge$/,
    data(["GET"], (ctx) => {
      const bytes = intParam(ctx.query.get("bytes"), "bytes", 1 << 20);
      if (bytes > MAX_HUGE_BYTES)
        throw new HttpError(400, { error: "invalid_parameter", parameter: "bytes" });
      const exact = bytes - 2 >= `{"id":1,"pad":""}`.length;
      return {
        status: 200,
        headers: { "content-type": "application/json" },
        body: {
          length: exact ? bytes : 2,
          chunked: ctx.query.get("chunked") === "1",
          chunks: () => hugeChunks(exact ? bytes : 2),
        },
      };
    }),
  ]);

  routes.push([
    /^\/echo(\/.*)?$/,
    {
      methods: ["GET", "POST", "PUT", "PATCH", "DELETE"],
      limited: true,
      faultable: false,
      auth: false,
      handle: (ctx) => {
        const out: Record<string, unknown> = {
          method: ctx.method,
          path: ctx.url.pathname,
          url: ctx.url.pathname + ctx.url.search,
          query: Object.fromEntries(ctx.query),
          headers: flatHeaders(ctx.req),
          body: ctx.body,
        };
        try {
          if (ctx.body) out.json = JSON.parse(ctx.body);
        } catch {
          // not JSON: body is enough
        }
        return json(200, out);
      },
    },
  ]);

  routes.push([
    /^\/status\/(\d{3})$/,
    data(["GET", "POST", "PUT", "PATCH", "DELETE"], (ctx) => {
      const status = Number(ctx.params[0]);
      if (status < 200 || status > 599) throw new HttpError(400, { error: "invalid_parameter" });
      const retryAfter = ctx.query.get("retry_after");
      return json(
        status,
        { error: `status_${status}`, status },
        retryAfter ? { "retry-after": retryAfter } : {},
      );
    }),
  ]);

  routes.push([
    /^\/oauth\/token$/,
    { methods: ["POST"], limited: false, faultable: true, auth: false, handle: tokenEndpoint },
  ]);

  function tokenEndpoint(ctx: Ctx): Reply {
    if (!oauth) return json(404, { error: "not_found", message: "oauth2 is not configured" });
    const noStore = { "cache-control": "no-store" };
    if (oauth.failWith) return json(oauth.failWith.status, { error: oauth.failWith.error }, noStore);
    if (!(ctx.req.headers["content-type"] ?? "").includes("application/x-www-form-urlencoded")) {
      return json(400, { error: "invalid_request", error_description: "expected a form body" }, noStore);
    }
    const form = new URLSearchParams(ctx.body);
    const basic = parseBasic(ctx.req.headers.authorization);
    const invalidClient = (description: string) =>
      json(
        401,
        { error: "invalid_client", error_description: description },
        {
          ...noStore,
          "www-authenticate": 'Basic realm="oauth"',
        },
      );
    let client: { id: string; secret: string } | undefined;
    if (basic && oauth.clientAuth !== "body") client = { id: basic.username, secret: basic.password };
    else if (form.has("client_id") && oauth.clientAuth !== "basic") {
      client = { id: form.get("client_id") ?? "", secret: form.get("client_secret") ?? "" };
    }
    if (!client)
      return invalidClient(`client authentication (${oauth.clientAuth ?? "body or basic"}) missing`);
    if (client.id !== oauth.clientId || client.secret !== oauth.clientSecret) {
      return invalidClient("bad client credentials");
    }
    const grant = form.get("grant_type");
    const response: Record<string, unknown> = {};
    if (grant === "refresh_token") {
      const rt = form.get("refresh_token") ?? "";
      if (revokedRefresh.has(rt)) {
        return json(400, { error: "invalid_grant", error_description: "refresh token revoked" }, noStore);
      }
      if (!validRefresh.has(rt)) {
        return json(400, { error: "invalid_grant", error_description: "unknown refresh token" }, noStore);
      }
      if (oauth.rotateRefreshToken) {
        validRefresh.delete(rt);
        revokedRefresh.add(rt);
        const fresh = `rt_${randomBytes(12).toString("hex")}`;
        validRefresh.add(fresh);
        latestRefresh = fresh;
        response.refresh_token = fresh;
      }
      st.refreshes++;
    } else if (grant !== "client_credentials") {
      return json(400, { error: "unsupported_grant_type", error_description: String(grant) }, noStore);
    }
    const token = `at_${randomBytes(16).toString("hex")}`;
    accessTokens.set(token, Date.now() + oauth.tokenTtlSeconds * 1000);
    st.tokensIssued++;
    const scope = form.get("scope");
    return json(
      200,
      {
        access_token: token,
        token_type: "Bearer",
        expires_in: oauth.tokenTtlSeconds,
        ...(scope ? { scope } : {}),
        ...response,
      },
      noStore,
    );
  }

  // --- auth ----------------------------------------------------------------------------------

  function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
    const m = /^Basic\s+(\S+)$/i.exec(header ?? "");
    if (!m) return undefined;
    const text = Buffer.from(m[1], "base64").toString("utf8");
    const colon = text.indexOf(":");
    if (colon < 0) return undefined;
    return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }

  function checkAuth(ctx: Ctx): Reply | undefined {
    const auth = opts.auth;
    if (!auth || (!auth.bearer && !auth.basic && !auth.apiKey && !auth.oauth2)) return undefined;
    const header = ctx.req.headers.authorization ?? "";
    const space = header.indexOf(" ");
    const scheme = space > 0 ? header.slice(0, space) : "";
    const credential = space > 0 ? header.slice(space + 1).trim() : "";
    if (auth.bearer !== undefined) {
      const expected = (auth.bearerScheme ?? "Bearer").toLowerCase();
      if (scheme.toLowerCase() === expected && credential === auth.bearer) return undefined;
    }
    if (auth.basic) {
      const b = parseBasic(header);
      if (b && b.username === auth.basic.username && b.password === auth.basic.password) return undefined;
    }
    if (auth.apiKey) {
      const { name, value } = auth.apiKey;
      const got = auth.apiKey.in === "query" ? ctx.query.get(name) : ctx.req.headers[name.toLowerCase()];
      if (got === value) return undefined;
    }
    if (auth.oauth2 && scheme.toLowerCase() === "bearer") {
      const expiry = accessTokens.get(credential);
      if (expiry !== undefined && expiry > Date.now()) return undefined;
      const description = expiry === undefined ? "unknown token" : "token expired";
      return json(
        401,
        { error: "invalid_token", error_description: description },
        { "www-authenticate": `Bearer error="invalid_token", error_description="${description}"` },
      );
    }
    return json(401, { error: "unauthorized" }, { "www-authenticate": 'Bearer realm="test"' });
  }

  // --- rate limit ----------------------------------------------------------------------------

  function rateLimit(now: number): { limited: Reply | null; headers: Record<string, string> } {
    const rl = opts.rateLimit;
    if (!rl) return { limited: null, headers: {} };
    window = window.filter((t) => t > now - 1000);
    const epochStyle = rl.style === "403-reset-epoch";
    const resetValue = (resetAt: number) =>
      epochStyle ? String(Math.ceil(resetAt / 1000)) : String(Math.max(1, Math.ceil((resetAt - now) / 1000)));
    if (window.length >= rl.perSecond) {
      const resetAt = window[0] + 1000;
      const wait = resetAt - now;
      const body = { error: "rate_limited", message: "slow down" };
      let reply: Reply;
      switch (rl.style) {
        case "429-retry-after-seconds":
          reply = json(429, body, { "retry-after": String(Math.max(1, Math.ceil(wait / 100)) / 10) });
          break;
        case "429-retry-after-date":
          reply = json(429, body, {
            "retry-after": new Date(Math.ceil(resetAt / 1000) * 1000).toUTCString(),
          });
          break;
        case "403-reset-epoch":
        case "429-reset-delta":
          reply = json(rl.style === "403-reset-epoch" ? 403 : 429, body, {
            "x-ratelimit-limit": String(rl.perSecond),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": resetValue(resetAt),
          });
          break;
      }
      return { limited: reply, headers: {} };
    }
    window.push(now);
    return {
      limited: null,
      headers: {
        "x-ratelimit-limit": String(rl.perSecond),
        "x-ratelimit-remaining": String(rl.perSecond - window.length),
        "x-ratelimit-reset": resetValue(window[0] + 1000),
      },
    };
  }

  // --- faults --------------------------------------------------------------------------------

  function decideFault(ctx: Ctx, key: string): { kind: FaultKind; mixedPick: number } | undefined {
    const entry = attempts.get(key) ?? { count: 0, lastFaulted: false };
    attempts.set(key, entry);
    entry.count++;
    const failParam = ctx.query.get("fail");
    if (failParam !== null) {
      const k = intParam(failParam, "fail", 0);
      const kind = (ctx.query.get("fail_kind") ?? "503") as FaultKind;
      if (!FAULT_KINDS.includes(kind))
        throw new HttpError(400, { error: "invalid_parameter", parameter: "fail_kind" });
      return entry.count <= k ? { kind, mixedPick: entry.count % 2 } : undefined;
    }
    const f = faults;
    if (!f || f.rate <= 0 || f.kinds.length === 0) return undefined;
    if (f.paths && !f.paths.some((p) => ctx.url.pathname.startsWith(p))) return undefined;
    if (entry.lastFaulted) {
      entry.lastFaulted = false;
      return undefined;
    }
    const rand = mulberry32(fnv1a(`${f.seed ?? 1}\u0000${key}\u0000${entry.count}`));
    rand(); // let the state mix once more before the decision
    if (rand() >= f.rate) return undefined;
    entry.lastFaulted = true;
    const kind = f.kinds[Math.floor(rand() * f.kinds.length)];
    return { kind, mixedPick: rand() < 0.5 ? 0 : 1 };
  }

  function faultReply(kind: FaultKind): Reply | undefined {
    const wait = faults?.retryAfterSeconds ?? 1;
    const body = { error: "injected_fault", status: 0 };
    switch (kind) {
      case "500":
      case "502":
      case "503":
      case "504":
        body.status = Number(kind);
        return json(Number(kind), body);
      case "429-seconds":
        return json(429, { ...body, status: 429 }, { "retry-after": String(wait) });
      case "429-date":
        return json(
          429,
          { ...body, status: 429 },
          { "retry-after": new Date(Math.ceil((Date.now() + wait * 1000) / 1000) * 1000).toUTCString() },
        );
      case "403-reset":
        return json(
          403,
          { ...body, status: 403 },
          {
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": String(Math.ceil((Date.now() + wait * 1000) / 1000)),
          },
        );
      default:
        return undefined;
    }
  }

  // --- writing -------------------------------------------------------------------------------

  function writeHead(res: ServerResponse, rec: RecordedRequest, reply: Reply, length: number | undefined) {
    rec.status = reply.status;
    st.byStatus[reply.status] = (st.byStatus[reply.status] ?? 0) + 1;
    const headers: Record<string, string> = { ...reply.headers };
    if (length !== undefined) headers["content-length"] = String(length);
    res.writeHead(reply.status, headers);
  }

  async function send(res: ServerResponse, rec: RecordedRequest, reply: Reply, truncate?: "cl" | "chunked") {
    if (closed || res.destroyed) return;
    const body = typeof reply.body === "string" ? Buffer.from(reply.body) : reply.body;
    const length = body.length;
    if (!truncate) {
      writeHead(res, rec, reply, Buffer.isBuffer(body) || !body.chunked ? length : undefined);
      if (Buffer.isBuffer(body)) res.end(body);
      else await writeChunks(res, body.chunks(), Number.POSITIVE_INFINITY);
      return;
    }
    // Truncation: announce the whole body (or go chunked), send half of it, then kill the socket
    // before the rest (or the terminating 0-chunk) is sent.
    const half = Math.max(1, Math.floor(length / 2));
    writeHead(res, rec, reply, truncate === "cl" ? length : undefined);
    if (Buffer.isBuffer(body)) await writeAndFlush(res, body.subarray(0, half));
    else await writeChunks(res, body.chunks(), half);
    res.socket?.destroy();
    res.destroy();
  }

  function writeAndFlush(res: ServerResponse, chunk: Buffer | string): Promise<void> {
    return new Promise((resolve) => {
      if (res.destroyed) return resolve();
      res.once("close", () => resolve());
      res.write(chunk, () => resolve());
    });
  }

  /** Writes chunks with backpressure; stops after `limit` bytes without ending the response. */
  async function writeChunks(res: ServerResponse, chunks: Generator<string>, limit: number) {
    let sent = 0;
    for (const text of chunks) {
      if (res.destroyed || closed) return;
      let chunk = Buffer.from(text);
      if (sent + chunk.length > limit) chunk = chunk.subarray(0, limit - sent);
      sent += chunk.length;
      if (sent >= limit) {
        await writeAndFlush(res, chunk);
        return;
      }
      if (!res.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off("drain", done);
            res.off("close", done);
            resolve();
          };
          res.on("drain", done);
          res.on("close", done);
        });
      }
    }
    res.end();
  }

  // --- dispatch ------------------------------------------------------------------------------

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const body = await readBody(req);
    const url = new URL(req.url ?? "/", origin);
    const method = req.method ?? "GET";
    const rec: RecordedRequest = {
      method,
      path: url.pathname,
      url: url.pathname + url.search,
      query: Object.fromEntries(url.searchParams),
      headers: flatHeaders(req),
      body,
      at: Date.now(),
      status: 0,
    };
    requests.push(rec);
    st.requests++;
    await sleep(opts.latencyMs ?? 0);
    if (closed) return;

    let route: Route | undefined;
    let params: string[] = [];
    for (const [re, r] of routes) {
      const m = re.exec(url.pathname);
      if (m) {
        route = r;
        params = m.slice(1);
        break;
      }
    }
    if (!route) return send(res, rec, json(404, { error: "not_found", path: url.pathname }));
    if (!route.methods.includes(method)) {
      return send(res, rec, json(405, { error: "method_not_allowed" }, { allow: route.methods.join(", ") }));
    }
    const ctx: Ctx = { req, method, url, query: url.searchParams, body, params };

    try {
      let extraHeaders: Record<string, string> = {};
      if (route.limited) {
        const rl = rateLimit(Date.now());
        if (rl.limited) {
          rec.rateLimited = true;
          st.rateLimited++;
          return send(res, rec, rl.limited);
        }
        extraHeaders = rl.headers;
      }

      const fault = route.faultable ? decideFault(ctx, `${method} ${rec.url}\u0000${body}`) : undefined;
      if (fault) {
        rec.fault = fault.kind;
        st.faultsInjected[fault.kind] = (st.faultsInjected[fault.kind] ?? 0) + 1;
        if (fault.kind === "reset") {
          const socket = req.socket;
          if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy();
          else socket.destroy();
          return;
        }
        const replaced = faultReply(fault.kind);
        if (replaced) return send(res, rec, replaced);
      }

      let reply = (route.auth ? checkAuth(ctx) : undefined) ?? (await route.handle(ctx));
      reply = { ...reply, headers: { ...extraHeaders, ...reply.headers } };

      if (fault?.kind === "slow") {
        await sleep(faults?.slowMs ?? 2000);
        return send(res, rec, reply);
      }
      if (fault?.kind === "truncate") {
        const style = faults?.truncateStyle ?? "content-length";
        const chunked = style === "chunked" || (style === "mixed" && fault.mixedPick === 1);
        return send(res, rec, reply, chunked ? "chunked" : "cl");
      }
      return send(res, rec, reply);
    } catch (err) {
      if (err instanceof HttpError) return send(res, rec, json(err.status, err.payload));
      throw err;
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "server_bug", message: String(err) }));
      } else {
        res.destroy();
      }
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("clientError", (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  origin = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;

  return {
    url: origin,
    origin,
    requests,
    setFaults(f) {
      faults = f;
    },
    stats() {
      return {
        ...st,
        byStatus: { ...st.byStatus },
        faultsInjected: { ...st.faultsInjected },
      };
    },
    expireTokens() {
      for (const token of accessTokens.keys()) accessTokens.set(token, 0);
    },
    refreshToken() {
      return latestRefresh;
    },
    reset() {
      requests.length = 0;
      st = emptyStats();
      attempts.clear();
      window = [];
    },
    close() {
      closed = true;
      for (const s of sleepers) {
        clearTimeout(s.timer);
        s.resolve();
      }
      sleepers.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
      });
    },
  };
}

const PAD = "x".repeat(1000);

/** Exactly `bytes` bytes of a JSON array (bytes must be 2 or >= 19). */
function* hugeChunks(bytes: number): Generator<string> {
  if (bytes <= 2) {
    yield "[]";
    return;
  }
  let remaining = bytes - 2;
  let buffer = "[";
  for (let id = 1; remaining > 0; id++) {
    const head = `${id > 1 ? "," : ""}{"id":${id},"pad":"`;
    const overhead = head.length + 2;
    // Keep room (40 bytes) for a final element after this one, or make this the final one.
    const pad = remaining - overhead - PAD.length >= 40 ? PAD.length : remaining - overhead;
    buffer += `${head}${pad === PAD.length ? PAD : "x".repeat(pad)}"}`;
    remaining -= overhead + pad;
    if (buffer.length >= 65536) {
      yield buffer;
      buffer = "";
    }
  }
  yield `${buffer}]`;
}
