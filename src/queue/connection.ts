import { Redis } from "ioredis";
import type { Project } from "../config/project.js";
import { databaseUrlSecrets, Redactor } from "../shared/secrets.js";

/** A project's queue, resolved: the Redis URL (a secret), the key prefix, and a redactor for both. */
export interface QueueConfig {
  url: string;
  prefix: string;
  redactor: Redactor;
}

export class QueueConfigError extends Error {}

const ENV = /^\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}$/;

/** `queue.redis` with `${env.NAME}` filled from the environment (`.env` included); null without `queue`. */
export function queueConfig(project: Project, env: Record<string, string | undefined>): QueueConfig | null {
  if (!project.queue) return null;
  const written = project.queue.redis;
  const m = ENV.exec(written);
  const url = m ? env[m[1]] : written;
  if (!url) throw new QueueConfigError(`queue.redis: the environment variable ${m?.[1]} is not set`);
  const redactor = new Redactor(databaseUrlSecrets(url));
  if (!/^rediss?:\/\//.test(url))
    throw new QueueConfigError(
      `queue.redis: expected a redis:// or rediss:// URL, found ${redactor.text(url)}`,
    );
  try {
    // ioredis decodes the user info itself, and throws a URIError (an internal error) on a `%`
    // that starts no escape.
    const u = new URL(url);
    decodeURIComponent(u.username);
    decodeURIComponent(u.password);
  } catch {
    throw new QueueConfigError(
      `queue.redis: ${redactor.text(url)} is not a valid URL (a \`%\` in the user name or password is written \`%25\`)`,
    );
  }
  return { url, prefix: project.queue.prefix ?? "pipelines", redactor };
}

/**
 * A Redis connection as BullMQ wants it (commands wait for a reconnect instead of failing);
 * with `commandTimeoutMs`, a command fails after that long instead (locks and state: a run
 * never waits forever on a lost Redis).
 */
export function connect(cfg: QueueConfig, opts: { commandTimeoutMs?: number } = {}): Redis {
  return new Redis(cfg.url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    commandTimeout: opts.commandTimeoutMs,
  });
}

/** How long a run waits for a lost Redis (`PIPELINES_QUEUE_LOST_MS`, default 15 s). */
export function lostAfterMs(): number {
  const n = Number(process.env.PIPELINES_QUEUE_LOST_MS);
  return Number.isInteger(n) && n > 0 ? n : 15_000;
}

/** Where the URL is shown: host and port only. */
export function shownRedis(cfg: QueueConfig): string {
  try {
    const u = new URL(cfg.url);
    return `redis at ${u.hostname}:${u.port || 6379}`;
  } catch {
    return "redis";
  }
}

/**
 * Checks that Redis answers before anything is sent to the API; a clear, redacted message when
 * it does not (within `timeoutMs`).
 */
export async function checkReachable(cfg: QueueConfig, timeoutMs = 3000): Promise<void> {
  const client = new Redis(cfg.url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // Redis's own answer (a wrong user or password: WRONGPASS) comes as an error event; the
  // connect then only says "Connection is closed."
  let answer: Error | null = null;
  client.on("error", (err: Error) => {
    if (err.name === "ReplyError") answer ??= err;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    const e = answer ?? (err as Error);
    const what = e.name === "ReplyError" ? "refused the connection" : "is unreachable";
    throw new QueueConfigError(
      `the queue's ${shownRedis(cfg)} ${what}: ${cfg.redactor.text(e.message.replace(/\.$/, ""))}. Nothing was sent`,
    );
  } finally {
    client.disconnect();
  }
}
