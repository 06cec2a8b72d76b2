/** Credentials in the `--from-url` URL: found, masked in messages, never written to the file. */
import { Redactor } from "../../shared/secrets.js";

const SECRET_PARAM =
  /^(api[_-]?key|apikey|key|token|access[_-]?token|auth|secret|client[_-]?secret|password|passwd|sig|signature)$/i;

/** A credential in the URL's query (`?api_key=…`): it goes to `auth` via an env variable, never into the file. */
export function secretParam(url: URL): { name: string; env: string } | null {
  for (const name of url.searchParams.keys()) {
    if (SECRET_PARAM.test(name)) return { name, env: name.toUpperCase().replace(/[^A-Z0-9]+/g, "_") };
  }
  return null;
}

/** Masks the URL's password and credential-looking query value (decoded and as written). */
export function urlSecretsMasker(url: URL, more: string[] = []): Redactor {
  const key = secretParam(url);
  const secrets = [url.password, ...(key ? url.searchParams.getAll(key.name) : []), ...more];
  try {
    secrets.push(decodeURIComponent(url.password));
  } catch {}
  return new Redactor(secrets);
}

/** The URL without user name and password. */
export function displayUrl(url: URL): string {
  const key = secretParam(url);
  if (!url.username && !url.password && !key) return url.toString();
  const copy = new URL(url);
  copy.username = "";
  copy.password = "";
  if (key) copy.searchParams.set(key.name, "__MASKED__");
  return copy.toString().replace("__MASKED__", "***");
}

/** The `--from-url` argument as an http(s) URL, or a usage error that shows neither password nor query. */
export function parseFromUrl(arg: string): URL | null {
  try {
    const url = new URL(arg);
    return /^https?:$/.test(url.protocol) ? url : null;
  } catch {
    return null;
  }
}

/** `--from-url` as shown in an error: neither a password nor a query (which may hold a key). */
export function shownFromUrlArg(arg: string): string {
  return arg.replace(/\/\/[^/?#]*@/, "//***@").replace(/\?.*$/s, "?…");
}
