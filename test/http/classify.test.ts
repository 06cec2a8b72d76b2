import { describe, expect, it } from "vitest";
import { classify } from "../../src/http/client.js";
import { RunError, TransportError } from "../../src/shared/errors.js";

const errno = (code: string, message = code) => Object.assign(new Error(message), { code });

describe("what a failed request was", () => {
  it("network failures are transport errors, retried", () => {
    expect(classify(errno("ECONNRESET"), undefined, 30_000, false)).toMatchObject({ kind: "reset" });
    expect(classify(errno("ECONNRESET"), undefined, 30_000, true)).toMatchObject({ kind: "truncated" });
    expect(classify(errno("ECONNREFUSED"), undefined, 30_000, false)).toMatchObject({ kind: "connect" });
    expect(classify(errno("UND_ERR_HEADERS_TIMEOUT"), undefined, 30_000, false)).toMatchObject({
      kind: "timeout",
    });
    const unknown = classify(errno("UND_ERR_SOMETHING_NEW"), undefined, 30_000, false);
    expect(unknown).toBeInstanceOf(TransportError);
    expect((unknown as TransportError).retryable).toBe(true);
  });

  it("a bug of ours (TypeError, ReferenceError) is passed on as is, not retried as a reset", () => {
    // Seen while bundling undici: `pool.request is not a function` was retried 4 times as resets.
    for (const err of [new TypeError("this.pool(...).request is not a function"), new ReferenceError("x")]) {
      const out = classify(err, undefined, 30_000, false);
      expect(out).toBe(err);
      expect(out).not.toBeInstanceOf(TransportError);
    }
    // undici's own errors carry a code: still transport errors.
    expect(
      classify(Object.assign(new TypeError("fetch failed"), { code: "UND_ERR_SOCKET" }), undefined, 1, false),
    ).toBeInstanceOf(TransportError);
  });

  it("a request undici refuses to send (a header value with CR/LF) is not retried as a reset", () => {
    const refused = Object.assign(new TypeError("invalid x-cursor header"), { code: "UND_ERR_INVALID_ARG" });
    const out = classify(refused, undefined, 30_000, false);
    expect(out).toBeInstanceOf(RunError);
    expect(out).toMatchObject({
      kind: "invalid_request",
      message: "the request could not be sent: invalid x-cursor header",
    });
  });
});
