import { basicCredential, databaseUrlSecrets, SENSITIVE_HEADERS } from "../shared/secrets.js";
import { isMap } from "./plain-values.js";

/** Auth keys that name or configure a credential rather than hold one. */
const AUTH_PUBLIC_KEYS = new Set([
  "type",
  "in",
  "client_auth",
  "token_url",
  "scheme",
  "name",
  "grant_type",
  "refresh_before",
  "scope",
]);

/**
 * Every credential value a config holds: auth fields (and the Basic credentials they make) and
 * sensitive headers (with the token after the scheme). With `literalOnly`, values still written
 * as templates are skipped (a config that failed before its templates were filled). The config
 * may not have the format's shape (a file that failed its checks).
 */
export function credentialValues(cfg: unknown, out: Set<string>, literalOnly: boolean): void {
  const keep = (v: unknown): v is string => typeof v === "string" && !(literalOnly && v.includes("${"));
  const source = isMap(cfg) && isMap(cfg.source) ? cfg.source : {};
  const auth = source.auth;
  if (auth && typeof auth === "object") {
    for (const [k, v] of Object.entries(auth)) if (!AUTH_PUBLIC_KEYS.has(k) && keep(v)) out.add(v);
    const a: Record<string, unknown> = isMap(auth) ? auth : {};
    if (a.type === "basic" && keep(a.username) && (a.password === undefined || keep(a.password)))
      out.add(basicCredential(a.username, typeof a.password === "string" ? a.password : ""));
    if (a.type === "oauth2" && keep(a.client_id) && keep(a.client_secret))
      out.add(basicCredential(a.client_id, a.client_secret));
  }
  const output = isMap(cfg) && isMap(cfg.output) ? cfg.output : {};
  if (keep(output.url)) for (const v of databaseUrlSecrets(output.url)) out.add(v);
  const streams =
    isMap(cfg) && cfg.streams && typeof cfg.streams === "object" ? Object.values(cfg.streams) : [];
  const maps = [source.headers, ...streams.map((s) => (isMap(s) ? s.headers : undefined))];
  for (const h of maps) {
    if (!h || typeof h !== "object") continue;
    for (const [k, v] of Object.entries(h)) {
      if (!SENSITIVE_HEADERS.has(k.toLowerCase()) || !keep(v)) continue;
      out.add(v);
      const token = v.split(/\s+/).slice(1).join(" ");
      if (token) out.add(token);
    }
  }
}
