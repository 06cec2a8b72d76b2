import { createHash, type Hash } from "node:crypto";
import type { StreamPlan } from "../compile/plan.js";
import type { HttpResponse } from "../http/client.js";
import type { RequestExecutor } from "../http/executor.js";
import { recordEnds } from "../http/paginators/guards.js";
import type { PageRequest, StopReason } from "../http/paginators/paginator.js";
import type { RequestStats } from "../http/request-stats.js";
import { ResponseRules } from "../http/response-rules.js";
import { ignoredStop } from "../http/response-steps.js";
import { CsvDecoder } from "../records/decoders/csv.js";
import { createDecoder, passesLinesThrough, type RecordDecoder } from "../records/decoders/index.js";
import { JsonlDecoder } from "../records/decoders/jsonl.js";
import { interrupted, RunError } from "../shared/errors.js";
import { parseJson } from "../shared/json-text.js";
import { RawLines, type RawSink } from "./raw-lines.js";
import { outgoing, streamPaginator, streamRules } from "./read-pages.js";
import type { WorkerDecoder } from "./record-workers/streamed-main.js";

export interface StreamedReadOptions {
  origin: string;
  allowedOrigins: string[];
  maxPages: number | null;
  stats: RequestStats;
  signal?: AbortSignal;
  onPage?: () => void;
  /** How many more records the caller wants (`--limit`). */
  remaining: () => number;
  /**
   * A body's records sent to a record worker (src/run/record-workers/) instead of `deliver`, or
   * null to decode it here (a small body). Absent: every body is decoded here.
   */
  offload?: (r: HttpResponse) => Promise<WorkerDecoder | null>;
  /**
   * A JSON lines stream whose records nothing reads (rawLinesFit): its canonical lines go to this
   * sink as they came, unparsed (raw-lines.ts); the others are parsed and delivered as before.
   */
  raw?: RawSink;
}

/**
 * The retriever of `jsonl` and `csv` streams: each response's records are decoded and handed to
 * `deliver` as its bytes arrive (a multi-gigabyte export in flat memory); the paginator then reads
 * the response's headers and record count (`link_header`, `offset`, `page`, `cursor_header`).
 *
 * A transport fault in the middle of a body (a reset, a truncated body or gzip) is retried by the
 * executor within `retry.max_attempts`, and the body is read again from its first byte: the bytes
 * of the records already delivered are compared (SHA-1) with what was read the first time and
 * skipped, so every record is delivered exactly once; a body that differs there fails the stream
 * (its records cannot be matched up). Nothing of the body is held but the unfinished record.
 */
export async function readStreamed(
  stream: StreamPlan,
  executor: RequestExecutor,
  firstRequest: PageRequest,
  opts: StreamedReadOptions,
  /** `json`: the record's line, when it is the JSON stringifyJson would write for it. */
  deliver: (record: unknown, json?: string) => Promise<void> | undefined,
): Promise<StopReason> {
  const maxPages = opts.maxPages ?? stream.paginator.maxPages;
  const paginator = streamPaginator(stream, maxPages, executor);
  const rules = new ResponseRules(streamRules(stream));
  let request = paginator.first(firstRequest);
  const passThrough = passesLinesThrough(stream, stream.output);
  const raw = opts.raw ? { lines: new RawLines(opts.raw.quality), sink: opts.raw } : null;
  let previous = "";
  for (let pages = 1; ; pages++) {
    if (opts.signal?.aborted) throw interrupted();
    const { url, sent } = outgoing(request, opts, executor);
    const body = new ResumableBody(
      raw ? rawDecoder(stream, raw.lines) : createDecoder(stream.response)!,
      deliver,
      opts.remaining,
      raw ? undefined : opts.offload,
      passThrough,
      raw,
    );
    const response = await executor
      .fetch(
        {
          method: request.method,
          url,
          headers: withAccept(request.headers, stream),
          body: sent,
          compression: stream.response?.compression,
          streamed: { maxBytes: executor.streamedLimit },
        },
        opts.stats,
        // A queue job's own signal (its worker's session has none) ends a wait or a body at once.
        opts.signal,
        { rules, consume: (r) => body.read(r, executor, request.method), stop: opts.signal },
      )
      .catch((err: unknown) => {
        throw opts.signal?.aborted ? interrupted() : err;
      });
    opts.onPage?.();
    if (response.ignored) return ignoredStop(response.status, response.ignored.at, pages);
    if (opts.remaining() <= 0) return { code: "limit", message: "--limit reached" };
    // The loop guard compares pages by their records: a body's first and last, and whether its
    // records' bytes are the previous body's (the SHA-1 kept for retries), since the records in
    // between are not kept.
    const digest = body.count ? body.digest() : "";
    const step = paginator.next({
      request,
      response,
      body: null,
      recordCount: body.count,
      compared: { ends: recordEnds(body.ends()), samePrevious: digest !== "" && digest === previous },
    });
    previous = digest;
    if ("stop" in step) return step.stop;
    request = step.request;
  }
}

/** The decoder of a stream whose lines go raw where they can (raw-lines.ts). */
function rawDecoder(stream: StreamPlan, lines: RawLines): RecordDecoder {
  if (stream.response?.format === "csv")
    return new CsvDecoder(stream.response.csv, (json, rows, columns) => lines.takeRows(json, rows, columns));
  return new JsonlDecoder((bytes) => lines.take(bytes));
}

