import { formatKeyPath, type KeyPath } from "../yaml-source.js";

/** Settings that need a value: a URL, a credential. An env variable set to "" there is an error. */
const NEEDS_VALUE = new Set([
  "source.base_url",
  "source.auth.token_url",
  "source.auth.token",
  "source.auth.value",
  "source.auth.username",
  "source.auth.password",
  "source.auth.client_id",
  "source.auth.client_secret",
  "source.auth.refresh_token",
]);

/** The message for `${env.NAME}` set to the empty string at `at`, or null where "" is a value. */
export function emptyEnvProblem(name: string, value: string | undefined, at: KeyPath): string | null {
  if (value !== "") return null;
  const key = formatKeyPath(at);
  if (!NEEDS_VALUE.has(key)) return null;
  return `environment variable \`${name}\` is set to the empty string; \`${key}\` needs a value`;
}
