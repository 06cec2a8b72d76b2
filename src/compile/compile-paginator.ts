import { DEFAULTS } from "../config/defaults.gen.js";
import type { Paginate } from "../config/pipeline-types.gen.js";
import type { PaginatorCommon, PaginatorPlan } from "./plan.js";

type Compilers = {
  [K in Paginate["type"]]: (p: Extract<Paginate, { type: K }>) => Omit<PaginatorPlan, keyof PaginatorCommon>;
};

/** One compile function per paginate type; the registry is the map. */
export const paginatorCompilers: Compilers = {
  none: () => ({ type: "none" }),
  cursor: (p) => ({
    type: "cursor",
    cursorPath: p.cursor ?? null,
    cursorHeader: p.cursor_header?.toLowerCase() ?? null,
    param: p.param ?? DEFAULTS.paginateCursor.param,
    in: p.in ?? DEFAULTS.paginateCursor.in,
    hasMore: p.has_more ?? null,
    done: p.done ?? null,
  }),
  offset: (p) => ({
    type: "offset",
    offsetParam: p.offset_param ?? DEFAULTS.paginateOffset.offset_param,
    limitParam: p.limit_param ?? DEFAULTS.paginateOffset.limit_param,
    limit: p.limit ?? DEFAULTS.paginateOffset.limit,
    start: p.start ?? DEFAULTS.paginateOffset.start,
    total: p.total ?? null,
    in: p.in ?? DEFAULTS.paginateOffset.in,
  }),
  page: (p) => ({
    type: "page",
    pageParam: p.page_param ?? DEFAULTS.paginatePage.page_param,
    start: p.start ?? DEFAULTS.paginatePage.start,
    sizeParam: p.size_param ?? null,
    size: p.size ?? null,
    totalPages: p.total_pages ?? null,
    in: p.in ?? DEFAULTS.paginatePage.in,
  }),
  link_header: (p) => ({ type: "link_header", rel: p.rel ?? DEFAULTS.paginateLinkHeader.rel }),
  next_url: (p) => ({ type: "next_url", next: p.next, hasMore: p.has_more ?? null, done: p.done ?? null }),
};

export function compilePaginator(p: Paginate | undefined): PaginatorPlan {
  const cfg = p ?? { type: "none" as const };
  const common: PaginatorCommon = {
    maxPages: cfg.max_pages ?? null,
    maxEmptyPages: cfg.max_empty_pages ?? DEFAULTS.paginateCommon.max_empty_pages,
    stopOnEmptyPage: cfg.stop_on_empty_page ?? DEFAULTS.paginateCommon.stop_on_empty_page,
  };
  const specific = (
    paginatorCompilers[cfg.type] as (x: Paginate) => Omit<PaginatorPlan, keyof PaginatorCommon>
  )(cfg);
  return { ...common, ...specific } as PaginatorPlan;
}
