import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { RateLimitPlan } from "../compile/plan.js";
import { leaveAtAbort, type RequestBudget, SEND_MARGIN_MS } from "../http/rate-budget.js";
import { sleep } from "../shared/sleep.js";

/** How often a worker asks again while a window is full of slots whose requests are not yet sent. */
const POLL_MS = 10;
/**
 * How long a slot counts as "not yet sent" at most, beyond the request's own timeout (which ends
 * a request that never reached its socket): a margin for a stalled event loop.
 */
const LEASE_MARGIN_MS = 10_000;

/**
 * Takes a slot in every window at once, or says how long to wait. KEYS: the pause key, then one
 * sorted set per window (member: a request, score: when it counts from, Redis's clock).
 * ARGV: member, the lease (ms), then limit and length (ms) of each window. Returns [wait ms, now ms].
 * A slot taken counts from the future (now + lease) until DONE: a request not yet sent holds its
 * window whenever it goes out. A window full of such slots says "wait POLL ms" (it frees when one
 * is sent, which Redis does not announce); the lease only ends the slots of a worker that died
 * before it sent them (or a DONE lost with the connection).
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local wait = 0
local pause = tonumber(redis.call('GET', KEYS[1]) or '0')
if pause > now then wait = pause - now end
for i = 2, #KEYS do
  local limit = tonumber(ARGV[(i - 2) * 2 + 3])
  local ms = tonumber(ARGV[(i - 2) * 2 + 4])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - ms)
  if redis.call('ZCARD', KEYS[i]) >= limit then
    local oldest = tonumber(redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')[2])
    local w = ${POLL_MS}
    if oldest <= now + ${SEND_MARGIN_MS} then w = oldest + ms - now end
    if w > wait then wait = w end
  end
end
if wait > 0 then return {wait, now} end
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[(i - 2) * 2 + 4]) * 2 + lease + 1000)
end
return {0, now}
`;

/**
 * The request was written on the socket (or failed before): its slot counts from now, Redis's
 * clock, which is after the write, plus the margin (SEND_MARGIN_MS, for the way to the API). The
 * API counts a request when it arrives, after the write; whatever delayed it before (a new
 * connection's handshake, a stalled event loop) kept its slot counting until then. The slot is
 * added again if its lease had ended, and the window's key kept at least two windows (a key that
 * had expired meanwhile is not left without an expiry). ARGV: member, then each window's length.
 */
const DONE = `
local t = redis.call('TIME')
local at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + ${SEND_MARGIN_MS}
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], at, ARGV[1])
  local keep = tonumber(ARGV[i + 1]) * 2 + 1000
  if redis.call('PTTL', KEYS[i]) < keep then redis.call('PEXPIRE', KEYS[i], keep) end
end
return at
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
 * callers are served in order. As in the local budget (rate-budget.ts), a slot counts from the
 * moment its request is written on the socket: `done()` is HttpClient.send's `onSent`.
 */
export class RedisRateBudget implements RequestBudget {
  private readonly windows: { limit: number; ms: number }[] = [];
  private readonly keys: string[];
  /** TAKE's arguments after the member: the lease, limit and length of each window (fixed at start). */
  private readonly windowArgs: string[];
  /** DONE's arguments after the member: the length of each window. */
  private readonly windowMs: string[];
  private readonly pauseKey: string;
  private queue: Promise<unknown> = Promise.resolve();

  /** `timeoutMs`: the requests' timeout (source.timeout), the longest a slot waits for its send. */
  constructor(redis: Redis, keyBase: string, plan: RateLimitPlan | null, timeoutMs: number) {
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
    this.windowArgs = [
      String(timeoutMs + LEASE_MARGIN_MS),
      ...this.windows.flatMap((w) => [String(w.limit), String(w.ms)]),
    ];
    this.windowMs = this.windows.map((w) => String(w.ms));
    this.take1 = script(redis, "pipelinesBudgetTake", TAKE);
    this.done1 = script(redis, "pipelinesBudgetDone", DONE);
    this.pause1 = script(redis, "pipelinesBudgetPause", PAUSE);
  }

  /** The three scripts as commands of the connection (defined once, at the start). */
  private readonly take1: LuaCommand;
  private readonly done1: LuaCommand;
  private readonly pause1: LuaCommand;

  begin(signal?: AbortSignal): Promise<{ waited: number; done: () => void }> {
    const turn = this.queue.then(() => this.take(signal));
    this.queue = turn.catch(() => undefined);
    return leaveAtAbort(turn, signal);
  }

  private async take(signal?: AbortSignal): Promise<{ waited: number; done: () => void }> {
    signal?.throwIfAborted(); // its caller left the line: no slot
    // A request's name in the windows' sets (none to name without windows: only the pause is read).
    const member = this.keys.length ? randomBytes(8).toString("hex") : "";
    const args = [member, ...this.windowArgs];
    let waited = 0;
    for (;;) {
      const [wait] = (await this.take1(1 + this.keys.length, this.pauseKey, ...this.keys, ...args)) as [
        number,
        number,
      ];
      if (wait <= 0) break;
      const before = Date.now();
      await sleep(wait, signal);
      waited += Date.now() - before; // as long as it took (a timer fires late)
    }
    let stamped = !this.keys.length;
    // Sent on the socket (HttpClient.send's onSent) or failed before: later calls change nothing.
    const done = () => {
      if (stamped) return;
      stamped = true;
      this.done1(this.keys.length, ...this.keys, member, ...this.windowMs).catch(() => {});
    };
    return { waited, done };
  }

  pauseUntil(untilMs: number): void {
    const ms = Math.ceil(untilMs - Date.now());
    if (ms > 0) this.pause1(1, this.pauseKey, String(ms)).catch(() => {});
  }
}

type LuaCommand = (...args: (string | number)[]) => Promise<unknown>;

/**
 * A Lua script as a command of the connection: sent once, then called by its SHA1 (EVALSHA),
 * not its whole text on every request.
 */
function script(redis: Redis, name: string, lua: string): LuaCommand {
  const commands = redis as unknown as Record<string, LuaCommand>;
  if (!commands[name]) redis.defineCommand(name, { lua });
  return (...args) => commands[name](...args);
}
