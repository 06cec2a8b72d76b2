import type { ConfigIssue } from "./errors.js";
import type { TemplatePart } from "./templates.js";
import type { YamlSource } from "./yaml-source.js";

/**
 * What is secret in a URL setting (`base_url`, `token_url`) filled from templates: an env value
 * is, wherever it lands in the user name and password or in the query string (`?key=${env.K}`),
 * and so is each query value and password it makes up, on its own: requests join base_url's
 * query to other paths and parameters, where the whole env value no longer appears.
 * Returns null when the text is not an http(s) URL (the format check reports it).
 */
export function urlSecrets(
  parts: TemplatePart[],
  env: Record<string, string | undefined>,
): { envValues: Set<string>; pieces: string[] } | null {
  let text = "";
  const spans: { from: number; to: number; value: string }[] = [];
  for (const p of parts) {
    if (typeof p === "string") {
      text += p;
      continue;
    }
    const v = p.ns === "env" ? env[p.path[0]] : undefined;
    if (v === undefined) {
      text += p.raw;
      continue;
    }
    spans.push({ from: text.length, to: text.length + v.length, value: v });
    text += v;
  }
  const scheme = /^https?:\/\//i.exec(text);
  if (!scheme) return null;
  try {
    new URL(text);
  } catch {
    return null;
  }
  const authStart = scheme[0].length;
  const rest = text.slice(authStart);
  const authEnd = authStart + (rest.search(/[/?#]/) < 0 ? rest.length : rest.search(/[/?#]/));
  const at = text.lastIndexOf("@", authEnd - 1);
  const queryStart = text.slice(authEnd).search(/[?#]/);
  /** Sensitive parts of the text: [from, to). */
  const ranges: [number, number][] = [];
  const pieces: string[] = [];
  const addPiece = (raw: string) => {
    pieces.push(raw);
    try {
      pieces.push(decodeURIComponent(raw.replace(/\+/g, " ")), decodeURIComponent(raw));
    } catch {}
  };
  if (at >= authStart) {
    ranges.push([authStart, at]);
    const colon = text.indexOf(":", authStart);
    // The password, even written literally: a config error quoting the line must not show it.
    if (colon >= 0 && colon < at) addPiece(text.slice(colon + 1, at));
  }
  if (queryStart >= 0) {
    const q = authEnd + queryStart;
    ranges.push([q, text.length]);
    // Each `name=value` of the query whose text comes (in part) from an env value.
    let from = q + 1;
    for (const pair of text.slice(q + 1).split(/[&#]/)) {
      const to = from + pair.length;
      if (spans.some((s) => s.from < to && s.to > from)) {
        const eq = pair.indexOf("=");
        addPiece(eq >= 0 ? pair.slice(eq + 1) : pair);
      }
      from = to + 1;
    }
  }
  const envValues = new Set<string>();
  for (const s of spans) if (ranges.some(([a, b]) => s.from < b && s.to > a)) envValues.add(s.value);
  return { envValues, pieces: pieces.filter((p) => p !== "") };
}

/**
 * A user name and password in `base_url` or `token_url` (`https://bob:pw@host`) would silently not
 * be sent: refused, pointing at `auth`. The message names neither of them.
 */
export function userinfoIssues(cfg: Record<string, unknown>, src: YamlSource): ConfigIssue[] {
  const source = cfg.source as { base_url?: unknown; auth?: { token_url?: unknown } } | undefined;
  const places: [string[], unknown, string][] = [
    [
      ["source", "base_url"],
      source?.base_url,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: names the template syntax
      'use `auth: { type: basic, username: …, password: "${env.…}" }` instead, and remove them from the URL',
    ],
    [
      ["source", "auth", "token_url"],
      source?.auth?.token_url,
      "give the client's credentials as `client_id` and `client_secret` instead, and remove them from the URL",
    ],
  ];
  const out: ConfigIssue[] = [];
  for (const [at, value, advice] of places) {
    if (typeof value !== "string") continue;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      continue;
    }
    if (!url.username && !url.password) continue;
    out.push(
      src.issue(
        "bad_url",
        at,
        `the URL holds a user name${url.password ? " and password" : ""} (\`…@${url.host}\`): they would not be sent; ${advice}`,
        { expected: "a URL without `user:password@`", found: "credentials in the URL" },
      ),
    );
  }
  return out;
}
