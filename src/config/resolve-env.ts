import { typesAt } from "./format-schema.js";
import { deepMerge } from "./plain-values.js";
import type { Project } from "./project.js";
import { keepsTemplates } from "./rules/templates.js";
import { parseTemplate, renderTemplateSource } from "./templates.js";
import { urlSecrets } from "./url-secrets.js";
import type { KeyPath } from "./yaml-source.js";

type Env = Record<string, string | undefined>;

/**
 * The file with env values filled in and the project defaults (env filled too) merged under its
 * `source`, `output` and `validation`. `${parent…}` (child requests) and `${stream}` (output.path)
 * stay templates. `secrets`: the env values used, except those used only in plain places — plain
 * URLs as `base_url`/`token_url`/`allowed_hosts` or in `output.path` (a URL with credentials or a
 * query string stays secret), and number or boolean settings.
 */
export function resolveConfig(
  raw: Record<string, unknown>,
  defaults: Project["defaults"],
  env: Env,
): { config: Record<string, unknown>; secrets: Set<string> } {
  const plainUses = new Map<string, boolean>();
  /** Secrets a URL setting makes up: each query value and password an env value lands in. */
  const urlPieces = new Set<string>();
  const streams = raw.streams ?? {};
  const resolveTree = (value: unknown, at: (string | number)[]): unknown => {
    if (typeof value === "string") return typed(fill(value, keepsTemplates(at, streams), at), value, at);
    if (Array.isArray(value)) return value.map((v, i) => resolveTree(v, [...at, i]));
    if (value && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = resolveTree(v, [...at, k]);
      return out;
    }
    return value;
  };
  const fill = (value: string, keepTemplate: boolean, at: KeyPath): string => {
    let parts: ReturnType<typeof parseTemplate>["parts"];
    try {
      parts = parseTemplate(value).parts;
    } catch {
      return value;
    }
    const inUrl = isUrlPlace(at) ? urlSecrets(parts, env) : null;
    for (const piece of inUrl?.pieces ?? []) urlPieces.add(piece);
    const filled = parts.map((p) => {
      if (typeof p === "string" || p.ns !== "env") return p;
      const v = env[p.path[0]];
      if (v === undefined) return "";
      // A number or boolean setting (`concurrency: ${env.N}`) is no secret either: masking "8"
      // would garble every count in the summary.
      const plainPlace =
        (isUrlPlace(at) && !/[@?]/.test(v) && !inUrl?.envValues.has(v)) ||
        typedValue(v, value, at) !== undefined;
      plainUses.set(v, (plainUses.get(v) ?? true) && plainPlace);
      return v;
    });
    if (keepTemplate) return renderTemplateSource(filled);
    return filled.map((p) => (typeof p === "string" ? p : p.raw)).join("");
  };
  const config = resolveTree(raw, []) as Record<string, unknown>;
  // Resolved at the paths they take in the pipeline (`source.base_url`, `output.path`).
  const resolvedDefaults = resolveTree(defaults, []) as Project["defaults"];
  // Only now is every use of an env value known (the file's and the defaults').
  const secrets = new Set([...[...plainUses].flatMap(([v, plain]) => (plain ? [] : [v])), ...urlPieces]);
  for (const section of ["source", "output", "validation"] as const) {
    const d = resolvedDefaults[section];
    if (d) config[section] = deepMerge(d, config[section] ?? {});
  }
  return { config, secrets };
}

/**
 * `concurrency: ${env.N}`: a value that is one env template, where the format wants a number or
 * a boolean and no string, takes the type its text spells (`8`, `0.5`, `true`). Otherwise it
 * stays a string, and the format check names the type it wanted.
 */
function typed(filled: string, written: string, at: KeyPath): unknown {
  return filled === written ? filled : (typedValue(filled, written, at) ?? filled);
}

/**
 * The number or boolean an env value stands for, where the value is written as one env template
 * alone and the format wants a number or a boolean and no string there; else undefined.
 */
function typedValue(value: string, written: string, at: KeyPath): number | boolean | undefined {
  if (!/^\s*\$\{\s*env\.[A-Za-z_][A-Za-z0-9_]*\s*\}\s*$/.test(written)) return undefined;
  const types = typesAt(at);
  if (types.size === 0 || types.has("string")) return undefined;
  const text = value.trim();
  if (types.has("integer") && /^-?\d+$/.test(text)) return Number(text);
  if (types.has("number") && text !== "" && Number.isFinite(Number(text))) return Number(text);
  if (types.has("boolean") && (text === "true" || text === "false")) return text === "true";
  return undefined;
}

const URL_PLACES = ["source.base_url", "source.auth.token_url", "output.path"];
function isUrlPlace(at: KeyPath): boolean {
  const p = at.filter((x) => typeof x === "string").join(".");
  return URL_PLACES.includes(p) || p === "source.allowed_hosts";
}
