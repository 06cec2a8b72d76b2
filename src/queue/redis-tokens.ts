import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { AuthPlan } from "../compile/plan.js";
import type { SharedToken, TokenShare } from "../http/auth/token-share.js";
import { holdKey } from "./redis-lock.js";

/** The refresh lock: kept alive while its holder asks the token endpoint; a dead holder frees it. */
const LOCK_MS = 15_000;
/** How long an access token stays in Redis when the server gave no lifetime. */
const NO_LIFETIME_MS = 3_600_000;
/**
 * How long the latest refresh token stays after its last rotation: it is the workers' only
 * shared copy (a local run keeps it in the state file), so it must outlive the pauses between runs.
 */
const REFRESH_TTL_MS = 30 * 86_400_000;

type OAuth2Plan = Extract<AuthPlan, { type: "oauth2" }>;

/**
 * The OAuth2 token shared by the workers of a pipeline, in Redis, encrypted (AES-256-GCM) with a
 * key derived from the pipeline's own OAuth2 secrets, which every worker has and Redis never
 * sees: the access token and its refresh time (kept only until it is due for refresh), the
 * latest refresh token (kept 30 days after its last rotation), and a lock for the one process
 * that refreshes. Null when the pipeline has no OAuth2 secret to derive a key from.
 */
export function redisTokenShare(redis: Redis, keyBase: string, plan: AuthPlan): TokenShare | null {
  if (plan.type !== "oauth2") return null;
  const secrets = [plan.clientSecret, plan.refreshToken].filter((s): s is string => Boolean(s));
  if (!secrets.length) return null;
  return new RedisTokenShare(redis, keyBase, keyFor(plan, secrets, keyBase));
}

function keyFor(plan: OAuth2Plan, secrets: string[], keyBase: string): Buffer {
  const material = JSON.stringify([plan.tokenUrl, plan.clientId, ...secrets]);
  return Buffer.from(hkdfSync("sha256", material, keyBase, "pipelines oauth2 token share v1", 32));
}

class RedisTokenShare implements TokenShare {
  private readonly tokenKey: string;
  private readonly refreshKey: string;
  private readonly lockKey: string;

  constructor(
    private readonly redis: Redis,
    keyBase: string,
    private readonly key: Buffer,
  ) {
    this.tokenKey = `${keyBase}:token`;
    this.refreshKey = `${keyBase}:refresh-token`;
    this.lockKey = `${keyBase}:refresh-lock`;
  }

  async read(): Promise<SharedToken | null> {
    const [token, refresh] = await this.redis.mget(this.tokenKey, this.refreshKey);
    const t = token ? this.open(token) : null;
    const rt = refresh ? this.open(refresh) : null;
    const ok = t !== null && typeof t === "object" && "value" in t && typeof t.value === "string";
    if (!ok && typeof rt !== "string") return null;
    return {
      value: ok ? (t.value as string) : null,
      refreshAt: ok && "refreshAt" in t && typeof t.refreshAt === "number" ? t.refreshAt : null,
      refreshToken: typeof rt === "string" ? rt : null,
    };
  }

  async write(token: SharedToken): Promise<void> {
    const ttl = token.refreshAt === null ? NO_LIFETIME_MS : Math.ceil(token.refreshAt - Date.now());
    const tx = this.redis.multi();
    if (token.value !== null && ttl > 0)
      tx.set(this.tokenKey, this.seal({ value: token.value, refreshAt: token.refreshAt }), "PX", ttl);
    if (token.refreshToken) tx.set(this.refreshKey, this.seal(token.refreshToken), "PX", REFRESH_TTL_MS);
    await tx.exec();
  }

  lock(): Promise<{ release(): Promise<void> } | null> {
    return holdKey(this.redis, this.lockKey, randomBytes(12).toString("hex"), LOCK_MS);
  }

  private seal(value: unknown): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(value), "utf8"), cipher.final()]);
    return ["v1", iv, cipher.getAuthTag(), body]
      .map((p) => (typeof p === "string" ? p : p.toString("base64")))
      .join(".");
  }

  /** The sealed value, or null when it was sealed under other secrets (a changed client secret). */
  private open(sealed: string): unknown {
    const [v, iv, tag, body] = sealed.split(".");
    if (v !== "v1" || !iv || !tag || body === undefined) return null;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, Buffer.from(iv, "base64"));
      decipher.setAuthTag(Buffer.from(tag, "base64"));
      const text = Buffer.concat([decipher.update(Buffer.from(body, "base64")), decipher.final()]);
      return JSON.parse(text.toString("utf8"));
    } catch {
      return null;
    }
  }
}

/**
 * Hands a refresh token the saved state holds (a state file from before the project had a
 * queue) to the share, unless the share already has one (it is then the latest): the workers of
 * a `run --queue` never read the state, and would otherwise start from the configured token,
 * revoked by the rotations since.
 */
export async function seedTokenShare(share: TokenShare | null, saved: string | undefined): Promise<void> {
  if (!share || !saved) return;
  const current = await share.read();
  if (current?.refreshToken) return;
  await share.write({ value: null, refreshAt: null, refreshToken: saved });
}
