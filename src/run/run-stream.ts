import { createReadStream } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import type { StreamPlan, ValidationPlan } from "../compile/plan.js";
import type { HttpResponse } from "../http/client.js";
import { firstBytes, RunError } from "../http/errors.js";
import type { RequestExecutor } from "../http/executor.js";
import {
  type NextStep,
  type PageRequest,
  requestUrl,
  type StopReason,
} from "../http/paginators/paginator.js";
import { createPaginator } from "../http/paginators/paginators.js";
import { Semaphore } from "../http/semaphore.js";
import { AtomicFile } from "../outputs/atomic-file.js";
import { openWriter } from "../outputs/registry.js";
import type { RecordWriter } from "../outputs/writer.js";
import { parseJson, stringifyJson } from "../records/json-text.js";
import { compileJsonPath } from "../records/jsonpath.js";
import { type RecordError, StreamQuality } from "../records/quality.js";
import { compileShaper, type Row, type Shaper } from "../records/shape.js";
import { applyIncremental, CursorTracker, startValue } from "./incremental.js";
import { OrderedSink } from "./ordered-sink.js";
import { compileRequestTemplate } from "./request-template.js";
import type { StateStore } from "./state.js";
import type { StreamResult } from "./stream-result.js";

export interface StreamRunOptions {
  runId: string;
  baseUrl: string;
  origin: string;
  allowedOrigins: string[];
  concurrency: number;
  validation: ValidationPlan;
  /** Stop after this many records (the output is still committed). */
  limit: number | null;
  /** Overrides the paginator's max_pages. */
  maxPages: number | null;
  fullRefresh: boolean;
  /** Pages fetched ahead by offset and page paginators (1: none). */
  prefetch: number;
  state: StateStore;
  /** Where the valid records of a parent stream are kept for its children during the run. */
  scratchDir: string;
  signal?: AbortSignal;
}

export interface StreamIO {
  /** For a child stream: the parent's valid records file (JSON lines). */
  parentRecords: string | null;
  /** For a parent stream: keep valid records for the children here. */
  keepRecordsAt: string | null;
  /** The parent stream's primary key, to name a failed partition. */
  parentKey: string[] | null;
}

const POINTER_TYPES = new Set(["cursor", "link_header", "next_url"]);

/**
 * Runs one stream: page by page (or partition by partition for a child stream), records flow
 * select → shape → validate → write with backpressure. The output is committed only when the
 * stream ends well and passes its data-quality policy; then its incremental cursor is saved.
 */
