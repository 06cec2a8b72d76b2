/**
 * A small node:http API (127.0.0.1) serving a dataset with EXACT, known corruption, for the
 * validation / drift / report tests (test/quality/). Separate from api-server.ts on purpose.
 *
 * GROUND TRUTH — qualityRecord(id), ids 1..n (default 60), against QUALITY_SCHEMA:
 *   { id, name, price, status, category, updated_at, notes: null, extra_null: null,
 *     variants: [{ sku }, { sku }], legacy_code? }   (keys in this order)
 *   name          MISSING (required)                  when id % 16 == 9   → 9, 25, 41, 57
 *   price         a string "12.50" (schema: number)   when id % 10 == 0   → 10, 20, 30, 40, 50, 60
 *                 otherwise id + 0.5 (never a whole number, so always JSON type "number")
 *   status        "archived" (enum active|inactive)   when id % 15 == 7   → 7, 22, 37, 52
 *   category      null (schema: string)               when id % 12 == 5   → 5, 17, 29, 41, 53
 *   updated_at    "yesterday" (format date-time)      when id % 20 == 3   → 3, 23, 43
 *   variants[1].sku  the number id (schema: string)   when id % 30 == 0   → 30, 60
 *   legacy_code   `L<id>` (not in the schema)         when id % 25 == 0   → 25, 50
 *   notes         always null (schema: string|null); extra_null always null (not in the schema)
 *   The schema's `discontinued_at` is never present.
 *
 * Query params on both endpoints:
 *   clean=1      no corruption at all (and no legacy_code): every record valid
 *   variant=<v>  names become `item-<id>-<v>` (same validity): a different output, same ratios
 *   n=<count>    dataset size (default 60)
 *
 * ENDPOINTS
 *   GET /cursor/items?cursor=&limit=   → { data, next_cursor: string | null } (limit default 10)
 *   GET /page/items?page=&per_page=    → { results } (1-based; past the end: results [])
 *
 * OPTIONS: bearer (every request needs `Authorization: Bearer <bearer>`, else 401);
 *   leak: a string placed into records as data: record 1's `name`, record 7's `status` (an enum
 *   violation, so it lands in an error example and the quarantine) and record 25's `legacy_code`
 *   (a new field example).
 * INSPECTION: server.requests (method + url of every request).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export const QUALITY_N = 60;

export interface QualityRecordOptions {
  clean?: boolean;
  variant?: string;
  leak?: string;
}

const CATEGORIES = ["tools", "toys", "books"];

function iso(id: number): string {
  return new Date(Date.UTC(2024, 0, 1) + id * 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function qualityRecord(id: number, opts: QualityRecordOptions = {}): Record<string, unknown> {
  const dirty = !opts.clean;
  const r: Record<string, unknown> = { id };
  if (!(dirty && id % 16 === 9))
    r.name = opts.leak && id === 1 ? opts.leak : `item-${id}${opts.variant ? `-${opts.variant}` : ""}`;
  r.price = dirty && id % 10 === 0 ? (id + 0.5).toFixed(2) : id + 0.5;
  r.status =
    dirty && id % 15 === 7
      ? opts.leak && id === 7
        ? opts.leak
        : "archived"
      : id % 2
        ? "active"
        : "inactive";
  r.category = dirty && id % 12 === 5 ? null : CATEGORIES[id % 3];
  r.updated_at = dirty && id % 20 === 3 ? "yesterday" : iso(id);
  r.notes = null;
  r.extra_null = null;
  r.variants = [{ sku: `S${id}-a` }, { sku: dirty && id % 30 === 0 ? id : `S${id}-b` }];
  if (dirty && id % 25 === 0) r.legacy_code = opts.leak && id === 25 ? opts.leak : `L${id}`;
  return r;
}

export function qualityDataset(n = QUALITY_N, opts: QualityRecordOptions = {}): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => qualityRecord(i + 1, opts));
}

/** The draft-07 record schema the dataset is measured against. */
export const QUALITY_SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  type: "object",
  required: ["id", "name", "price", "status", "updated_at"],
  properties: {
    id: { type: "integer" },
    name: { type: "string" },
    price: { type: "number" },
    status: { type: "string", enum: ["active", "inactive"] },
    category: { type: "string" },
    updated_at: { type: "string", format: "date-time" },
    notes: { type: ["string", "null"] },
    variants: {
      type: "array",
      items: { type: "object", required: ["sku"], properties: { sku: { type: "string" } } },
    },
    discontinued_at: { type: "string", format: "date-time" },
  },
} as const;

export interface QualityServer {
  url: string;
  requests: { method: string; url: string }[];
  close(): Promise<void>;
}

export async function startQualityServer(
  opts: { bearer?: string; leak?: string } = {},
): Promise<QualityServer> {
  const requests: { method: string; url: string }[] = [];
  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "" });
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (opts.bearer && req.headers.authorization !== `Bearer ${opts.bearer}`) {
      return send(res, 401, { error: "unauthorized" });
    }
    const q = url.searchParams;
    const n = q.has("n") ? Number(q.get("n")) : QUALITY_N;
    const data = qualityDataset(n, {
      clean: q.get("clean") === "1",
      variant: q.get("variant") ?? undefined,
      leak: opts.leak,
    });
    if (url.pathname === "/cursor/items") {
      const start = q.get("cursor") ? Number(q.get("cursor")!.slice(1)) : 0;
      const limit = Number(q.get("limit") ?? 10);
      const end = start + limit;
      return send(res, 200, {
        data: data.slice(start, end),
        next_cursor: end < data.length ? `c${end}` : null,
      });
    }
    if (url.pathname === "/page/items") {
      const page = Number(q.get("page") ?? 1);
      const size = Number(q.get("per_page") ?? 10);
      return send(res, 200, { results: data.slice((page - 1) * size, page * size) });
    }
    send(res, 404, { error: "not_found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
