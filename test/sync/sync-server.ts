/**
 * A tiny node:http server for the sync tests, whose data the test owns and changes between runs.
 * The test gives a handler (request → reply); the server records every request (raw path, query,
 * headers, body) and measures how many requests were in flight at once, server-side.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface SeenRequest {
  method: string;
  /** The path as sent, still percent-encoded. */
  rawPath: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string;
  /** The parsed JSON body, or undefined. */
  json: unknown;
  /** Set once the reply has been written to the socket. */
  answered: boolean;
  /** Date.now() at arrival. */
  at: number;
}

export interface Reply {
  status?: number;
  body: unknown;
  headers?: Record<string, string>;
}

export type Handler = (req: SeenRequest) => Reply | Promise<Reply>;

export interface SyncServer {
  url: string;
  requests: SeenRequest[];
  /** Highest number of requests being handled at the same time. */
  maxInFlight(): number;
  /** Called when a request arrives, before the latency (for tests that act at a precise moment). */
  onRequest: ((req: SeenRequest) => void) | null;
  /** Called right after a reply is flushed. */
  onAnswered: ((req: SeenRequest) => void) | null;
  /** Forgets the recorded requests and the in-flight maximum. */
  reset(): void;
  close(): Promise<void>;
}

export async function startSyncServer(
  handler: Handler,
  opts: { latencyMs?: number } = {},
): Promise<SyncServer> {
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  let inFlight = 0;
  let maxInFlight = 0;
  let closed = false;
  const api: SyncServer = {
    url: "",
    requests,
    maxInFlight: () => maxInFlight,
    onRequest: null,
    onAnswered: null,
    reset: () => {
      requests.length = 0;
      maxInFlight = inFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks).toString("utf8");
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      let json: unknown;
      try {
        json = body ? JSON.parse(body) : undefined;
      } catch {
        json = undefined;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        headers[k] = Array.isArray(v) ? v.join(", ") : (v ?? "");
      const seen: SeenRequest = {
        method: req.method ?? "GET",
        rawPath: (req.url ?? "/").split("?")[0],
        query: Object.fromEntries(url.searchParams),
        headers,
        body,
        json,
        answered: false,
        at: Date.now(),
      };
      requests.push(seen);
      api.onRequest?.(seen);
      if (opts.latencyMs) await new Promise((r) => setTimeout(r, opts.latencyMs));
      if (closed) return;
      const reply = await handler(seen);
      const text = JSON.stringify(reply.body);
      res.writeHead(reply.status ?? 200, {
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(text)),
        ...reply.headers,
      });
      res.end(text, () => {
        seen.answered = true;
        api.onAnswered?.(seen);
      });
    } finally {
      inFlight--;
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "test_server_bug", message: String(err) }));
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}

/** A record of the mutable "items" data set the incremental tests change between runs. */
export interface Item {
  id: number;
  name: string;
  value: number;
  updated_at: string;
}

const BASE = Date.UTC(2024, 2, 1);

/** `2024-03-01T00:00:00Z` plus `hours` (second precision, as many APIs send). */
export function isoAt(hours: number): string {
  return new Date(BASE + hours * 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Items 1..n, item i updated at BASE + i hours. */
export function makeItems(n: number): Item[] {
  return Array.from({ length: n }, (_, k) => ({
    id: k + 1,
    name: `item-${k + 1}`,
    value: (k + 1) * 10,
    updated_at: isoAt(k + 1),
  }));
}

/** `items` with updated_at >= since (inclusive, GitHub style), in id order. */
export function changedSince(items: Item[], since: string | undefined): Item[] {
  if (since === undefined) return items;
  const t = Date.parse(since);
  if (Number.isNaN(t)) throw new Error(`bad since ${since}`);
  return items.filter((r) => Date.parse(r.updated_at) >= t);
}

/** A page of `list` for a `page` (1-based) / `per_page` request. */
export function pageOf<T>(list: T[], query: Record<string, string>, defaultSize = 5): T[] {
  const page = Number(query.page ?? "1");
  const size = Number(query.per_page ?? String(defaultSize));
  return list.slice((page - 1) * size, page * size);
}
