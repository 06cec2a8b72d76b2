import { existsSync } from "node:fs";
import path from "node:path";
import { ConfigError } from "../config/errors.js";
import { checkPipelineName, readEnv } from "../config/load-pipeline.js";
import { HttpClient } from "../http/client.js";
import { parseLinkHeader } from "../http/link-header.js";
import { compileJsonPath } from "../lang/jsonpath.js";
import { writeAtomic } from "../shared/atomic-write.js";
import { quote, TransportError } from "../shared/errors.js";
import { plural } from "../shared/format.js";
import { stripBom } from "../shared/json-text.js";
import { Redactor } from "../shared/secrets.js";
import { projectFor } from "./context.js";
import { defaultSchemaName } from "./infer-targets.js";
import { headersLine, type InitCredentials, initCredentials } from "./init/credentials.js";
import {
  CURSOR_SHAPES,
  DONE_PATHS,
  HAS_MORE_PATHS,
  NEXT_URL_PATHS,
  stopFlag,
  streamNameFor,
} from "./init/shapes.js";
import { CliError, type CliIO, EXIT } from "./io.js";

export interface Probe {
  recordsPath: string;
  recordCount: number;
  sampleKeys: string[];
  /** A flow map, e.g. `{ type: cursor, cursor: "$.next_cursor", param: cursor }`. */
  paginate: string;
  /** `$.error` for `{ ok: true|false, error }` APIs (Slack style), else null. */
  errorPath: string | null;
  confidence: "high" | "medium" | "low";
  reasons: string[];
}

