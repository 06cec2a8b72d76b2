import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { firstBytes, RunError, TransportError } from "../shared/errors.js";
import { Pool, requestSent } from "../vendor/http-libs.js";
import { gunzipBuffer, isGzip, streamBody, zlibError } from "./streamed-body.js";

export interface HttpRequest {
  method: "GET" | "POST";
  /** Absolute URL with its query string. */
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** `response.compression` (absent: `auto`, follow Content-Encoding). */
  compression?: "auto" | "gzip" | "none";
  /**
   * A jsonl or csv body: a 2xx answer comes back with `stream` (the decoded body as it arrives)
   * instead of `body`; `maxBytes` caps it when `max_response_size` was set. Other answers are
   * buffered as usual (rules and error messages read them).
   */
  streamed?: { maxBytes: number | null };
}

export interface HttpResponse {
  status: number;
  /** Lower-cased names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  body: Buffer;
  url: string;
  /** Time to the last body byte, ms (to the headers for a streamed body). */
  elapsedMs: number;
  /** A streamed body (HttpRequest.streamed), decompressed: read it once, to the end or until it throws. */
  stream?: AsyncIterable<Buffer>;
  /**
   * Gives up a streamed body that will not be read (an `on_response` rule decided on the status):
   * the connection is freed (an unread body would hold it, and the pool's close, for good).
   */
  discard?: () => void;
  /** An `on_response` rule answered `ignore`: the response is an empty last page. */
  ignored?: { at: string; message: string | null };
}

const decompressors: Record<string, (b: Buffer, o: zlib.ZlibOptions) => Promise<Buffer>> = {
  gzip: promisify(zlib.gunzip),
  "x-gzip": promisify(zlib.gunzip),
  deflate: promisify(zlib.inflate),
  br: promisify(zlib.brotliDecompress) as (b: Buffer, o: zlib.ZlibOptions) => Promise<Buffer>,
};

/**
 * One keep-alive undici Pool per origin. `send` makes exactly one attempt: it enforces the whole
 * request timeout (connect to last body byte) and the size limit, and turns every transport
 * failure into a TransportError. Retrying is the caller's business.
 */
export interface HttpClientOptions {
  timeoutMs: number;
  maxResponseBytes: number;
  connections: number;
  userAgent: string;
}

export class HttpClient {
  private readonly pools = new Map<string, Pool>();
  constructor(private readonly opts: HttpClientOptions) {}

  private pool(origin: string): Pool {
    let p = this.pools.get(origin);
    if (!p) {
      p = new Pool(origin, {
        connections: this.opts.connections,
        pipelining: 1,
        keepAliveTimeout: 10_000,
        keepAliveMaxTimeout: 60_000,
        connect: { timeout: this.opts.timeoutMs },
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      });
      this.pools.set(origin, p);
    }
    return p;
  }

  /**
   * `onSent` is called once the request is written on the socket (not for a request that fails
   * or is aborted before): the rate budget counts a request from that moment.
   */
  async send(req: HttpRequest, signal?: AbortSignal, onSent?: () => void): Promise<HttpResponse> {
    const started = performance.now();
    const url = new URL(req.url);
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new TimeoutMarker()), this.opts.timeoutMs);
    const onOuterAbort = () => deadline.abort(signal?.reason);
    if (signal?.aborted) onOuterAbort();
    signal?.addEventListener("abort", onOuterAbort, { once: true });
    const headers: Record<string, string> = {
      "user-agent": this.opts.userAgent,
      accept: "application/json",
      "accept-encoding": "gzip, deflate, br",
      ...lowerKeys(req.headers),
    };
    if (req.body !== undefined && !headers["content-type"]) headers["content-type"] = "application/json";
    // Once the status line and headers are in, a closed connection means a truncated body.
    let gotHeaders = false;
    let handedOff = false;
    try {
      const opts = {
        path: url.pathname + url.search,
        method: req.method,
        headers,
        body: req.body,
        signal: deadline.signal,
      };
      const pool = this.pool(url.origin);
      const res = await (onSent ? requestSent(pool, opts, onSent) : pool.request(opts));
      gotHeaders = true;
      const resHeaders: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) {
        if (v !== undefined) resHeaders[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : String(v);
      }
      if (req.streamed && res.statusCode >= 200 && res.statusCode < 300) {
        // The body is read as it arrives: the whole-request timeout ends here; undici's body
        // timeout (the same length) still fails a body that stops moving.
        clearTimeout(timer);
        handedOff = true;
        return streamedResponse(req, res, resHeaders, started, {
          cleanup: () => signal?.removeEventListener("abort", onOuterAbort),
          fail: (err) => classify(err, deadline.signal.reason, this.opts.timeoutMs, true),
          maxBytes: req.streamed.maxBytes,
        });
      }
      const body = await this.readBody(req, res, resHeaders);
      return {
        status: res.statusCode,
        headers: resHeaders,
        body,
        url: req.url,
        elapsedMs: performance.now() - started,
      };
    } catch (err) {
      throw classify(err, deadline.signal.reason, this.opts.timeoutMs, gotHeaders);
    } finally {
      if (!handedOff) {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onOuterAbort);
      }
    }
  }

  /** The whole body (bounded by maxResponseBytes), decompressed. */
  private async readBody(
    req: HttpRequest,
    res: { statusCode: number; body: AsyncIterable<Buffer> & { destroy(): unknown } },
    resHeaders: Record<string, string>,
  ): Promise<Buffer> {
    const declared = Number(resHeaders["content-length"]);
    if (Number.isFinite(declared) && declared > this.opts.maxResponseBytes) {
      res.body.destroy();
      throw tooLarge(this.opts.maxResponseBytes, res.statusCode);
    }
    // Read by its `data` events to its end (finished: an error or a close before the end rejects
    // as a `for await` would), without an async iterator and a promise per chunk.
    const stream = res.body as unknown as Readable;
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    stream.on("data", (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > this.opts.maxResponseBytes) {
        over = true;
        stream.destroy();
      } else chunks.push(chunk);
    });
    try {
      await finished(stream);
    } catch (err) {
      if (!over) throw err;
    }
    if (over) throw tooLarge(this.opts.maxResponseBytes, res.statusCode);
    let body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    const encoding = resHeaders["content-encoding"]?.trim().toLowerCase();
    if (req.compression !== "none" && encoding && encoding !== "identity" && decompressors[encoding]) {
      try {
        body = await decompressors[encoding](body, { maxOutputLength: this.opts.maxResponseBytes });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE")
          throw tooLarge(this.opts.maxResponseBytes, res.statusCode);
        // Cut short: a transport fault (retried); not compressed data at all: the body's fault.
        const e = zlibError(err);
        throw e instanceof RunError
          ? new RunError(
              "bad_body",
              `the ${encoding} body of the response (status ${res.statusCode}) does not decompress: ${(err as Error).message}`,
            )
          : new TransportError(
              "truncated",
              `the ${encoding} body did not decompress (${(err as Error).message})`,
            );
      }
    }
    if (req.compression === "gzip" && isGzip(body))
      body = await gunzipBuffer(body, this.opts.maxResponseBytes, res.statusCode);
    return body;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => p.destroy())));
    this.pools.clear();
  }
}

