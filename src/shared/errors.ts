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
  | "invalid_request"
  | "not_json"
  | "too_large"
  | "api_error"
  | "bad_body"
  | "pagination_loop"
  | "cross_origin"
  | "rate_limit_wait"
  | "auth"
  | "validation"
  | "drift"
  | "suspicious"
  | "output"
  | "partition"
  | "too_deep"
  | "aborted"
  | "queue"
  | "internal";

/** Most characters of text from outside (a body, a header, an API's own error message) quoted in a message. */
export const QUOTE_CHARS = 500;
/** Most characters of a URL shown in a message (after masking). */
export const URL_CHARS = 1000;
/** Most characters of any RunError message: a last bound, whatever it quotes. */
export const MESSAGE_CHARS = 4000;

/** Fails a stream. `message` never holds a secret: it is built from redacted parts. */
export class RunError extends Error {
  constructor(
    readonly kind: RunErrorKind,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    // Cutting a redacted message cannot uncover a secret: the parts are masked before they get here.
    super(cut(message, MESSAGE_CHARS));
    this.name = "RunError";
  }
}

/** What a stop (Ctrl-C, SIGTERM, a cancelled queue job) makes whatever was under way fail with. */
export const interrupted = () => new RunError("aborted", "the run was interrupted");

/** `text` cut to `max` characters, saying how much was left out. */
export function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}

/** What `quote` needs of a Redactor. */
export interface TextMasker {
  text(value: string): string;
  /** The length of the longest text it masks (0: none). */
  readonly longest: number;
}

/**
 * Text from outside (a response body, a header value, an API's error message) as a message may
 * quote it: secrets masked FIRST, then whitespace collapsed and the text cut to `max` characters.
 * Masking after cutting would show the beginning of a secret the cut went through, and
 * collapsing first would change a secret that holds two spaces so that it no longer matches.
 * Only the first bytes are decoded, however long the body.
 */
export function quote(value: Buffer | string, masker: TextMasker, max = QUOTE_CHARS): string {
  const margin = masker.longest;
  // Enough for `max` characters once a secret cut at the window's end is dropped (below).
  const window = (max + margin) * 4;
  const longer = value.length > window;
  let text =
    typeof value === "string"
      ? longer
        ? value.slice(0, window)
        : value
      : value.subarray(0, window).toString("utf8");
  text = masker.text(text);
  // The window may end inside a secret, which then was not masked: drop what could be its start.
  if (longer && margin > 0) text = text.slice(0, Math.max(0, text.length - margin));
  // Collapsing whitespace could join the parts of a secret that holds single spaces: mask again.
  text = masker.text(text.replace(/\s+/g, " ").trim());
  return longer || text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The first `n` characters of an internal message (no secrets: a library's own error text). */
export function firstBytes(body: Buffer | string, n = 500): string {
  const text = typeof body === "string" ? body : body.subarray(0, n * 4).toString("utf8");
  const shown = text.length > n ? `${text.slice(0, n)}…` : text;
  return shown.replace(/\s+/g, " ").trim();
}