/** `pipelines init <name> [--from-url URL]`: a commented pipeline file, guessed from one request. */
export async function initCommand(
  io: CliIO,
  name: string,
  opts: { fromUrl?: string; force?: boolean; header?: string[]; bearerEnv?: string },
): Promise<number> {
  const bad = checkPipelineName(name);
  if (bad) throw new ConfigError([bad]);
  const project = await projectFor(io);
  // `x.yaml` and `x.yml` are one pipeline: an existing one of either is the file (re)written.
  const existing = [".yaml", ".yml"]
    .map((ext) => path.join(project.pipelinesDir, `${name}${ext}`))
    .find((f) => existsSync(f));
  const file = existing ?? path.join(project.pipelinesDir, `${name}.yaml`);
  if (existing && !opts.force)
    throw new CliError(
      `${path.relative(io.cwd, file)} already exists; use --force to overwrite`,
      EXIT.config,
    );
  let text: string;
  const creds = initCredentials(opts.header ?? [], opts.bearerEnv, readEnv(project, io.env));
  if (opts.fromUrl) {
    let url: URL;
    try {
      url = new URL(opts.fromUrl);
      if (!/^https?:$/.test(url.protocol)) throw new Error("not http");
    } catch {
      // Neither a password nor a query (which may hold a key) is shown.
      const shownArg = opts.fromUrl.replace(/\/\/[^/?#]*@/, "//***@").replace(/\?.*$/s, "?…");
      throw new CliError(`--from-url: expected an http(s) URL, found \`${shownArg}\``, EXIT.config);
    }
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
    let probe: Probe;
    try {
      const res = await client.send({ method: "GET", url: url.toString(), headers: creds.send }, io.signal);
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
      probe = probeResponse(body, res.headers, url);
    } catch (err) {
      if (err instanceof TransportError)
        throw new CliError(`GET ${shown} failed: ${quote(err.message, masker)}`, EXIT.runFailed);
      throw err;
    } finally {
      await client.close();
    }
    text = scaffold(name, url, probe, creds);
    const key = secretParam(url);
    if (key) {
      io.stderr.write(
        `the URL's \`${key.name}\` looks like a credential: it is not written to the file; the pipeline reads it from \`\${env.${key.env}}\` (set it in the environment or in .env)\n`,
      );
    }
    for (const note of creds.notes) io.stderr.write(`${note}\n`);
    io.stderr.write(
      `probed ${shown}: ${plural(probe.recordCount, "record")} at \`${probe.recordsPath}\`, pagination \`${probe.paginate}\`${probe.errorPath ? `, errors at \`${probe.errorPath}\`` : ""} — ${probe.confidence} confidence\n${probe.reasons.map((r) => `  - ${r}`).join("\n")}\n`,
    );
  } else {
    text = scaffold(name, null, null, creds);
  }
  await writeAtomic(file, text, 0o644);
  io.stderr.write(`wrote ${path.relative(io.cwd, file)}\n`);
  io.stderr.write(
    `next: edit it, then \`pipelines validate ${name}\`, \`pipelines plan ${name}\`, \`pipelines run ${name} --max-pages 2\`\n`,
  );
  return EXIT.ok;
}

const TOTAL_PATHS = ["$.total", "$.meta.total", "$.total_count", "$.totalCount", "$.count"];
const TOTAL_PAGES_PATHS = ["$.total_pages", "$.totalPages", "$.meta.total_pages", "$.pages"];
const PAGE_NUMBER_PATHS = ["$.page", "$.current_page", "$.meta.page", "$.meta.current_page"];

const SIMPLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function get(body: unknown, p: string): unknown {
  return compileJsonPath(p).first(body);
}

/** `$.name`, or `$['odd name']` for a name that needs brackets. */
function member(parent: string, key: string): string {
  if (SIMPLE_NAME.test(key)) return `${parent}.${key}`;
  return `${parent}['${key.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}']`;
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;

/** Guesses where the records are and how the API paginates, from one response. */
export function probeResponse(body: unknown, headers: Record<string, string>, url: URL): Probe {
  const reasons: string[] = [];
  let recordsPath = "$";
  let recordCount = 0;
  let sample: unknown;
  if (Array.isArray(body)) {
    recordCount = body.length;
    sample = body[0];
    reasons.push("the body is an array: each element is a record");
  } else if (body && typeof body === "object") {
    // The largest array of objects, at the top level or one level down.
    let best: { path: string; arr: unknown[] } | null = null;
    const consider = (p: string, v: unknown) => {
      if (
        Array.isArray(v) &&
        (v.length === 0 || (typeof v[0] === "object" && v[0] !== null)) &&
        (!best || v.length > best.arr.length)
      )
        best = { path: p, arr: v };
    };
    for (const [k, v] of Object.entries(body)) {
      const key = member("$", k);
      consider(key, v);
      if (v && typeof v === "object" && !Array.isArray(v))
        for (const [k2, v2] of Object.entries(v)) consider(member(key, k2), v2);
    }
    if (best) {
      const b = best as { path: string; arr: unknown[] };
      recordsPath = b.path;
      recordCount = b.arr.length;
      sample = b.arr[0];
      reasons.push(`the largest list of objects is at ${b.path} (${b.arr.length} items)`);
    } else {
      recordCount = 1;
      sample = body;
      reasons.push("no list of objects found: the whole body is one record");
    }
  } else {
    recordCount = body === null ? 0 : 1;
    sample = body;
    reasons.push("the body is a single value, not an object or a list");
  }
  let paginate = "{ type: none }";
  let confidence: Probe["confidence"] = "low";
  const next = parseLinkHeader(headers.link).find((l) => l.rels.includes("next"));
  const q = url.searchParams;
  const cursorShape = CURSOR_SHAPES.find((c) => {
    const v = get(body, c.path);
    return typeof v === "string" && v !== "";
  });
  const nextPath = NEXT_URL_PATHS.find((p) => {
    const v = get(body, p);
    return typeof v === "string" && /^(https?:\/\/|\/|\?)/.test(v);
  });
  const hasMore = HAS_MORE_PATHS.find((p) => typeof get(body, p) === "boolean");
  const done = DONE_PATHS.find((p) => typeof get(body, p) === "boolean");
  const total = TOTAL_PATHS.find((p) => isCount(get(body, p)));
  const totalPages = TOTAL_PAGES_PATHS.find((p) => isCount(get(body, p)));
  const pageNumber = PAGE_NUMBER_PATHS.find((p) => isCount(get(body, p)));
  const totalValue = total ? (get(body, total) as number) : null;
  const limitInUrl = Number(q.get("limit"));
  const limit = Number.isInteger(limitInUrl) && limitInUrl > 0 ? limitInUrl : recordCount || 100;
  if (next) {
    paginate = "{ type: link_header }";
    confidence = "high";
    reasons.push(`the response has a Link header with rel="next"`);
  } else if (nextPath) {
    paginate = `{ type: next_url, next: ${quoted(nextPath)}${stopFlag(hasMore, done)} }`;
    confidence = "high";
    reasons.push(`${nextPath} holds a next-page URL`);
  } else if (cursorShape) {
    paginate = `{ type: cursor, cursor: ${quoted(cursorShape.path)}, param: ${scalar(cursorShape.param)}${stopFlag(hasMore, done)} }`;
    confidence = "medium";
    reasons.push(
      `${cursorShape.path} looks like a cursor, sent back as \`${cursorShape.param}\`; check the name of the request parameter (param) in the API docs`,
    );
  } else if (hasMore && sample && typeof sample === "object" && "id" in (sample as object)) {
    paginate = `{ type: cursor, cursor: ${quoted(`${recordsPath}[-1:].id`)}, param: starting_after, has_more: ${hasMore} }`;
    confidence = "medium";
    reasons.push(`${hasMore} with record ids looks like Stripe-style pagination (starting_after = last id)`);
  } else if (q.has("offset")) {
    paginate = `{ type: offset, limit: ${limit}${total ? `, total: ${quoted(total)}` : ""} }`;
    confidence = "medium";
    reasons.push(`the URL has an offset parameter${total ? `, and a total at ${total}` : ""}`);
  } else if (q.has("page") || totalPages || pageNumber) {
    paginate = `{ type: page${totalPages ? `, total_pages: ${quoted(totalPages)}` : ""} }`;
    confidence = "medium";
    reasons.push(
      `page numbers (${q.has("page") ? "a page parameter in the URL" : `${totalPages ?? pageNumber} in the body`})${totalPages ? ` with a page count at ${totalPages}` : ""}`,
    );
  } else if (total && totalValue !== null && (q.has("limit") || totalValue > recordCount)) {
    // A total larger than the page, and no page numbers: offset/limit is the usual scheme.
    paginate = `{ type: offset, limit: ${limit}, total: ${quoted(total)} }`;
    confidence = "medium";
    reasons.push(
      `${total} (${totalValue}) is more than the ${recordCount} records of this page and there are no page numbers: offset/limit (check the parameter names in the API docs)`,
    );
  } else {
    reasons.push(
      "no pagination signal found (no Link header, next URL, cursor, offset or page): one page only — check the API docs",
    );
  }
  let errorPath: string | null = null;
  if (body && typeof body === "object" && !Array.isArray(body) && (body as { ok?: unknown }).ok === true) {
    errorPath = "$.error";
    reasons.push("the body has `ok: true`: such APIs answer errors as `ok: false` with `error`");
  }
  if (recordCount === 0) {
    confidence = "low";
    reasons.push("the response held no records, so the record shape could not be seen");
  }
  const sampleKeys =
    sample && typeof sample === "object" && !Array.isArray(sample)
      ? Object.keys(sample as object)
          .filter((k) => !/[\u0000-\u001f]/.test(k))
          .slice(0, 30)
      : [];
  return { recordsPath, recordCount, sampleKeys, paginate, errorPath, confidence, reasons };
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

/** Masks the URL's password and credential-looking query value (decoded and as written). */
function urlSecretsMasker(url: URL, more: string[]): Redactor {
  const key = secretParam(url);
  const secrets = [url.password, ...(key ? url.searchParams.getAll(key.name) : []), ...more];
  try {
    secrets.push(decodeURIComponent(url.password));
  } catch {}
  return new Redactor(secrets);
}

/** The URL without user name and password. */
function displayUrl(url: URL): string {
  const key = secretParam(url);
  if (!url.username && !url.password && !key) return url.toString();
  const copy = new URL(url);
  copy.username = "";
  copy.password = "";
  if (key) copy.searchParams.set(key.name, "__MASKED__");
  return copy.toString().replace("__MASKED__", "***");
}

/**
 * A double-quoted YAML string for a value that came from the URL or the response (a key, a
 * JSONPath built from keys): `${` is written `$${`, the literal, so that a key such as
 * `items${env.HOME}` is not read as a template when the pipeline is loaded.
 */
function quoted(value: string): string {
  return JSON.stringify(value).replaceAll("${", () => "$${");
}

/** A YAML scalar for a value from the URL: plain when safe, otherwise quoted(). */
function scalar(value: string): string {
  if (/^[A-Za-z0-9/_.~-][A-Za-z0-9/_.,~ -]*$/.test(value) && !value.endsWith(" ")) return value;
  return quoted(value);
}

const SECRET_PARAM =
  /^(api[_-]?key|apikey|key|token|access[_-]?token|auth|secret|client[_-]?secret|password|passwd|sig|signature)$/i;

/** A credential in the URL's query (`?api_key=…`): it goes to `auth` via an env variable, never into the file. */
export function secretParam(url: URL): { name: string; env: string } | null {
  for (const name of url.searchParams.keys()) {
    if (SECRET_PARAM.test(name)) return { name, env: name.toUpperCase().replace(/[^A-Z0-9]+/g, "_") };
  }
  return null;
}

function scaffold(name: string, url: URL | null, probe: Probe | null, creds: InitCredentials): string {
  const stream = streamNameFor(url, name);
  const base = url ? url.origin : "https://api.example.com/v1";
  const pathPart = url ? url.pathname : "/items";
  const key = url ? secretParam(url) : null;
  const params = url
    ? [...url.searchParams.entries()].filter(
        ([k]) =>
          k !== key?.name &&
          !["cursor", "page", "offset", "after", "starting_after", "page_token"].includes(k),
      )
    : [];
  const authLine = creds.authLine
    ? creds.authLine
    : key
      ? `  auth: { type: api_key, name: ${JSON.stringify(key.name)}, value: "\${env.${key.env}}", in: query }   # from the URL: set ${key.env} (e.g. in .env)`
      : `  # auth: { type: bearer, token: "\${env.API_TOKEN}" }   # or basic, api_key, oauth2`;
  const fieldLines = probe?.sampleKeys.length
    ? probe.sampleKeys
        .map(
          (k) =>
            `    #   ${SIMPLE_NAME.test(k) ? `${k}: $.${k}` : `${quoted(k)}: ${quoted(member("$", k))}`}`,
        )
        .join("\n")
    : "    #   id: $.id\n    #   name: $.name\n    #   author: $.user.login";
  return `# yaml-language-server: $schema=../schemas/pipeline.schema.json
# Pipeline \`${name}\`${url ? `, scaffolded from ${url.origin}${url.pathname} (${probe?.confidence} confidence: check the guesses marked GUESS)` : ""}.
# Reference: README.md, "Pipeline file format". Check it with \`pipelines validate ${name}\`.
version: 1
description: ${url ? scalar(`Records of ${url.pathname}`) : "What this pipeline pulls"}
source:
  base_url: ${base}
${authLine}
${headersLine(creds.fileHeaders) ?? "  # headers: { Accept: application/json }"}
  # timeout: 30s
  # retry: { max_attempts: 5, initial_delay: 1s, max_delay: 60s }
  # rate_limit: { requests_per_second: 5, remaining_header: x-ratelimit-remaining, reset_header: x-ratelimit-reset }
streams:
  ${stream}:
    path: ${scalar(pathPart)}
${params.length ? `    params:\n${params.map(([k, v]) => `      ${quoted(k)}: ${quoted(v)}`).join("\n")}\n` : ""}    records: ${quoted(probe?.recordsPath ?? "$.data")}${probe ? "   # GUESS" : ""}
${probe?.errorPath ? `    error_path: ${probe.errorPath}   # GUESS\n` : ""}    paginate: ${probe?.paginate ?? "{ type: none }   # cursor, offset, page, link_header, next_url"}${probe ? "   # GUESS" : ""}
    # fields:            # keep only these fields (JSONPath into each record)
${fieldLines}
    # schema: ${defaultSchemaName(name, stream)}   # \`pipelines infer ${name}\` drafts it and adds this line
    # primary_key: id
# output: { format: jsonl, mode: replace }      # jsonl, json, csv, sqlite; replace, append, merge
# validation: { invalid_records: skip, max_invalid_ratio: 0.05, drift: warn }
`;
}