/** An `Accept` for the format, unless the stream sets one. */
function withAccept(headers: Record<string, string>, stream: StreamPlan): Record<string, string> {
  if (Object.keys(headers).some((k) => k.toLowerCase() === "accept")) return headers;
  const accept =
    stream.response?.format === "csv"
      ? "text/csv, application/octet-stream;q=0.9, */*;q=0.8"
      : "application/x-ndjson, application/jsonl, application/json;q=0.9, */*;q=0.8";
  return { ...headers, accept };
}

/** One response's body, read once or (after a transport fault) again, records delivered once. */
class ResumableBody {
  /** SHA-1 of the body's bytes up to the end of the last delivered record. */
  private readonly hash: Hash = createHash("sha1");
  private hashed = 0;
  private attempts = 0;
  private readonly out: unknown[] = [];
  /** The records' canonical lines (JSON lines, when the stream writes them as they came). */
  private readonly texts: (string | undefined)[] | undefined;
  private delivered = 0;
  /** The body's records go to a worker (chosen at the first read, kept for the retries). */
  private worker: WorkerDecoder | null = null;
  private first: unknown = undefined;
  private last: unknown = undefined;

  constructor(
    private decoder: RecordDecoder,
    private readonly deliver: (record: unknown, json?: string) => Promise<void> | undefined,
    private readonly remaining: () => number,
    private readonly offload: ((r: HttpResponse) => Promise<WorkerDecoder | null>) | undefined,
    passThrough: boolean,
    private readonly raw: { lines: RawLines; sink: RawSink } | null,
  ) {
    this.texts = passThrough ? [] : undefined;
  }

  /** Records decoded from the body. */
  get count(): number {
    return this.worker ? this.worker.count : this.delivered;
  }

  /** SHA-1 of the bytes of the body's records (what was delivered). */
  digest(): string {
    return this.hash.copy().digest("hex");
  }

  /** The first and last records (the pagination guards compare pages by them). */
  ends(): unknown[] {
    if (this.worker) return this.worker.ends();
    const record = (r: unknown) => (r instanceof RawLine ? parseJson(r.text) : r);
    return this.delivered ? [record(this.first), record(this.last)] : [];
  }

  async read(r: HttpResponse, executor: RequestExecutor, method: string): Promise<void> {
    this.attempts++;
    if (this.attempts === 1 && this.offload) {
      this.worker = await this.offload(r);
      if (this.worker) this.decoder = this.worker;
    }
    let skip = this.attempts > 1 ? this.hashed : 0;
    const verify = skip > 0 ? createHash("sha1") : null;
    if (this.attempts > 1) this.decoder.resume();
    const pending: Buffer[] = [];
    try {
      for await (const c of r.stream!) {
        let chunk = c;
        if (skip > 0) {
          const take = Math.min(skip, chunk.length);
          verify!.update(chunk.subarray(0, take));
          skip -= take;
          if (skip === 0) this.checkSame(verify!);
          chunk = chunk.subarray(take);
          if (chunk.length === 0) continue;
        }
        const before = this.decoder.completeBytes;
        this.decoder.push(chunk, this.out, this.texts);
        pending.push(chunk);
        this.advance(pending, this.decoder.completeBytes - before);
        if (await this.flush()) return;
        const w = this.worker?.settle();
        if (w) await w;
      }
      if (skip > 0) throw changed("it ended before the records already written");
      const before = this.decoder.completeBytes;
      this.decoder.end(this.out, this.texts);
      this.advance(pending, this.decoder.completeBytes - before);
      await this.flush();
      await this.worker?.finish();
    } catch (err) {
      if (err instanceof RunError && err.kind === "bad_body")
        throw new RunError(
          "bad_body",
          `${method} ${executor.redactUrl(r.url)} answered ${r.status}: ${executor.redactor.text(err.message)}`,
          err.details,
        );
      throw err;
    }
  }

  /** Hash the next `n` bytes of `pending` (the bytes of records just completed). */
  private advance(pending: Buffer[], n: number): void {
    this.hashed += n;
    while (n > 0 && pending.length) {
      const b = pending[0];
      if (b.length <= n) {
        this.hash.update(b);
        n -= b.length;
        pending.shift();
      } else {
        this.hash.update(b.subarray(0, n));
        pending[0] = b.subarray(n);
        n = 0;
      }
    }
  }

  /** Delivers the decoded records (or raw lines); true when `--limit` wants no more. */
  private async flush(): Promise<boolean> {
    const { out, texts } = this;
    try {
      for (let i = 0; i < out.length; i++) {
        if (this.remaining() <= 0) return true;
        const rec = out[i];
        if (this.delivered++ === 0) this.first = rec;
        this.last = rec;
        const p = this.deliver(rec, texts?.[i]);
        if (p) await p;
      }
    } finally {
      out.length = 0;
      if (texts) texts.length = 0;
    }
    // Raw lines (a push is either parsed or taken raw: the order holds). No `--limit` here.
    const chunks = this.raw?.lines.chunks;
    while (chunks?.length) {
      const c = chunks.shift()!;
      if (this.delivered === 0) this.first = new RawLine(c.first);
      this.last = new RawLine(c.last);
      this.delivered += c.written;
      const p = this.raw!.sink.acceptLines(c);
      if (p) await p;
    }
    return false;
  }

  private checkSame(verify: Hash): void {
    if (verify.digest("hex") !== this.hash.copy().digest("hex"))
      throw changed("its first bytes differ from those read before the fault");
  }
}

/** A record still as its line (raw-lines.ts): parsed only if the pagination guards ask for it. */
class RawLine {
  constructor(readonly text: string) {}
}

function changed(how: string): RunError {
  return new RunError(
    "bad_body",
    `the body was read again after a transport fault, but ${how}: the records already written cannot be matched up, so the stream fails rather than write a record twice or lose one`,
  );
}