export async function runStream(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  io: StreamIO,
  result: StreamResult,
): Promise<void> {
  result.status = "running";
  result.startedAt = Date.now();
  const started = performance.now();
  let writer: RecordWriter | null = null;
  let quarantine: AtomicFile | null = null;
  let keep: AtomicFile | null = null;
  const quarantinePath = quarantineFile(stream);
  const quality = new StreamQuality(stream, opts.validation);
  const cursor = stream.incremental ? new CursorTracker(stream.incremental.cursorField) : null;
  try {
    writer = await openWriter(stream.output, {
      runId: opts.runId,
      stream: stream.name,
      columns: schemaColumns(stream),
      primaryKey: stream.primaryKey,
      schema: stream.schema?.schema ?? null,
    });
    const w = writer;
    if (io.keepRecordsAt) keep = await AtomicFile.create(io.keepRecordsAt, opts.runId);
    const policy = opts.validation.invalidRecords;

    /** A record that passed (or is kept anyway): written, counted, its cursor seen. */
    const writeRow = (row: Row): Promise<void> | undefined => {
      const p = w.write(row);
      result.records.written++;
      cursor?.see(row);
      return p;
    };
    const acceptInvalid = async (row: Row, errors: RecordError[]): Promise<void> => {
      result.records.invalid++;
      const id = quality.recordId(row, quality.seen);
      if (policy === "fail") {
        throw new RunError(
          "validation",
          executor.redactor.text(
            `record ${id} is invalid (invalid_records: fail): ${errors.map((e) => `${e.path} ${e.message}${e.expected ? ` (expected ${e.expected}, found ${e.actual})` : ""}`).join("; ")}`,
          ),
        );
      }
      if (policy === "skip") {
        quarantine ??= await AtomicFile.create(quarantinePath, opts.runId);
        const p = quarantine.write(
          `${stringifyJson(executor.redactor.value({ record_id: id, errors, record: row }))}\n`,
        );
        if (p) await p;
        return;
      }
      const p = writeRow(row);
      if (p) await p;
    };
    /**
     * Every shaped record goes through here, in order. The common case (valid, no backpressure)
     * returns nothing to await: no promise per record.
     */
    const accept = (row: Row): Promise<void> | undefined => {
      const errors = quality.check(row);
      result.records.seen = quality.seen;
      if (errors.length) return acceptInvalid(row, errors);
      result.records.valid++;
      if (keep) {
        const k = keep.write(`${stringifyJson(row)}\n`);
        if (k) return k.then(() => writeRow(row));
      }
      return writeRow(row);
    };

    const saved = stream.incremental ? (await opts.state.read()).streams?.[stream.name]?.cursor : null;
    const since = startValue(stream, saved, opts.fullRefresh);
    const shaper = compileShaper(stream);
    let stop: StopReason;
    if (stream.parent && io.parentRecords) {
      stop = await runPartitions(stream, executor, opts, io, shaper, since, accept, result);
    } else {
      const first: PageRequest = {
        method: stream.request.method,
        url: stream.request.url,
        params: stream.request.params,
        headers: stream.request.headers,
        body: stream.request.body,
      };
      stop = await pull(
        stream,
        executor,
        opts,
        applyIncremental(first, stream, since),
        shaper,
        accept,
        result,
        undefined,
      );
    }
    result.stop = stop;
    if (stop.warning) result.warnings.push(stop.message);
    const moved = result.requests.movedPermanently;
    if (moved.count) {
      result.warnings.push(
        `${moved.count} request${moved.count === 1 ? " was" : "s were"} redirected permanently (${moved.first}${moved.count > 1 ? ", …" : ""}): the API moved; point the pipeline at the new address`,
      );
    }
    result.records.duplicates = writer.duplicates?.() ?? 0;

    // Data-quality gates: the invalid ratio and drift: fail.
    const ratio = quality.seen ? quality.invalid / quality.seen : 0;
    const drift = quality.drift();
    const rejections: string[] = [];
    if (ratio > opts.validation.maxInvalidRatio) {
      rejections.push(
        `${quality.invalid} of ${quality.seen} records invalid (${(ratio * 100).toFixed(1)}%), above max_invalid_ratio ${(opts.validation.maxInvalidRatio * 100).toFixed(1)}%`,
      );
    }
    if (drift?.breached) {
      const parts = [
        drift.new_fields.length ? `new fields ${drift.new_fields.map((f) => f.field).join(", ")}` : "",
        drift.type_changes.length
          ? `type changes in ${drift.type_changes.map((f) => f.field).join(", ")}`
          : "",
      ].filter(Boolean);
      rejections.push(`schema drift (drift: fail): ${parts.join("; ")}`);
    }
    let rejectedOutput: string | null = null;
    if (rejections.length) {
      if (writer.keepRejected) rejectedOutput = await writer.keepRejected();
      else await writer.abort();
      writer = null;
      result.status = "rejected";
      result.error = {
        kind: ratio > opts.validation.maxInvalidRatio ? "validation" : "drift",
        message: `${rejections.join("; ")}. The previous output is unchanged${rejectedOutput ? `; the new records were kept in ${rejectedOutput}` : ""}.`,
      };
    } else {
      await writer.commit();
      writer = null;
      result.output = stream.output.path;
      result.status = "ok";
      // A run that did not fetch everything it was asked for must not move the cursor past the
      // records it never saw (a --limit run of a newest-first API, a skipped partition).
      const partial =
        stop.code === "limit"
          ? `--limit ${opts.limit} stopped the stream early`
          : stop.code === "max_pages" || stop.code === "max_empty_pages"
            ? `${stop.code} stopped the stream while the API still had a next page`
            : result.partitions?.failed.length
              ? `${result.partitions.failed.length} partition${result.partitions.failed.length === 1 ? "" : "s"} failed`
              : null;
      if (partial && cursor?.max !== null && cursor?.max !== undefined && stream.incremental) {
        result.warnings.push(
          `incremental cursor not saved (${partial}): the next run starts from the previous cursor again`,
        );
      } else if (cursor?.max !== null && cursor?.max !== undefined && stream.incremental) {
        const value = cursor.max;
        await opts.state.update((s) => ({
          ...s,
          streams: { ...s.streams, [stream.name]: { cursor: value, updated_at: new Date().toISOString() } },
        }));
      }
    }
    // The quarantine describes this run: replace the previous one, or remove it when all is valid.
    if (quarantine) {
      await (quarantine as AtomicFile).commit();
      quarantine = null;
    } else await rm(quarantinePath, { force: true });
    if (keep) {
      await (keep as AtomicFile).commit();
      keep = null;
    }
    result.quality = {
      schemaDraft: quality.draft,
      errors: quality.errorGroups(),
      drift,
      fields: quality.fieldStats(),
      quarantine: result.records.invalid && policy === "skip" ? quarantinePath : null,
      rejectedOutput,
    };
  } catch (err) {
    await writer?.abort().catch(() => {});
    await (quarantine as AtomicFile | null)?.abort().catch(() => {});
    await (keep as AtomicFile | null)?.abort().catch(() => {});
    result.status = "failed";
    result.error =
      err instanceof RunError
        ? { kind: err.kind, message: err.message }
        : { kind: "internal", message: executor.redactor.text((err as Error)?.message ?? String(err)) };
    result.quality = {
      schemaDraft: quality.draft,
      errors: quality.errorGroups(),
      drift: quality.drift(),
      fields: quality.fieldStats(),
      quarantine: null,
      rejectedOutput: null,
    };
  } finally {
    result.durationMs = performance.now() - started;
  }
}

