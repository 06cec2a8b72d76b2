import type { PaginatorPlan } from "../../../src/compile/plan.js";
import type { HttpResponse } from "../../../src/http/client.js";
import type {
  FetchedPage,
  NextStep,
  PageRequest,
  Paginator,
} from "../../../src/http/paginators/paginator.js";
import { requestUrl } from "../../../src/http/paginators/paginator.js";
import { stringifyJson } from "../../../src/shared/json-text.js";

export const COMMON = { maxPages: null, maxEmptyPages: 3, stopOnEmptyPage: false } as const;

export function plan<T extends PaginatorPlan["type"]>(
  type: T,
  rest: Omit<Extract<PaginatorPlan, { type: T }>, "type" | keyof typeof COMMON>,
): PaginatorPlan {
  return { ...COMMON, type, ...rest } as PaginatorPlan;
}

export const START: PageRequest = {
  method: "GET",
  url: "https://api.test/v1/items",
  params: { q: "x" },
  headers: {},
  body: null,
};

/** A page as the retriever hands it to a paginator: `body` as JSON, records selected from it. */
export function page(
  request: PageRequest,
  body: unknown,
  records: unknown[] = [],
  headers: Record<string, string> = {},
): FetchedPage {
  const text = stringifyJson(body);
  const response: HttpResponse = {
    status: 200,
    headers,
    body: Buffer.from(text),
    url: requestUrl(request),
    elapsedMs: 1,
  };
  return { request, response, body, recordCount: records.length, records };
}

export function nextRequest(step: NextStep): PageRequest {
  if ("stop" in step)
    throw new Error(`expected a next request, got stop ${step.stop.code}: ${step.stop.message}`);
  return step.request;
}

export function stopCode(step: NextStep): string | null {
  return "stop" in step ? step.stop.code : null;
}

/** Drives a paginator over scripted bodies (one per page); returns the URLs asked and the stop. */
export function drive(
  p: Paginator,
  pages: { body: unknown; records?: unknown[]; headers?: Record<string, string> }[],
): { urls: string[]; stop: string | null; bodies: unknown[] } {
  let req = p.first(START);
  const urls: string[] = [];
  const bodies: unknown[] = [];
  for (const scripted of pages) {
    urls.push(requestUrl(req));
    bodies.push(req.body);
    const step = p.next(page(req, scripted.body, scripted.records ?? [], scripted.headers ?? {}));
    if ("stop" in step) return { urls, stop: step.stop.code, bodies };
    req = step.request;
  }
  return { urls, stop: null, bodies };
}
