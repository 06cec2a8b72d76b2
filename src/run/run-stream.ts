import type { StreamPlan } from "../compile/plan.js";
import { firstBytes, RunError } from "../http/errors.js";
import type { RequestExecutor } from "../http/executor.js";
import type { HttpResponse } from "../http/client.js";
import { type PageRequest, requestUrl, type StopReason } from "../http/paginators/paginator.js";
import { createPaginator } from "../http/paginators/paginators.js";
import { compileJsonPath } from "../records/jsonpath.js";
import { compileShaper } from "../records/shape.js";
import { openWriter } from "../outputs/registry.js";
import type { StreamResult } from "./stream-result.js";

export interface StreamRunOptions {
  runId: string;
  origin: string;
  allowedOrigins: string[];
  /** Stop after this many records (the output is still committed). */
  limit: number | null;
  /** Overrides the paginator's max_pages. */
  maxPages: number | null;
  signal?: AbortSignal;
}

const POINTER_TYPES = new Set(["cursor", "link_header", "next_url"]);

/**
 * Runs one stream: page by page, records flow select → shape → write with backpressure, and the
 * output is committed only when the stream ends well. Updates `result` as it goes.
 */
export async function runStream(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  result: StreamResult,
): Promise<void> {
  result.status = "running";
  result.startedAt = Date.now();
  const started = performance.now();
  const writer = await openWriter(stream.output, {
    runId: opts.runId,
    stream: stream.name,
    columns: schemaColumns(stream),
    primaryKey: stream.primaryKey,
  });
  try {
    const stop = await pull(stream, executor, opts, result, (row) => writer.write(row));
    result.stop = stop;
    if (stop.warning) result.warnings.push(stop.message);
    await writer.commit();
    result.output = stream.output.path;
    result.status = "ok";
  } catch (err) {
    await writer.abort();
    result.status = "failed";
    result.error =
      err instanceof RunError
        ? { kind: err.kind, message: err.message }
        : { kind: "internal", message: executor.redactor.text((err as Error)?.message ?? String(err)) };
  } finally {
    result.durationMs = performance.now() - started;
  }
}

async function pull(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  result: StreamResult,
  write: (row: Record<string, unknown>) => Promise<void> | undefined,
): Promise<StopReason> {
  const shaper = compileShaper(stream);
  const errorPath = stream.errorPath ? compileJsonPath(stream.errorPath) : null;
  const maxPages = opts.maxPages ?? stream.paginator.maxPages;
  const paginator = createPaginator(stream.paginator);
  const pointerType = POINTER_TYPES.has(stream.paginator.type);
  let request: PageRequest = paginator.first({
    method: stream.request.method,
    url: stream.request.url,
    params: stream.request.params,
    headers: stream.request.headers,
    body: stream.request.body,
  });
  const seen = new Set<string>();
  if (stream.paginator.type === "link_header" || stream.paginator.type === "next_url") seen.add(requestUrl(request));
  let emptyRun = 0;
  for (;;) {
    if (opts.signal?.aborted) throw new RunError("aborted", "the run was interrupted");
    const url = requestUrl(request);
    checkOrigin(url, opts, executor);
    const response = await executor.fetch(
      {
        method: request.method,
        url,
        headers: request.headers,
        body: request.method === "POST" && request.body !== null && request.body !== undefined ? JSON.stringify(request.body) : undefined,
      },
      result.requests,
    );
    const body = parseBody(response, request, executor);
    if (errorPath) {
      const e = errorPath.first(body);
      if (!isEmptyError(e)) {
        throw new RunError(
          "api_error",
          `${request.method} ${executor.redactUrl(url)} answered ${response.status} with an error at ${stream.errorPath}: ${executor.redactor.text(typeof e === "string" ? e : JSON.stringify(e))}`,
        );
      }
    }
    const records = shaper.select(body);
    result.pages++;
    for (const record of records) {
      if (opts.limit !== null && result.records.written >= opts.limit) break;
      result.records.seen++;
      const pending = write(shaper.shape(record));
      if (pending) await pending;
      result.records.written++;
    }
    if (opts.limit !== null && result.records.written >= opts.limit) {
      return { code: "limit", message: `--limit ${opts.limit} reached` };
    }
    const step = paginator.next({ request, response, body, recordCount: records.length });
    if ("stop" in step) return step.stop;
    if (maxPages !== null && result.pages >= maxPages) {
      return { code: "max_pages", message: `max_pages ${maxPages} reached (more pages were available)`, warning: true };
    }
    if (pointerType && records.length === 0) {
      if (stream.paginator.stopOnEmptyPage) return { code: "empty_page", message: "an empty page (stop_on_empty_page)" };
      emptyRun++;
      if (emptyRun >= stream.paginator.maxEmptyPages) {
        return {
          code: "max_empty_pages",
          message: `${emptyRun} empty pages in a row still carried a next pointer; stopped after max_empty_pages ${stream.paginator.maxEmptyPages}`,
          warning: true,
        };
      }
    } else emptyRun = 0;
    if (step.pointer !== null) {
      if (seen.has(step.pointer)) {
        throw new RunError(
          "pagination_loop",
          `pagination loop: the API sent ${executor.redactUrl(step.pointer)} again after page ${result.pages}; stopping rather than fetching the same pages twice`,
          { pointer: executor.redactUrl(step.pointer) },
        );
      }
      seen.add(step.pointer);
    }
    request = step.request;
  }
}

function checkOrigin(url: string, opts: StreamRunOptions, executor: RequestExecutor): void {
  const origin = new URL(url).origin;
  if (origin === opts.origin || opts.allowedOrigins.includes(origin)) return;
  throw new RunError(
    "cross_origin",
    `pagination leads to ${origin}, another origin than base_url (${opts.origin}); it is not in source.allowed_hosts (${opts.allowedOrigins.length ? opts.allowedOrigins.join(", ") : "none"}). Add it there to follow such links (credentials are never sent to other origins). URL: ${executor.redactUrl(url)}`,
    { origin },
  );
}

function parseBody(response: HttpResponse, request: PageRequest, executor: RequestExecutor): unknown {
  if (response.body.length === 0) return null;
  try {
    return JSON.parse(response.body.toString("utf8"));
  } catch {
    const type = response.headers["content-type"] ?? "no content-type";
    throw new RunError(
      "not_json",
      `${request.method} ${executor.redactUrl(response.url)} answered ${response.status} (${type}) with a body that is not JSON: ${executor.redactor.text(firstBytes(response.body, 200))}`,
    );
  }
}

function isEmptyError(v: unknown): boolean {
  return (
    v === undefined ||
    v === null ||
    v === false ||
    v === "" ||
    (Array.isArray(v) && v.length === 0) ||
    (typeof v === "object" && Object.keys(v as object).length === 0)
  );
}

function schemaColumns(stream: StreamPlan): string[] | null {
  const props = stream.schema?.schema?.properties;
  return props && typeof props === "object" ? Object.keys(props) : null;
}
