/** `pipelines init --from-url`: where the records are and how the API paginates, guessed from one response. */
import { parseLinkHeader } from "../../http/link-header.js";
import { compileJsonPath } from "../../lang/jsonpath.js";
import { CURSOR_SHAPES, DONE_PATHS, HAS_MORE_PATHS, NEXT_URL_PATHS, stopFlag } from "./shapes.js";
import { member, quoted, scalar } from "./yaml-text.js";

export interface Probe {
  recordsPath: string;
  recordCount: number;
  sampleKeys: string[];
  /** A flow map, e.g. `{ type: cursor, cursor: "$.next_cursor", param: cursor }`. */
  paginate: string;
  /** `$.error` for `{ ok: true|false, error }` APIs (Slack style), else null. */
  errorPath: string | null;
  confidence: "high" | "medium" | "low";
  reasons: string[];
}

const TOTAL_PATHS = ["$.total", "$.meta.total", "$.total_count", "$.totalCount", "$.count"];
const TOTAL_PAGES_PATHS = ["$.total_pages", "$.totalPages", "$.meta.total_pages", "$.pages"];
const PAGE_NUMBER_PATHS = ["$.page", "$.current_page", "$.meta.page", "$.meta.current_page"];

function get(body: unknown, p: string): unknown {
  return compileJsonPath(p).first(body);
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;

/** Guesses where the records are and how the API paginates, from one response. */
export function probeResponse(body: unknown, headers: Record<string, string>, url: URL): Probe {
  const records = findRecords(body);
  const reasons = [records.reason];
  const signals = readSignals(body, headers, url, records.count);
  const pagination = guessPagination(signals, records);
  let confidence = pagination.confidence;
  reasons.push(pagination.reason);
  let errorPath: string | null = null;
  if (body && typeof body === "object" && !Array.isArray(body) && (body as { ok?: unknown }).ok === true) {
    errorPath = "$.error";
    reasons.push("the body has `ok: true`: such APIs answer errors as `ok: false` with `error`");
  }
  if (records.count === 0) {
    confidence = "low";
    reasons.push("the response held no records, so the record shape could not be seen");
  }
  return {
    recordsPath: records.path,
    recordCount: records.count,
    sampleKeys: sampleKeys(records.sample),
    paginate: pagination.paginate,
    errorPath,
    confidence,
    reasons,
  };
}

interface FoundRecords {
  path: string;
  count: number;
  /** The first record, whose fields the scaffold lists. */
  sample: unknown;
  reason: string;
}

/** The body if it is a list, else its largest list of objects (top level or one level down). */
function findRecords(body: unknown): FoundRecords {
  if (Array.isArray(body)) {
    return {
      path: "$",
      count: body.length,
      sample: body[0],
      reason: "the body is an array: each element is a record",
    };
  }
  if (!body || typeof body !== "object") {
    return {
      path: "$",
      count: body === null ? 0 : 1,
      sample: body,
      reason: "the body is a single value, not an object or a list",
    };
  }
  let best: { path: string; arr: unknown[] } | null = null;
  const consider = (p: string, v: unknown) => {
    if (
      Array.isArray(v) &&
      (v.length === 0 || (typeof v[0] === "object" && v[0] !== null)) &&
      (!best || v.length > best.arr.length)
    )
      best = { path: p, arr: v };
  };
  for (const [k, v] of Object.entries(body)) {
    const key = member("$", k);
    consider(key, v);
    if (v && typeof v === "object" && !Array.isArray(v))
      for (const [k2, v2] of Object.entries(v)) consider(member(key, k2), v2);
  }
  if (!best)
    return {
      path: "$",
      count: 1,
      sample: body,
      reason: "no list of objects found: the whole body is one record",
    };
  const b = best as { path: string; arr: unknown[] };
  return {
    path: b.path,
    count: b.arr.length,
    sample: b.arr[0],
    reason: `the largest list of objects is at ${b.path} (${b.arr.length} items)`,
  };
}

/** What the response and the URL say about pagination: the first matching path of each kind. */
interface Signals {
  nextLink: boolean;
  query: URLSearchParams;
  cursor: { path: string; param: string } | undefined;
  nextPath: string | undefined;
  hasMore: string | undefined;
  done: string | undefined;
  total: string | undefined;
  totalValue: number | null;
  totalPages: string | undefined;
  pageNumber: string | undefined;
  /** The page size: the URL's `limit`, else the records of this page, else 100. */
  limit: number;
}

function readSignals(body: unknown, headers: Record<string, string>, url: URL, recordCount: number): Signals {
  const query = url.searchParams;
  const total = TOTAL_PATHS.find((p) => isCount(get(body, p)));
  const limitInUrl = Number(query.get("limit"));
  return {
    nextLink: parseLinkHeader(headers.link).some((l) => l.rels.includes("next")),
    query,
    cursor: CURSOR_SHAPES.find((c) => {
      const v = get(body, c.path);
      return typeof v === "string" && v !== "";
    }),
    nextPath: NEXT_URL_PATHS.find((p) => {
      const v = get(body, p);
      return typeof v === "string" && /^(https?:\/\/|\/|\?)/.test(v);
    }),
    hasMore: HAS_MORE_PATHS.find((p) => typeof get(body, p) === "boolean"),
    done: DONE_PATHS.find((p) => typeof get(body, p) === "boolean"),
    total,
    totalValue: total ? (get(body, total) as number) : null,
    totalPages: TOTAL_PAGES_PATHS.find((p) => isCount(get(body, p))),
    pageNumber: PAGE_NUMBER_PATHS.find((p) => isCount(get(body, p))),
    limit: Number.isInteger(limitInUrl) && limitInUrl > 0 ? limitInUrl : recordCount || 100,
  };
}

/** The paginator the signals point to, strongest signal first. */
function guessPagination(
  s: Signals,
  records: FoundRecords,
): { paginate: string; confidence: Probe["confidence"]; reason: string } {
  const { query: q, hasMore, total, totalPages } = s;
  const more = stopFlag(hasMore, s.done);
  if (s.nextLink)
    return {
      paginate: "{ type: link_header }",
      confidence: "high",
      reason: `the response has a Link header with rel="next"`,
    };
  if (s.nextPath)
    return {
      paginate: `{ type: next_url, next: ${quoted(s.nextPath)}${more} }`,
      confidence: "high",
      reason: `${s.nextPath} holds a next-page URL`,
    };
  if (s.cursor)
    return {
      paginate: `{ type: cursor, cursor: ${quoted(s.cursor.path)}, param: ${scalar(s.cursor.param)}${more} }`,
      confidence: "medium",
      reason: `${s.cursor.path} looks like a cursor, sent back as \`${s.cursor.param}\`; check the name of the request parameter (param) in the API docs`,
    };
  const sample = records.sample;
  if (hasMore && sample && typeof sample === "object" && "id" in (sample as object))
    return {
      paginate: `{ type: cursor, cursor: ${quoted(`${records.path}[-1:].id`)}, param: starting_after, has_more: ${hasMore} }`,
      confidence: "medium",
      reason: `${hasMore} with record ids looks like Stripe-style pagination (starting_after = last id)`,
    };
  if (q.has("offset"))
    return {
      paginate: `{ type: offset, limit: ${s.limit}${total ? `, total: ${quoted(total)}` : ""} }`,
      confidence: "medium",
      reason: `the URL has an offset parameter${total ? `, and a total at ${total}` : ""}`,
    };
  if (q.has("page") || totalPages || s.pageNumber)
    return {
      paginate: `{ type: page${totalPages ? `, total_pages: ${quoted(totalPages)}` : ""} }`,
      confidence: "medium",
      reason: `page numbers (${q.has("page") ? "a page parameter in the URL" : `${totalPages ?? s.pageNumber} in the body`})${totalPages ? ` with a page count at ${totalPages}` : ""}`,
    };
  if (total && s.totalValue !== null && (q.has("limit") || s.totalValue > records.count))
    // A total larger than the page, and no page numbers: offset/limit is the usual scheme.
    return {
      paginate: `{ type: offset, limit: ${s.limit}, total: ${quoted(total)} }`,
      confidence: "medium",
      reason: `${total} (${s.totalValue}) is more than the ${records.count} records of this page and there are no page numbers: offset/limit (check the parameter names in the API docs)`,
    };
  return {
    paginate: "{ type: none }",
    confidence: "low",
    reason:
      "no pagination signal found (no Link header, next URL, cursor, offset or page): one page only — check the API docs",
  };
}

/** The first record's field names (at most 30, none with control characters). */
function sampleKeys(sample: unknown): string[] {
  return sample && typeof sample === "object" && !Array.isArray(sample)
    ? Object.keys(sample as object)
        .filter((k) => !/[\u0000-\u001f]/.test(k))
        .slice(0, 30)
    : [];
}
