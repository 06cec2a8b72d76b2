import { DEFAULTS } from "../config/defaults.gen.js";
import type { Source } from "../config/pipeline-types.gen.js";
import { parseDuration, parseSize } from "../shared/units.js";
import type { ParamsPlan, RateLimitPlan, RetryPlan, SourcePlan } from "./plan.js";

export function compileSource(source: Source): SourcePlan {
  const base = new URL(source.base_url);
  return {
    baseUrl: source.base_url,
    origin: base.origin,
    // Case-insensitive: project defaults' `Accept` and the file's `accept` are one header.
    headers: mergeHeaders(source.headers),
    params: compileParams(source.params),
    timeoutMs: parseDuration(source.timeout ?? DEFAULTS.source.timeout),
    retry: compileRetry(source.retry),
    rateLimit: compileRateLimit(source.rate_limit),
    concurrency: source.concurrency ?? DEFAULTS.source.concurrency,
    workers: source.workers ?? DEFAULTS.source.workers,
    allowedOrigins: (source.allowed_hosts ?? []).map(toOrigin),
    maxResponseBytes: parseSize(source.max_response_size ?? DEFAULTS.source.max_response_size),
    maxStreamedBytes: source.max_response_size === undefined ? null : parseSize(source.max_response_size),
  };
}

function compileRetry(retry: Source["retry"]): RetryPlan {
  return {
    maxAttempts: retry?.max_attempts ?? DEFAULTS.retry.max_attempts,
    initialDelayMs: parseDuration(retry?.initial_delay ?? DEFAULTS.retry.initial_delay),
    maxDelayMs: parseDuration(retry?.max_delay ?? DEFAULTS.retry.max_delay),
    onStatus: retry?.on_status ?? [...DEFAULTS.retry.on_status],
  };
}

function compileRateLimit(rl: Source["rate_limit"]): RateLimitPlan | null {
  if (!rl || Object.keys(rl).length === 0) return null;
  return {
    perSecond: rl.requests_per_second ?? null,
    perMinute: rl.requests_per_minute ?? null,
    perHour: rl.requests_per_hour ?? null,
    perDay: rl.requests_per_day ?? null,
    remainingHeader: rl.remaining_header?.toLowerCase() ?? null,
    resetHeader: rl.reset_header?.toLowerCase() ?? null,
  };
}

/** `cdn.example.com` → `https://cdn.example.com`; a URL → its origin. */
export function toOrigin(host: string): string {
  return new URL(host.includes("://") ? host : `https://${host}`).origin;
}

export function compileParams(params: Record<string, unknown> | undefined): ParamsPlan {
  const out: ParamsPlan = {};
  for (const [k, v] of Object.entries(params ?? {})) out[k] = Array.isArray(v) ? v.map(String) : String(v);
  return out;
}

/**
 * Header maps merged case-insensitively: a later map's `accept` replaces an earlier `Accept`.
 * Values become strings (`X-Api-Version: 2` is a number in YAML).
 */
export function mergeHeaders(
  ...maps: (Record<string, string | number | boolean> | undefined)[]
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of maps) {
    if (!m) continue;
    for (const [k, v] of Object.entries(m)) {
      for (const existing of Object.keys(out))
        if (existing.toLowerCase() === k.toLowerCase()) delete out[existing];
      out[k] = String(v);
    }
  }
  return out;
}
