/** Errors of a run are data too: a kind the report can group by, and a message already redacted. */
export type TransportKind = "reset" | "timeout" | "truncated" | "connect" | "too_large" | "aborted";

/** A request that got no complete response: retried (except too_large and aborted). */
export class TransportError extends Error {
  constructor(
    readonly kind: TransportKind,
    message: string,
  ) {
    super(message);
    this.name = "TransportError";
  }
  get retryable(): boolean {
    return this.kind !== "too_large" && this.kind !== "aborted";
  }
}

export type RunErrorKind =
  | "http"
  | "transport"
  | "not_json"
  | "too_large"
  | "api_error"
  | "pagination_loop"
  | "cross_origin"
  | "rate_limit_wait"
  | "auth"
  | "validation"
  | "drift"
  | "output"
  | "partition"
  | "too_deep"
  | "aborted"
  | "internal";

/** Fails a stream. `message` never holds a secret: it is built from redacted parts. */
export class RunError extends Error {
  constructor(
    readonly kind: RunErrorKind,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "RunError";
  }
}

export function firstBytes(body: Buffer | string, n = 500): string {
  const text = typeof body === "string" ? body : body.subarray(0, n * 4).toString("utf8");
  const cut = text.length > n ? `${text.slice(0, n)}…` : text;
  return cut.replace(/\s+/g, " ").trim();
}