/** A child stream: one pull per parent record, concurrently, written in parent order. */
async function runPartitions(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  io: StreamIO,
  shaper: Shaper,
  since: string | number | null,
  accept: (row: Row) => Promise<void> | undefined,
  result: StreamResult,
): Promise<StopReason> {
  const template = compileRequestTemplate(stream, opts.baseUrl);
  const sink = new OrderedSink(accept);
  const slots = new Semaphore(Math.max(1, opts.concurrency));
  // The parent file is complete: count its records first, so progress can show done / total.
  const expected = await countLines(io.parentRecords!);
  const partitions = (result.partitions = {
    total: expected,
    done: 0,
    failed: [] as { parent_key: string; error: string }[],
  });
  const running: Promise<void>[] = [];
  let fatal: unknown = null;
  let index = 0;
  const lines = createInterface({
    input: createReadStream(io.parentRecords!, "utf8"),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of lines) {
    if (!line) continue;
    if (fatal || opts.signal?.aborted) break;
    if (opts.limit !== null && result.records.written >= opts.limit) break;
    const parent = parseJson(line) as Row;
    await sink.room(); // bounded memory behind a slow partition (ordered-sink.ts)
    const release = await slots.acquire();
    // A partition may have failed the stream while this one waited for a slot.
    if (fatal || opts.signal?.aborted) {
      release();
      break;
    }
    const i = index++;
    const parentKey = parentId(stream.parent!, io.parentKey, parent, i + 1);
    // Under `skip`, a partition is written whole or not at all (ordered-sink.ts).
    // (Not with --limit: held-back records would not count toward it.)
    const lane = sink.lane(i, stream.onPartitionError === "skip" && opts.limit === null);
    running.push(
      (async () => {
        try {
          const first = applyIncremental(template(parent, parentKey), stream, since);
          // Partitions already use the concurrency; each pulls its pages in sequence.
          await pull(
            stream,
            executor,
            { ...opts, prefetch: 1 },
            first,
            shaper,
            (row) => lane.write(row),
            result,
            parent,
          );
          partitions.done++;
        } catch (err) {
          if (
            stream.onPartitionError === "skip" &&
            err instanceof RunError &&
            err.kind !== "aborted" &&
            err.kind !== "validation"
          ) {
            const kept = lane.discard();
            partitions.failed.push({
              parent_key: parentKey,
              error: kept
                ? `${err.message} (${kept} of its records were written before it failed, and are kept: the partition was too large to hold back)`
                : err.message,
            });
            partitions.done++;
          } else {
            fatal ??=
              err instanceof RunError
                ? new RunError(err.kind, `partition for parent ${parentKey}: ${err.message}`, err.details)
                : err;
            sink.stop();
          }
        } finally {
          release();
          // Closing flushes later partitions' buffered records: a record that fails there
          // (invalid_records: fail) fails the stream once every partition has ended.
          await lane.close().catch((err: unknown) => {
            fatal ??= err;
            sink.stop();
          });
        }
      })(),
    );
  }
  await Promise.all(running);
  partitions.total = index;
  if (fatal) throw fatal;
  if (partitions.failed.length) {
    result.warnings.push(
      `${partitions.failed.length} of ${partitions.total} partitions failed and were skipped (on_partition_error: skip)`,
    );
  }
  if (opts.limit !== null && result.records.written >= opts.limit)
    return { code: "limit", message: `--limit ${opts.limit} reached` };
  return { code: "single_page", message: `all ${partitions.total} parent records fetched` };
}

async function countLines(file: string): Promise<number> {
  let n = 0;
  let last = 10;
  for await (const chunk of createReadStream(file)) {
    const buf = chunk as Buffer;
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
    last = buf[buf.length - 1];
  }
  return last === 10 ? n : n + 1;
}

/** `repos:id=42` (the parent's primary key, else a common id field), or `repos#3`. */
function parentId(parentName: string, key: string[] | null, parent: Row, position: number): string {
  const fields =
    key ??
    ["id", "key", "name", "slug"]
      .filter((k) => typeof parent[k] === "string" || typeof parent[k] === "number")
      .slice(0, 1);
  if (fields.length && fields.every((k) => parent[k] !== undefined && parent[k] !== null)) {
    return `${parentName}:${fields.map((k) => `${k}=${typeof parent[k] === "object" ? JSON.stringify(parent[k]) : parent[k]}`).join(",")}`;
  }
  return `${parentName}#${position}`;
}

interface FetchedPageData {
  response: HttpResponse;
  body: unknown;
  records: unknown[];
}

/**
 * Pulls one request's pages until the paginator stops. Offset and page paginators fetch up to
 * `opts.prefetch` pages ahead concurrently (guesses from `peek`, checked in order against
 * `next()`; a wrong guess is dropped and refetched), so records are written in page order.
 */
export async function pull(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  firstRequest: PageRequest,
  shaper: Shaper,
  write: (row: Row) => Promise<void> | undefined,
  result: StreamResult,
  parent: Row | undefined,
): Promise<StopReason> {
  // Pages fetched ahead that are not used when the pull ends are cancelled, not left running.
  const cancel = new AbortController();
  try {
    return await pullPages(
      stream,
      executor,
      opts,
      firstRequest,
      shaper,
      write,
      result,
      parent,
      cancel.signal,
    );
  } finally {
    cancel.abort();
  }
}

async function pullPages(
  stream: StreamPlan,
  executor: RequestExecutor,
  opts: StreamRunOptions,
  firstRequest: PageRequest,
  shaper: Shaper,
  write: (row: Row) => Promise<void> | undefined,
  result: StreamResult,
  parent: Row | undefined,
  cancel: AbortSignal,
): Promise<StopReason> {
  const errorPath = stream.errorPath ? compileJsonPath(stream.errorPath) : null;
  const maxPages = opts.maxPages ?? stream.paginator.maxPages;
  const paginator = createPaginator(stream.paginator);
  const pointerType = POINTER_TYPES.has(stream.paginator.type);
  const fetchPage = async (request: PageRequest): Promise<FetchedPageData> => {
    const url = requestUrl(request);
    checkOrigin(url, opts, executor);
    const response = await executor.fetch(
      {
        method: request.method,
        url,
        headers: request.headers,
        body:
          request.method === "POST" && request.body !== null && request.body !== undefined
            ? JSON.stringify(request.body)
            : undefined,
      },
      result.requests,
      cancel,
    );
    const body = parseBody(response, request, executor);
    if (errorPath) {
      const e = errorPath.first(body);
      if (!isEmptyError(e)) {
        throw new RunError(
          "api_error",
          `${request.method} ${executor.redactUrl(url)} answered ${response.status} with an error at ${stream.errorPath}: ${executor.redactor.text(typeof e === "string" ? e : stringifyJson(e))}`,
        );
      }
    }
    return { response, body, records: shaper.select(body) };
  };
  const prefetch = paginator.peek && opts.prefetch > 1 ? opts.prefetch : 1;
  /** Pages requested ahead (in flight or arrived, not yet written), by URL. */
  const ahead = new Map<string, Promise<FetchedPageData>>();
  let inflight = 0;
  /** A request whose failure only matters if its page is used (a guess past the end may fail). */
  const start = (req: PageRequest): Promise<FetchedPageData> => {
    inflight++;
    const p = fetchPage(req);
    p.catch(() => {}).finally(() => {
      inflight--;
      topUp(); // a sliding window: a slot that frees is refilled at once, not when its round ends
    });
    return p;
  };
  /**
   * Keeps up to `prefetch` guessed pages in flight, and at most twice that requested ahead of the
   * page being written (pages that arrived but wait for their turn count, so memory is bounded).
   */
  const topUp = (): void => {
    if (prefetch <= 1 || pageSize <= 0 || shortPage || cancel.aborted) return;
    // Pages are numbered from the first of the stream; the next one to write is `pages + 1`.
    for (let k = Math.max(1, furthest - pages); k <= prefetch * 2 && inflight < prefetch; k++) {
      if (maxPages !== null && pages + 1 + k > maxPages) break;
      const guess = paginator.peek!(k, pageSize);
      if (!guess) break;
      const key = requestUrl(guess);
      if (!ahead.has(key)) ahead.set(key, start(guess));
      furthest = pages + 1 + k;
    }
  };
  /** The furthest page guessed so far (0: none, or every guess was dropped). */
  let furthest = 0;
  let shortPage = false;
  // Guesses start at once: page numbers need no size; offsets assume the `limit` asked for until
  // a page shows the size the server really gives (a server that caps it costs one dropped round).
  let pageSize =
    stream.paginator.type === "page" ? 1 : stream.paginator.type === "offset" ? stream.paginator.limit : 0;
  let request = paginator.first(firstRequest);
  const seen = new Set<string>();
  if (stream.paginator.type === "link_header" || stream.paginator.type === "next_url")
    seen.add(requestUrl(request));
  let emptyRun = 0;
  let pages = 0;
  for (;;) {
    if (opts.signal?.aborted) throw new RunError("aborted", "the run was interrupted");
    const url = requestUrl(request);
    let pending = ahead.get(url);
    if (pending) ahead.delete(url);
    else {
      ahead.clear(); // every guess was wrong (a short page moved the offsets)
      furthest = 0;
      pending = start(request);
    }
    topUp();
    const { response, body, records } = await pending;
    result.pages++;
    pages++;
    // The first page shows the page size the server really gives (it may cap the one asked for).
    // A shorter page later is most likely the last: no more guesses until a full page comes again.
    if (pages === 1 && records.length > 0) pageSize = records.length;
    shortPage = records.length < pageSize;
    // Decide on the next page before writing this one, so that its request overlaps the writing.
    const outcome = nextStep(
      paginator.next({ request, response, body, recordCount: records.length }),
      records.length,
    );
    const limitHere = opts.limit !== null && result.records.written + records.length >= opts.limit;
    if (!("stop" in outcome) && !limitHere) {
      request = outcome.request;
      const key = requestUrl(request);
      if (!ahead.has(key)) ahead.set(key, start(request));
    }
    // Let the requests just started reach the wire before this page is written. undici sends on a
    // kept-alive socket from a setImmediate, and writing a page is one long chain of microtasks:
    // without this turn of the event loop the next requests left only after the writing, and
    // 8 concurrent pages went out in rounds (a third slower than a sliding window).
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (const record of records) {
      if (opts.limit !== null && result.records.written >= opts.limit) break;
      const p = write(shaper.shape(record, parent));
      if (p) await p;
    }
    if (opts.limit !== null && result.records.written >= opts.limit) {
      return { code: "limit", message: `--limit ${opts.limit} reached` };
    }
    if ("stop" in outcome) return outcome.stop;
    request = outcome.request;
  }

  /** The paginator's answer, with the rules every type shares: max_pages, empty pages, loops. */
  function nextStep(step: NextStep, count: number): NextStep {
    if ("stop" in step) return step;
    if (maxPages !== null && pages >= maxPages) {
      return {
        stop: {
          code: "max_pages",
          message: `max_pages ${maxPages} reached (more pages were available)`,
          warning: true,
        },
      };
    }
    if (pointerType && count === 0) {
      if (stream.paginator.stopOnEmptyPage)
        return { stop: { code: "empty_page", message: "an empty page (stop_on_empty_page)" } };
      emptyRun++;
      if (emptyRun >= stream.paginator.maxEmptyPages) {
        return {
          stop: {
            code: "max_empty_pages",
            message: `${emptyRun} empty pages in a row still carried a next pointer; stopped after max_empty_pages ${stream.paginator.maxEmptyPages}`,
            warning: true,
          },
        };
      }
    } else emptyRun = 0;
    if (step.pointer !== null) {
      if (seen.has(step.pointer)) {
        throw new RunError(
          "pagination_loop",
          `pagination loop: the API sent ${executor.redactUrl(step.pointer)} again after page ${pages}; stopping rather than fetching the same pages twice`,
          { pointer: executor.redactUrl(step.pointer) },
        );
      }
      seen.add(step.pointer);
    }
    return step;
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
    return parseJson(response.body.toString("utf8"));
  } catch (err) {
    if (err instanceof RunError) throw err;
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

/**
 * `<output dir>/<stream>.invalid.jsonl`; for sqlite, whose file holds every stream of a pipeline,
 * `<output dir>/<db name>.<stream>.invalid.jsonl` so pipelines sharing a folder do not collide.
 */
export function quarantineFile(stream: StreamPlan): string {
  const dir = path.dirname(stream.output.path);
  if (stream.output.format === "sqlite") {
    const base = path.basename(stream.output.path).replace(/\.[^.]+$/, "");
    return path.join(dir, `${base}.${stream.name}.invalid.jsonl`);
  }
  return path.join(dir, `${stream.name}.invalid.jsonl`);
}

function schemaColumns(stream: StreamPlan): string[] | null {
  const props = stream.schema?.schema?.properties;
  return props && typeof props === "object" ? Object.keys(props) : null;
}