class TimeoutMarker extends Error {}

function streamedResponse(
  req: HttpRequest,
  res: { statusCode: number; body: Parameters<typeof streamBody>[0] },
  headers: Record<string, string>,
  started: number,
  ctx: Parameters<typeof streamBody>[3],
): HttpResponse {
  return {
    status: res.statusCode,
    headers,
    body: Buffer.alloc(0),
    url: req.url,
    elapsedMs: performance.now() - started,
    stream: streamBody(res.body, headers, req, ctx),
    discard: () => {
      res.body.destroy();
      ctx.cleanup();
    },
  };
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

function tooLarge(limit: number, status: number): TransportError {
  return new TransportError(
    "too_large",
    `the response (status ${status}) is larger than max_response_size (${limit} bytes)`,
  );
}

export function classify(err: unknown, abortReason: unknown, timeoutMs: number, gotHeaders: boolean): Error {
  // A RunError is a verdict on the response (a body that is not what it says), not the network.
  if (err instanceof TransportError || (err instanceof RunError && abortReason === undefined)) return err;
  if (abortReason instanceof TimeoutMarker) {
    return new TransportError("timeout", `no complete response within the ${timeoutMs / 1000}s timeout`);
  }
  if (abortReason !== undefined) return new TransportError("aborted", "the run was interrupted");
  const e = err as NodeJS.ErrnoException & { code?: string };
  const code = e?.code ?? "";
  // A bug of ours is not the network: retrying it would hide it behind "reset ×4".
  if (!code && (err instanceof TypeError || err instanceof ReferenceError || err instanceof SyntaxError))
    return err;
  switch (code) {
    // undici refused the request itself (a header value with a line break…): the same request
    // fails the same way every time, so it is not retried as a reset.
    case "UND_ERR_INVALID_ARG":
    case "ERR_INVALID_ARG_TYPE":
    case "ERR_INVALID_CHAR":
    case "ERR_INVALID_HTTP_TOKEN":
      return new RunError("invalid_request", `the request could not be sent: ${firstBytes(e.message, 200)}`);
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return new TransportError("timeout", `no complete response within the ${timeoutMs / 1000}s timeout`);
    case "UND_ERR_RES_CONTENT_LENGTH_MISMATCH":
      return new TransportError("truncated", "the response body ended before its Content-Length");
    case "ECONNREFUSED":
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new TransportError("connect", `could not connect (${code})`);
    case "UND_ERR_SOCKET":
    case "ECONNRESET":
    case "EPIPE":
    case "UND_ERR_CLOSED":
      // Not the socket's bytesRead: on a kept-alive socket it counts earlier responses too.
      return gotHeaders
        ? new TransportError("truncated", `the connection was closed before the whole body arrived (${code})`)
        : new TransportError("reset", `the connection was closed before a response (${code})`);
    default:
      if (gotHeaders || /terminated|premature close|aborted/i.test(e?.message ?? ""))
        return new TransportError("truncated", `the response ended early (${firstBytes(e.message, 120)})`);
      return new TransportError("reset", `request failed: ${firstBytes(e?.message ?? String(err), 200)}`);
  }
}
