import { ConfigError } from "../config/errors.js";
import { type LoadedPipeline, loadPipeline, readEnv } from "../config/load-pipeline.js";
import type { Project } from "../config/project.js";
import type { CliIO } from "./io.js";

/** What an unset variable is shown as in a plan. */
export const UNSET = "<unset>";
/** Stand-ins while loading: plain text, and a URL where a URL setting starts with the variable. */
const TEXT = "zzunsetzz";
const URL_START = "https://zzunsetzz.invalid";
const URL_PLACES = /^source\.(base_url|auth\.token_url)$/;

/**
 * `plan` needs no secret, so it runs with variables unset: they load as stand-ins, shown as
 * `<unset>`. Any other config error is reported as usual (the first load's, with every issue).
 */
export function loadForPlan(
  io: CliIO,
  project: Project,
  name: string,
): { loaded: LoadedPipeline; unset: string[] } {
  const env = readEnv(project, io.env);
  try {
    return { loaded: loadPipeline(project, name, env), unset: [] };
  } catch (err) {
    if (!(err instanceof ConfigError) || !err.issues.every((i) => i.code === "missing_env")) throw err;
    const filled: Record<string, string> = {};
    for (const issue of err.issues) {
      const v = /environment variable `([A-Za-z_][A-Za-z0-9_]*)`/.exec(issue.message)?.[1];
      if (!v) throw err;
      if (URL_PLACES.test(issue.path)) filled[v] = URL_START;
      else filled[v] ??= TEXT;
    }
    try {
      return {
        loaded: loadPipeline(project, name, { ...env, ...filled }),
        unset: Object.keys(filled).sort(),
      };
    } catch {
      throw err;
    }
  }
}

/** The plan with every stand-in shown as `<unset>` (before secrets are masked: it is none). */
export function showUnset<T>(value: T): T {
  const swap = (s: string) => s.replaceAll(URL_START, UNSET).replaceAll(TEXT, UNSET);
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return swap(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object")
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [swap(k), walk(x)]));
    return v;
  };
  return walk(value) as T;
}
