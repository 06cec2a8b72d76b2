/** An OAuth2 token as every process of a queue run shares it (src/queue/redis-tokens.ts). */
export interface SharedToken {
  /** The access token, or null (none yet, or past its refresh time: only a refresh token is left). */
  value: string | null;
  /** Epoch ms after which it should not be used, or null when the server gave no lifetime. */
  refreshAt: number | null;
  /** The refresh token to use next (the latest rotated one), or null. */
  refreshToken: string | null;
}

/**
 * Where the processes of a queue run share one OAuth2 token: single-flight refreshes across
 * processes (one takes the lock and asks the token endpoint, the others wait and take its token),
 * so a rotated refresh token is never used twice.
 */
export interface TokenShare {
  /** The token in use, or null (none yet, expired, or unreadable). */
  read(): Promise<SharedToken | null>;
  /** The refresh lock, or null when another process holds it. */
  lock(): Promise<{ release(): Promise<void> } | null>;
  write(token: SharedToken): Promise<void>;
}
