import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { RateLimitPlan } from "../compile/plan.js";
import type { RequestBudget } from "../http/rate-budget.js";
import { sleep } from "../shared/sleep.js";

/**
 * Takes a slot in every window at once, or says how long to wait. KEYS: the pause key, then one
 * sorted set per window (member: a request, score: when it counts, Redis's clock).
 * ARGV: member, then limit and length (ms) of each window. Returns [wait ms, now ms].
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local pause = tonumber(redis.call('GET', KEYS[1]) or '0')
if pause > now then wait = pause - now end
for i = 2, #KEYS do
  local limit = tonumber(ARGV[(i - 2) * 2 + 2])
  local ms = tonumber(ARGV[(i - 2) * 2 + 3])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - ms)
  if redis.call('ZCARD', KEYS[i]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local w = tonumber(oldest[2]) + ms - now
    if w > wait then wait = w end
  end
end
if wait > 0 then return {wait, now} end
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[(i - 2) * 2 + 3]) * 2 + 1000)
end
return {0, now}
`;

/**
 * The response is in: the slot counts from now (Redis's clock). The API counts a request when it
 * arrives, which is known only to be before its response: a new connection's handshake, a
 * token refresh, a stalled event loop or a slow reply can delay it by any time after the slot.
 * Counting from the response (as the local budget does) keeps "never more than the limit in any
 * window at the API" true whatever the delay, at a price: a slot is held for the API's response
 * time too (with 100 ms responses and a per-second limit, about 10% of the rate).
 * ARGV: member.
 */
const DONE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do redis.call('ZADD', KEYS[i], 'XX', 'GT', now, ARGV[1]) end
return now
`;

/** Pauses every worker of the pipeline for ARGV[1] ms from Redis's now (never shortens a pause). */
const PAUSE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untilMs = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if untilMs > cur then redis.call('SET', KEYS[1], untilMs, 'PX', tonumber(ARGV[1]) + 1000) end
return untilMs
`;

/**
 * `source.rate_limit` held across every worker of a pipeline: sliding windows kept in Redis
 * (one sorted set per window, updated atomically by a Lua script on Redis's clock), and pauses
 * the API asks for (`remaining_header` at 0, Retry-After) shared by all. Within one process,
 * callers are served in order.
 */
export class RedisRateBudget implements RequestBudget {
  private readonly windows: { limit: number; ms: number }[] = [];
  private readonly keys: string[];
  /** TAKE's arguments after the member: limit and length of each window (fixed at start). */
  private readonly windowArgs: string[];
  private readonly pauseKey: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly redis: Redis,
    keyBase: string,
    plan: RateLimitPlan | null,
  ) {
    const add = (rate: number | null, unitMs: number) => {
      if (!rate) return;
      const limit = Math.max(1, Math.floor(rate));
      this.windows.push({ limit, ms: Math.ceil((limit / rate) * unitMs) });
    };
    if (plan) {
      add(plan.perSecond, 1000);
      add(plan.perMinute, 60_000);
      add(plan.perHour, 3_600_000);
      add(plan.perDay, 86_400_000);
    }
    this.pauseKey = `${keyBase}:pause`;
    this.keys = this.windows.map((w, i) => `${keyBase}:w${i}:${w.limit}/${w.ms}`);
    this.windowArgs = this.windows.flatMap((w) => [String(w.limit), String(w.ms)]);
  }

  begin(signal?: AbortSignal): Promise<{ waited: number; done: () => void }> {
    const turn = this.queue.then(() => this.take(signal));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async take(signal?: AbortSignal): Promise<{ waited: number; done: () => void }> {
    const member = randomBytes(8).toString("hex");
    const args = [member, ...this.windowArgs];
    let waited = 0;
    for (;;) {
      const [wait] = (await this.script("pipelinesBudgetTake", TAKE)(
        1 + this.keys.length,
        this.pauseKey,
        ...this.keys,
        ...args,
      )) as [number, number];
      if (wait <= 0) break;
      await sleep(wait, signal);
      waited += wait;
    }
    const done = () => {
      if (!this.keys.length) return;
      this.script("pipelinesBudgetDone", DONE)(this.keys.length, ...this.keys, member).catch(() => {});
    };
    return { waited, done };
  }

  pauseUntil(untilMs: number): void {
    const ms = Math.ceil(untilMs - Date.now());
    if (ms > 0) this.script("pipelinesBudgetPause", PAUSE)(1, this.pauseKey, String(ms)).catch(() => {});
  }

  /**
   * A Lua script as a command of the connection: sent once, then called by its SHA1 (EVALSHA),
   * not its whole text on every request.
   */
  private script(name: string, lua: string): (...args: (string | number)[]) => Promise<unknown> {
    const commands = this.redis as unknown as Record<
      string,
      (...args: (string | number)[]) => Promise<unknown>
    >;
    if (!commands[name]) this.redis.defineCommand(name, { lua });
    return (...args) => commands[name](...args);
  }
}
