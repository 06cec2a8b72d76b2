import type { HttpRequest } from "../client.js";
import type { RequestStats } from "../request-stats.js";

/**
 * Puts credentials on requests to the API's own origin. Every provider knows the secrets it
 * adds, so they can be masked wherever a request is described.
 */
export interface AuthProvider {
  /** Called once before the first request (OAuth2 fetches its token here). */
  start(signal?: AbortSignal): Promise<void>;
  /**
   * The request with credentials added. Only called for the API's origin. A token fetched on the
   * way counts its retries in `stats` (the stream whose request needed it).
   */
  apply(req: HttpRequest, signal?: AbortSignal, stats?: RequestStats): Promise<HttpRequest>;
  /**
   * The request with the credentials held now, or null when they need a refresh first (never
   * fetches): a request that waited long for its budget slot checks its token again. Static
   * credentials never age (no method).
   */
  applyIfFresh?(req: HttpRequest): HttpRequest | null;
  /** After a 401 on `failed`: get new credentials. True when retrying the request makes sense. */
  refresh(signal?: AbortSignal, failed?: HttpRequest, stats?: RequestStats): Promise<boolean>;
  /**
   * Resolves once no credential fetch this provider started is still going (one no caller waits
   * for any more may still be saving a rotated refresh token): the run waits for it before it
   * ends and lets go of its lock. Static credentials fetch nothing (no method).
   */
  settled?(): Promise<void>;
  /** Names of query parameters that carry credentials (masked in URLs). */
  readonly queryNames: string[];
}

export function withQueryParam(url: string, name: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(name, value);
  return u.toString();
}
