const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `30s`, `2m`, `1h`, `1d`, or a number of seconds → milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) throw new Error(`not a duration: ${value}`);
    return Math.round(value * 1000);
  }
  const m = DURATION.exec(value);
  if (!m) throw new Error(`not a duration: ${value}`);
  return Math.round(Number(m[1]) * DURATION_MS[m[2] ?? "s"]);
}

const SIZE = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$/;
const SIZE_BYTES: Record<string, number> = {
  B: 1,
  KB: 1000,
  KiB: 1024,
  MB: 1000 ** 2,
  MiB: 1024 ** 2,
  GB: 1000 ** 3,
  GiB: 1024 ** 3,
};

/** `512KiB`, `64MiB`, `1GB`, or a number of bytes → bytes. */
export function parseSize(value: string | number): number {
  if (typeof value === "number") return Math.floor(value);
  const m = SIZE.exec(value);
  if (!m) throw new Error(`not a size: ${value}`);
  return Math.floor(Number(m[1]) * SIZE_BYTES[m[2] ?? "B"]);
}

/**
 * A duration for people, the one formatter of the CLI and the report: `850ms`, `1.20s`, `12.3s`,
 * `2m05s`, `1h02m`, or in `words` (the HTML report) `850 ms`, `12.3 s`, `2 min 5 s`, `1 h 2 min`.
 * Values from an API can be anything: infinite is `forever` (a `Retry-After` of 1e400 seconds),
 * not a number is `unknown`, a negative one is 0.
 */
export function formatDuration(ms: number, style: "compact" | "words" = "compact"): string {
  if (Number.isNaN(ms)) return "unknown";
  if (ms === Number.POSITIVE_INFINITY) return "forever";
  const words = style === "words";
  if (ms < 1000) {
    const n = Math.max(0, Math.round(ms));
    return words ? `${n} ms` : `${n}ms`;
  }
  if (ms < 60_000)
    return words ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  const seconds = Math.round(ms / 1000);
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  if (m < 60) return words ? `${m} min ${s} s` : `${m}m${String(s).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return words ? `${h} h ${m % 60} min` : `${h}h${String(m % 60).padStart(2, "0")}m`;
}

/** A window step as written: `7d`, `12h`, `30m`, `45s` (else milliseconds). */
export function stepText(ms: number): string {
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const)
    if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
