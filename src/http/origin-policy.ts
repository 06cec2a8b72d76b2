import { RunError } from "../shared/errors.js";

/** Where requests of a pipeline may go: base_url's origin, and the origins of `allowed_hosts`. */
export interface OriginPolicy {
  origin: string;
  allowedOrigins: readonly string[];
}

/** A request about to leave for `url`, found by following a redirect or a pagination link. */
export interface Move {
  /** How the request got there, to start the error message: `pagination leads to`, `GET … redirects (307) to`. */
  how: string;
  /** "redirect" or "pagination link": named in the advice. */
  via: string;
  url: string;
  /** The body it would carry (a POST); undefined when none. */
  body?: string;
  /** Masks secrets; a text it changes holds one. */
  mask: (text: string) => string;
  /** The URL as it may be shown (secrets masked, cut). */
  showUrl: (url: string) => string;
  /** Added to the error's details. */
  details?: Record<string, unknown>;
}

/**
 * The one origin rule, for redirects (executor.ts) and pagination links (run-stream.ts) alike:
 * base_url's origin gets the request as it is (credentials are added there); an origin of
 * `allowed_hosts` gets it without credentials, and never a URL or a body that holds a secret
 * (a POST body with `${env.…}` in it, a link that echoes the API key); any other origin nothing.
 * Returns whether the URL is on base_url's origin; throws a `cross_origin` RunError otherwise.
 */
export function checkMove(policy: OriginPolicy, move: Move): boolean {
  const origin = new URL(move.url).origin;
  if (origin === policy.origin) return true;
  const details = { origin, ...move.details };
  if (!policy.allowedOrigins.includes(origin)) {
    throw new RunError(
      "cross_origin",
      `${move.how} ${origin}, another origin than base_url (${policy.origin}); it is not in source.allowed_hosts (${policy.allowedOrigins.length ? policy.allowedOrigins.join(", ") : "none"}). Add it there to follow such a ${move.via} (credentials are never sent to other origins). URL: ${move.showUrl(move.url)}`,
      details,
    );
  }
  if (urlHoldsSecret(move.url, move.mask)) {
    throw new RunError(
      "cross_origin",
      `${move.how} ${origin} with a URL that holds a credential (${move.showUrl(move.url)}); credentials are never sent to another origin, even one of allowed_hosts`,
      details,
    );
  }
  if (move.body !== undefined && move.mask(move.body) !== move.body) {
    throw new RunError(
      "cross_origin",
      `${move.how} ${origin} with its body, which holds a credential; it is not sent to another origin, even one of allowed_hosts (URL: ${move.showUrl(move.url)})`,
      details,
    );
  }
  return false;
}

/**
 * Whether a URL holds a secret, however it is percent-encoded: an API writing a link may encode a
 * secret its own way (`/` kept, lower-case escapes) that no encoded form the masker knows matches.
 */
function urlHoldsSecret(url: string, mask: (text: string) => string): boolean {
  if (mask(url) !== url) return true;
  let decoded = url;
  try {
    decoded = decodeURIComponent(url);
  } catch {}
  if (mask(decoded) !== decoded) return true;
  for (const [n, v] of new URL(url).searchParams) if (mask(n) !== n || mask(v) !== v) return true;
  return false;
}
