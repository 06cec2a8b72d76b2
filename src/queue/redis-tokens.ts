import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { AuthPlan } from "../compile/plan.js";
import type { SharedToken, TokenShare } from "../http/auth/token-share.js";

/** Deletes the lock only while it still holds this process's id. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Extends the lock only while it still holds this process's id. */
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

/** The refresh lock: kept alive while its holder asks the token endpoint; a dead holder frees it. */
const LOCK_MS = 15_000;
/** How long a token stays in Redis when the server gave no lifetime. */
const NO_LIFETIME_MS = 3_600_000;
/** Kept past the token's refresh time, so a worker that wakes late still finds the latest refresh token. */
const GRACE_MS = 600_000;

type OAuth2Plan = Extract<AuthPlan, { type: "oauth2" }>;

/**
 * The OAuth2 token shared by the workers of a pipeline, in Redis: one key holding the access
 * token, its refresh time and the latest refresh token, encrypted (AES-256-GCM) with a key
 * derived from the pipeline's own OAuth2 secrets — which every worker has and Redis never sees —
 * and kept only until the token is due for refresh plus 10 minutes; and a lock for the one
 * process that refreshes. Null when the pipeline has no OAuth2 secret to derive a key from.
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
  private readonly lockKey: string;

  constructor(
    private readonly redis: Redis,
    keyBase: string,
    private readonly key: Buffer,
  ) {
    this.tokenKey = `${keyBase}:token`;
    this.lockKey = `${keyBase}:refresh-lock`;
  }

  async read(): Promise<SharedToken | null> {
    const sealed = await this.redis.get(this.tokenKey);
    if (!sealed) return null;
    try {
      const t = JSON.parse(this.open(sealed)) as SharedToken;
      return typeof t.value === "string" ? t : null;
    } catch {
      return null; // written under other secrets (a changed client secret): fetch a new one
    }
  }

  async write(token: SharedToken): Promise<void> {
    const ttl =
      (token.refreshAt === null ? NO_LIFETIME_MS : Math.max(0, token.refreshAt - Date.now())) + GRACE_MS;
    await this.redis.set(this.tokenKey, this.seal(JSON.stringify(token)), "PX", Math.ceil(ttl));
  }

  async lock(): Promise<{ release(): Promise<void> } | null> {
    const id = randomBytes(12).toString("hex");
    if ((await this.redis.set(this.lockKey, id, "PX", LOCK_MS, "NX")) !== "OK") return null;
    const timer = setInterval(() => {
      this.redis.eval(EXTEND, 1, this.lockKey, id, String(LOCK_MS)).catch(() => {});
    }, LOCK_MS / 3);
    timer.unref();
    return {
      release: async () => {
        clearInterval(timer);
        await this.redis.eval(RELEASE, 1, this.lockKey, id).catch(() => {});
      },
    };
  }

  private seal(text: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const body = Buffer.concat([cipher.update(text, "utf8"), cipher.final()]);
    return [
      "v1",
      iv.toString("base64"),
      cipher.getAuthTag().toString("base64"),
      body.toString("base64"),
    ].join(".");
  }

  private open(sealed: string): string {
    const [v, iv, tag, body] = sealed.split(".");
    if (v !== "v1" || !iv || !tag || body === undefined) throw new Error("not a sealed token");
    const decipher = createDecipheriv("aes-256-gcm", this.key, Buffer.from(iv, "base64"));
    decipher.setAuthTag(Buffer.from(tag, "base64"));
    return Buffer.concat([decipher.update(Buffer.from(body, "base64")), decipher.final()]).toString("utf8");
  }
}
