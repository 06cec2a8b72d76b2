import type { PaginatorPlan, PaginatorType } from "../../compile/plan.js";
import { compileJsonPath } from "../../lang/jsonpath.js";
import { stringifyJson } from "../../shared/json-text.js";
import { parseLinkHeader } from "../link-header.js";
import { inject } from "./inject.js";
import {
  type FetchedPage,
  isBlank,
  isFalse,
  isTrue,
  type NextStep,
  type PageRequest,
  type Paginator,
  requestUrl,
  stop,
} from "./paginator.js";

type PlanOf<T extends PaginatorType> = Extract<PaginatorPlan, { type: T }>;

/**
 * The first match of one of the paths the paginator reads (pathsRead): from the body, or from the
 * values read for it where the body was parsed (page workers: src/run/page-work/).
 */
function read(page: FetchedPage, path: string): unknown {
  return page.values ? page.values.get(path) : compileJsonPath(path).first(page.body);
}

/** The JSONPaths a paginator of this plan reads from a page's body. */
export function pathsRead(plan: PaginatorPlan): string[] {
  const paths: (string | null)[] =
    plan.type === "cursor"
      ? [plan.hasMore, plan.done, plan.cursorPath]
      : plan.type === "offset"
        ? [plan.total]
        : plan.type === "page"
          ? [plan.totalPages]
          : plan.type === "next_url"
            ? [plan.hasMore, plan.done, plan.next]
            : [];
  return paths.filter((p): p is string => p !== null);
}

function none(): Paginator {
  return {
    kind: "none",
    pageSizeHint: 0,
    first: (r) => r,
    next: () => stop("single_page", "one request, no pagination"),
  };
}

/** `has_more` false or `done` true end the stream whatever the pointer says. */
function flagStop(plan: { hasMore: string | null; done: string | null }, page: FetchedPage): NextStep | null {
  if (plan.hasMore) {
    const v = read(page, plan.hasMore);
    if (isFalse(v)) return stop("has_more_false", `${plan.hasMore} was false`);
  }
  if (plan.done) {
    const v = read(page, plan.done);
    if (isTrue(v)) return stop("done", `${plan.done} was true`);
  }
  return null;
}

function cursor(plan: PlanOf<"cursor">): Paginator {
  const path = plan.cursorPath;
  let base: PageRequest;
  // Reads the page and `base` only: asking it twice for a page gives the same answer.
  const next = (page: FetchedPage): NextStep => {
    const flagged = flagStop(plan, page);
    if (flagged) return flagged;
    const value = path ? read(page, path) : page.response.headers[plan.cursorHeader!];
    const where = path ? plan.cursorPath : `header ${plan.cursorHeader}`;
    if (isBlank(value))
      return stop(
        "no_cursor",
        `no next cursor (${where} was ${value === "" ? "empty" : value === null ? "null" : "missing"})`,
      );
    const token = typeof value === "object" ? stringifyJson(value) : String(value);
    return { request: inject(base, plan.in, plan.param, token), pointer: `cursor ${token}` };
  };
  return {
    kind: "pointer",
    pageSizeHint: 0,
    sentAs: `the cursor was sent as ${plan.in} ${plan.in === "body" ? "field" : "parameter"} \`${plan.param}\``,
    first: (r) => {
      base = r;
      return r;
    },
    next,
    peekNext: peekOf(next),
  };
}

/** peekNext of a paginator whose next() reads the page only (no state moves): next() itself. */
function peekOf(next: Paginator["next"]): NonNullable<Paginator["peekNext"]> {
  return (page) => {
    const step = next(page);
    return "stop" in step ? null : step;
  };
}

/**
 * A total (records or pages) read from a response: a count (a number or numeric string ≥ 0), null
 * when absent (null or missing: an estimate-only API), or "bad" for anything else (a negative
 * number, text, an object). A bad total is ignored — it is only a hint: pagination goes on until
 * an empty page, and that stop is a warning naming the value.
 */
function readCount(v: unknown): number | null | { bad: string } {
  if (v === undefined || v === null) return null;
  // A total beyond 2^53 arrives as a BigInt (exact parsing): as a count, the nearest number will do.
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : typeof v === "bigint" ? Number(v) : v;
  if (typeof n === "number" && Number.isFinite(n) && n >= 0) return n;
  const text = stringifyJson(v) ?? String(v);
  return { bad: text.length > 40 ? `${text.slice(0, 39)}…` : text };
}

function emptyPageStop(path: string | null, bad: string | null): NextStep {
  if (bad === null) return stop("empty_page", "an empty page");
  return stop("empty_page", `an empty page (${path} was ${bad}, not a count: ignored)`, true);
}

