import path from "node:path";

/**
 * Keys whose values are times, durations, run ids or waits of the rate budget (how often a
 * request waited for its turn depends on timing): they differ between any two runs.
 */
const VARYING =
  /(^|_)(at|ms|seconds|duration|elapsed|started|ended|finished|run_id)$|^(time|timings|rate_limit_waits|rateLimitWaits)$/;

/**
 * A summary or report with times, durations, run ids and budget waits taken out, and each of
 * `places` (the project folder, the database: the two runs use two of each) written as `<here>`.
 */
export function comparable(v: unknown, ...places: string[]): unknown {
  if (typeof v === "string") return places.reduce((s, p) => (p ? s.split(p).join("<here>") : s), v);
  if (Array.isArray(v)) return v.map((x) => comparable(x, ...places));
  if (v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (!VARYING.test(k)) out[k] = comparable(x, ...places);
  return out;
}

/**
 * A saved state without its times; committed file lengths are keyed by the output's absolute
 * path, shown here relative to the project that wrote them.
 */
export function comparableState(text: string, root: string): unknown {
  const s = JSON.parse(text) as { streams?: Record<string, Record<string, unknown>> };
  return Object.fromEntries(
    Object.entries(s.streams ?? {}).map(([name, st]) => {
      const { updated_at: _, files, ...rest } = st;
      const rel = Object.entries((files ?? {}) as Record<string, number>).map(([f, n]) => [
        path.relative(root, f),
        n,
      ]);
      return [name, { ...rest, files: Object.fromEntries(rel) }];
    }),
  );
}
