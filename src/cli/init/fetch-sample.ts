/** The one request `pipelines init --from-url` makes: a 2xx JSON body, or a CLI error saying what to do. */
import { HttpClient } from "../../http/client.js";
import { quote, TransportError } from "../../shared/errors.js";
import { stripBom } from "../../shared/json-text.js";
import { CliError, EXIT } from "../io.js";
import type { InitCredentials } from "./credentials.js";
import { displayUrl, urlSecretsMasker } from "./url-secrets.js";

export interface Sample {
  body: unknown;
  headers: Record<string, string>;
}

export async function fetchSample(
  url: URL,
  creds: InitCredentials,
  signal: AbortSignal | undefined,
): Promise<Sample> {
  // The API may quote the key or password back (an error body): masked wherever it is shown.
  const masker = urlSecretsMasker(url, creds.secrets);
  // Credentials in the URL are neither shown nor written to the file.
  const shown = displayUrl(url);
  const client = new HttpClient({
    timeoutMs: 30_000,
    maxResponseBytes: 64 * 1024 * 1024,
    connections: 1,
    userAgent: "pipelines-init",
  });
  try {
    const res = await client.send({ method: "GET", url: url.toString(), headers: creds.send }, signal);
    if (res.status < 200 || res.status >= 300) {
      throw new CliError(
        `GET ${shown} answered ${res.status}: ${quote(res.body, masker, 200) || "(empty body)"}\n${statusAdvice(res.status, res.headers.location, url)}`,
        EXIT.runFailed,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(stripBom(res.body.toString("utf8")));
    } catch {
      throw new CliError(
        `GET ${shown} answered ${res.status} with a body that is not JSON (content-type ${quote(res.headers["content-type"] ?? "not given", masker, 100)}): ${quote(res.body, masker, 200) || "(empty body)"}\ninit needs a JSON response: check the URL (an HTML page often means a login, proxy or maintenance page)`,
        EXIT.runFailed,
      );
    }
    const apiError = okFalseError(body);
    if (apiError !== null)
      throw new CliError(
        `GET ${shown} answered ${res.status} with an error in the body: ${quote(apiError, masker, 200)}\ninit needs one successful response; if the API needs credentials, write the file without --from-url and add \`source.auth\``,
        EXIT.runFailed,
      );
    return { body, headers: res.headers };
  } catch (err) {
    if (err instanceof TransportError)
      throw new CliError(`GET ${shown} failed: ${quote(err.message, masker)}`, EXIT.runFailed);
    throw err;
  } finally {
    await client.close();
  }
}

/** The message of a Slack-style `{ ok: false, error }` body, else null. */
function okFalseError(body: unknown): string | null {
  if (!body || typeof body !== "object" || Array.isArray(body)) return null;
  const b = body as { ok?: unknown; error?: unknown };
  if (b.ok !== false) return null;
  return typeof b.error === "string" ? b.error : JSON.stringify(b.error ?? "ok: false");
}

/** What to do about a status that is not 2xx. */
function statusAdvice(status: number, location: string | undefined, url: URL): string {
  if (status >= 300 && status < 400 && location)
    return `it redirects to ${displayUrl(new URL(location, url))}: use that URL`;
  if (status === 401 || status === 403)
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the pipeline file's template syntax
    return "the API needs credentials: give them with --bearer-env VAR or --header 'Name: ${env.VAR}' (they are sent, and the file reads them from the environment)";
  if (status === 404 || status === 410) return "no such resource: check the URL";
  if (status === 429 || status >= 500) return "the API is busy or failing: try again later";
  return "init needs one successful (2xx) JSON response";
}