function offset(plan: PlanOf<"offset">): Paginator {
  const total = plan.total;
  let at = plan.start;
  let knownTotal: number | null = null;
  let badTotal: string | null = null;
  let base: PageRequest;
  return {
    kind: "numeric",
    pageSizeHint: plan.limit,
    sentAs: `the offset was sent as query parameter \`${plan.offsetParam}\``,
    peek: (k, pageSize) => {
      const offset = at + k * pageSize;
      if (pageSize <= 0 || (knownTotal !== null && offset >= knownTotal)) return null;
      return inject(base, plan.in ?? "query", plan.offsetParam, offset);
    },
    first: (r) => {
      base = inject(r, plan.in ?? "query", plan.limitParam, plan.limit);
      return inject(base, plan.in ?? "query", plan.offsetParam, at);
    },
    next: (page) => {
      if (page.recordCount === 0) return emptyPageStop(plan.total, badTotal);
      at += page.recordCount;
      if (total) {
        const n = readCount(read(page, total));
        if (n !== null && typeof n === "object") badTotal = n.bad;
        else if (n !== null) {
          knownTotal = n;
          if (at >= n)
            return stop("total_reached", `all ${n === 1 ? "1 record" : `${n} records`} of ${plan.total}`);
        }
      }
      return { request: inject(base, plan.in ?? "query", plan.offsetParam, at), pointer: null };
    },
  };
}

function page(plan: PlanOf<"page">): Paginator {
  const totalPages = plan.totalPages;
  let n = plan.start;
  let knownPages: number | null = null;
  let badTotal: string | null = null;
  let base: PageRequest;
  return {
    kind: "numeric",
    pageSizeHint: 1,
    sentAs: `the page number was sent as query parameter \`${plan.pageParam}\``,
    peek: (k) => {
      const page = n + k;
      if (knownPages !== null && page - plan.start + 1 > knownPages) return null;
      return inject(base, plan.in ?? "query", plan.pageParam, page);
    },
    first: (r) => {
      base =
        plan.sizeParam && plan.size !== null ? inject(r, plan.in ?? "query", plan.sizeParam, plan.size) : r;
      return inject(base, plan.in ?? "query", plan.pageParam, n);
    },
    next: (fetched) => {
      if (fetched.recordCount === 0) return emptyPageStop(plan.totalPages, badTotal);
      if (totalPages) {
        const total = readCount(read(fetched, totalPages));
        if (total !== null && typeof total === "object") badTotal = total.bad;
        else if (total !== null) {
          knownPages = total;
          if (n - plan.start + 1 >= total)
            return stop("last_page", `page ${n} was the last of ${total} (${plan.totalPages})`);
        }
      }
      n++;
      return { request: inject(base, plan.in ?? "query", plan.pageParam, n), pointer: null };
    },
  };
}

function linkHeader(plan: PlanOf<"link_header">): Paginator {
  const next = (fetched: FetchedPage): NextStep => {
    const links = parseLinkHeader(fetched.response.headers.link);
    const link = links.find((l) => l.rels.includes(plan.rel));
    if (!link?.url) return stop("no_next_link", `no Link header with rel="${plan.rel}"`);
    const url = new URL(link.url, requestUrl(fetched.request)).toString();
    return { request: { ...fetched.request, url, params: {} }, pointer: url };
  };
  return {
    kind: "pointer",
    pageSizeHint: 0,
    first: (r) => r,
    firstPointer: requestUrl,
    next,
    peekNext: peekOf(next),
  };
}

function nextUrl(plan: PlanOf<"next_url">): Paginator {
  const path = plan.next;
  const next = (fetched: FetchedPage): NextStep => {
    const flagged = flagStop(plan, fetched);
    if (flagged) return flagged;
    const value = read(fetched, path);
    if (isBlank(value) || typeof value !== "string")
      return stop(
        "no_next_url",
        `no next URL (${plan.next} was ${value === "" ? "empty" : value === null ? "null" : value === undefined ? "missing" : "not a string"})`,
      );
    const url = new URL(value, requestUrl(fetched.request)).toString();
    return { request: { ...fetched.request, url, params: {} }, pointer: url };
  };
  return {
    kind: "pointer",
    pageSizeHint: 0,
    first: (r) => r,
    firstPointer: requestUrl,
    next,
    peekNext: peekOf(next),
  };
}

/** The paginator registry: `type` → factory of a fresh, stateful paginator. */
export const paginators: { [T in PaginatorType]: { create(plan: PlanOf<T>): Paginator } } = {
  none: { create: none },
  cursor: { create: cursor },
  offset: { create: offset },
  page: { create: page },
  link_header: { create: linkHeader },
  next_url: { create: nextUrl },
};

export function createPaginator(plan: PaginatorPlan): Paginator {
  return (paginators[plan.type].create as (p: PaginatorPlan) => Paginator)(plan);
}
