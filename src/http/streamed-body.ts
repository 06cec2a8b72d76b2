import { pipeline, type Readable } from "node:stream";
import zlib from "node:zlib";
import { RunError, TransportError } from "../shared/errors.js";

/** A gzip file starts with these two bytes. */
export function isGzip(b: Buffer): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

const DECODERS: Record<string, () => zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress> = {
  gzip: () => zlib.createGunzip(),
  "x-gzip": () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

/** `compression: gzip` on a buffered body (a `.json.gz` download). */
export async function gunzipBuffer(body: Buffer, max: number, status: number): Promise<Buffer> {
  try {
    return await new Promise<Buffer>((resolve, reject) =>
      zlib.gunzip(body, { maxOutputLength: max }, (err, out) => (err ? reject(err) : resolve(out))),
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE")
      throw new TransportError(
        "too_large",
        `the response (status ${status}) is larger than max_response_size (${max} bytes)`,
      );
    throw zlibError(err);
  }
}

/** A truncated gzip is a transport fault (retried); a corrupt one is the body's fault. */
export function zlibError(err: unknown): Error {
  if (err instanceof TransportError || err instanceof RunError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === "Z_BUF_ERROR" || /unexpected end/i.test(e?.message ?? ""))
    return new TransportError("truncated", "the compressed body ended early (a truncated gzip)");
  if (typeof e?.code === "string" && e.code.startsWith("Z_"))
    return new RunError("bad_body", `the body does not decompress: ${e.message}`);
  return err as Error;
}

/**
 * A 2xx body read as it arrives: decompressed by Content-Encoding (`compression: auto`), then
 * gunzipped when `compression: gzip` and it is a gzip file; counted against `maxBytes`. Every
 * failure comes out as a TransportError (retryable: reset, truncated, timeout) or a RunError.
 */
export async function* streamBody(
  raw: Readable,
  headers: Record<string, string>,
  req: { compression?: "auto" | "gzip" | "none" },
  ctx: { cleanup: () => void; fail: (err: unknown) => Error; maxBytes: number | null },
): AsyncGenerator<Buffer> {
  const compression = req.compression ?? "auto";
  const encoding = headers["content-encoding"]?.trim().toLowerCase();
  let source: Readable = raw;
  const streams: Readable[] = [raw];
  const decoder = compression !== "none" && encoding ? DECODERS[encoding] : undefined;
  if (decoder) source = chain(source, decoder(), streams, ctx.fail);
  let size = 0;
  let first = true;
  /** Bytes before the gzip sniff: a first chunk too short to hold the magic number. */
  let head: Buffer | null = null;
  try {
    for await (const c of source) {
      let chunk = c as Buffer;
      if (first && compression === "gzip") {
        if (head) chunk = Buffer.concat([head, chunk]);
        if (chunk.length < 2) {
          head = chunk;
          continue;
        }
        head = null;
        first = false;
        if (isGzip(chunk)) {
          // Sniffed on the first chunk: feed it and the rest through gunzip.
          yield* gunzipRest(chunk, source, ctx, (n) => {
            size += n;
            checkSize(size, ctx.maxBytes);
          });
          return;
        }
        if (!decoder)
          throw new RunError("bad_body", "`response.compression: gzip`, but the body is not a gzip file");
      }
      first = false;
      size += chunk.length;
      checkSize(size, ctx.maxBytes);
      yield chunk;
    }
    if (head) {
      // The whole body is one byte: not a gzip file.
      if (!decoder)
        throw new RunError("bad_body", "`response.compression: gzip`, but the body is not a gzip file");
      size += head.length;
      checkSize(size, ctx.maxBytes);
      yield head;
    }
  } catch (err) {
    // The body's own faults first (not a gzip file, corrupt data: not retried), then the network's.
    throw ctx.fail(zlibError(err));
  } finally {
    for (const s of streams) s.destroy();
    ctx.cleanup();
  }
}

/** Until the gunzip stream wants more input, or is gone. */
function room(z: zlib.Gunzip): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      z.off("drain", done);
      z.off("close", done);
      resolve();
    };
    z.once("drain", done);
    z.once("close", done);
  });
}

function checkSize(size: number, max: number | null): void {
  if (max !== null && size > max)
    throw new TransportError(
      "too_large",
      `the streamed response is larger than max_response_size (${max} bytes)`,
    );
}

function chain(
  source: Readable,
  next: zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress,
  all: Readable[],
  fail: (e: unknown) => Error,
): Readable {
  all.push(next);
  pipeline(source, next, (err) => {
    if (err) next.destroy(fail(zlibError(err)));
  });
  return next;
}

async function* gunzipRest(
  head: Buffer,
  rest: AsyncIterable<unknown>,
  ctx: { fail: (err: unknown) => Error },
  count: (n: number) => void,
): AsyncGenerator<Buffer> {
  const gunzip = zlib.createGunzip();
  let failure: unknown = null;
  const feed = (async () => {
    try {
      if (!gunzip.write(head)) await room(gunzip);
      for await (const c of rest) {
        if (gunzip.destroyed) return;
        if (!gunzip.write(c as Buffer)) await room(gunzip);
      }
      gunzip.end();
    } catch (err) {
      failure = err;
      gunzip.destroy(err as Error);
    }
  })();
  try {
    for await (const out of gunzip) {
      count((out as Buffer).length);
      yield out as Buffer;
    }
  } catch (err) {
    throw failure ? ctx.fail(zlibError(failure)) : zlibError(err);
  } finally {
    gunzip.destroy();
    await feed.catch(() => {});
  }
}
