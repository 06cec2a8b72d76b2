import { existsSync } from "node:fs";
import path from "node:path";
import { ConfigError } from "../config/errors.js";
import { checkPipelineName } from "../config/load-pipeline.js";
import { HttpClient } from "../http/client.js";
import { TransportError } from "../http/errors.js";
import { parseLinkHeader } from "../http/link-header.js";
import { writeAtomic } from "../run/state.js";
import { projectFor } from "./context.js";
import { CliError, type CliIO, EXIT } from "./io.js";

export interface Probe {
  recordsPath: string;
  recordCount: number;
  sampleKeys: string[];
  paginate: string;
  confidence: "high" | "medium" | "low";
  reasons: string[];
}

/** `pipelines init <name> [--from-url URL]`: a commented pipeline file, guessed from one request. */
export async function initCommand(
  io: CliIO,
  name: string,
  opts: { fromUrl?: string; force?: boolean },
): Promise<number> {
  const bad = checkPipelineName(name);
  if (bad) throw new ConfigError([bad]);
  const project = await projectFor(io);
  const file = path.join(project.pipelinesDir, `${name}.yaml`);
  if (existsSync(file) && !opts.force)
    throw new CliError(
      `${path.relative(io.cwd, file)} already exists; use --force to overwrite`,
      EXIT.config,
    );
  let text: string;
  if (opts.fromUrl) {
    let url: URL;
    try {
      url = new URL(opts.fromUrl);
      if (!/^https?:$/.test(url.protocol)) throw new Error("not http");
    } catch {
      throw new CliError(`--from-url: expected an http(s) URL, found \`${opts.fromUrl}\``, EXIT.config);
    }
    const client = new HttpClient({
      timeoutMs: 30_000,
      maxResponseBytes: 64 * 1024 * 1024,
      connections: 1,
      userAgent: "pipelines-init",
    });
    let probe: Probe;
    try {
      const res = await client.send({ method: "GET", url: url.toString(), headers: {} }, io.signal);
      if (res.status < 200 || res.status >= 300) {
        throw new CliError(
          `GET ${url} answered ${res.status}; init needs one successful response (add auth to the file by hand and use \`pipelines infer\`)`,
          EXIT.runFailed,
        );
      }
      let body: unknown;
      try {
        body = JSON.parse(res.body.toString("utf8"));
      } catch {
        throw new CliError(`GET ${url} answered with a body that is not JSON`, EXIT.runFailed);
      }
      probe = probeResponse(body, res.headers, url);
    } catch (err) {
      if (err instanceof TransportError)
        throw new CliError(`GET ${url} failed: ${err.message}`, EXIT.runFailed);
      throw err;
    } finally {
      await client.close();
    }
    text = scaffold(name, url, probe);
    io.stderr.write(
      `probed ${url}: ${probe.recordCount} records at \`${probe.recordsPath}\`, pagination \`${probe.paginate.split("\n")[0]}\` — ${probe.confidence} confidence\n${probe.reasons.map((r) => `  - ${r}`).join("\n")}\n`,
    );
  } else {
    text = scaffold(name, null, null);
  }
  await writeAtomic(file, text, 0o644);
  io.stdout.write(`wrote ${path.relative(io.cwd, file)}\n`);
  io.stderr.write(
    `next: edit it, then \`pipelines validate ${name}\`, \`pipelines plan ${name}\`, \`pipelines run ${name} --max-pages 2\`\n`,
  );
  return EXIT.ok;
}

const CURSOR_PATHS = [
  "$.next_cursor",
  "$.nextCursor",
  "$.cursor",
  "$.next_page_token",
  "$.nextPageToken",
  "$.response_metadata.next_cursor",
  "$.meta.next_cursor",
  "$.paging.cursors.after",
  "$.paging.next.after",
  "$.pagination.next_cursor",
];
const NEXT_URL_PATHS = [
  "$.next",
  "$['@odata.nextLink']",
  "$.links.next",
  "$._links.next.href",
  "$.pagination.next",
  "$.paging.next",
  "$.next_page_url",
  "$.meta.next",
];

function get(body: unknown, p: string): unknown {
  const segs = p
    .replace(/^\$\.?/, "")
    .replace(/\['([^']+)'\]/g, ".$1")
    .split(".")
    .filter(Boolean);
  let cur: any = body;
  for (const s of segs) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = cur[s];
  }
  return cur;
}

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
        (v.length === 0 || typeof v[0] === "object") &&
        (!best || v.length > best.arr.length)
      )
        best = { path: p, arr: v };
    };
    for (const [k, v] of Object.entries(body)) {
      const key = /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `$.${k}` : `$['${k}']`;
      consider(key, v);
      if (v && typeof v === "object" && !Array.isArray(v))
        for (const [k2, v2] of Object.entries(v))
          if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k2)) consider(`${key}.${k2}`, v2);
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
  }
  let paginate = "{ type: none }";
  let confidence: Probe["confidence"] = "low";
  const next = parseLinkHeader(headers.link).find((l) => l.rels.includes("next"));
  const q = url.searchParams;
  const cursorPath = CURSOR_PATHS.find((p) => typeof get(body, p) === "string" && get(body, p) !== "");
  const nextPath = NEXT_URL_PATHS.find((p) => {
    const v = get(body, p);
    return typeof v === "string" && /^(https?:\/\/|\/|\?)/.test(v);
  });
  const hasMore = ["$.has_more", "$.hasMore", "$.more"].find((p) => typeof get(body, p) === "boolean");
  if (next) {
    paginate = "{ type: link_header }";
    confidence = "high";
    reasons.push(`the response has a Link header with rel="next"`);
  } else if (nextPath) {
    paginate = `{ type: next_url, next: "${nextPath}"${hasMore ? `, has_more: ${hasMore}` : ""} }`;
    confidence = "high";
    reasons.push(`${nextPath} holds a next-page URL`);
  } else if (cursorPath) {
    paginate = `{ type: cursor, cursor: "${cursorPath}", param: cursor${hasMore ? `, has_more: ${hasMore}` : ""} }`;
    confidence = "medium";
    reasons.push(
      `${cursorPath} looks like a cursor; check the name of the request parameter (param) in the API docs`,
    );
  } else if (hasMore && sample && typeof sample === "object" && "id" in (sample as object)) {
    paginate = `{ type: cursor, cursor: "${recordsPath === "$" ? "$" : recordsPath}[-1:].id", param: starting_after, has_more: ${hasMore} }`;
    confidence = "medium";
    reasons.push(`${hasMore} with record ids looks like Stripe-style pagination (starting_after = last id)`);
  } else if (
    q.has("offset") ||
    (["$.total", "$.count", "$.meta.total", "$.total_count"].some((p) => typeof get(body, p) === "number") &&
      q.has("limit"))
  ) {
    const total = ["$.total", "$.meta.total", "$.total_count", "$.count"].find(
      (p) => typeof get(body, p) === "number",
    );
    paginate = `{ type: offset, limit: ${Number(q.get("limit")) || 100}${total ? `, total: "${total}"` : ""} }`;
    confidence = "medium";
    reasons.push(`offset/limit parameters${total ? ` and a total at ${total}` : ""}`);
  } else if (
    q.has("page") ||
    ["$.total_pages", "$.totalPages", "$.meta.total_pages", "$.page"].some((p) => get(body, p) !== undefined)
  ) {
    const tp = ["$.total_pages", "$.totalPages", "$.meta.total_pages", "$.pages"].find(
      (p) => typeof get(body, p) === "number",
    );
    paginate = `{ type: page${tp ? `, total_pages: "${tp}"` : ""} }`;
    confidence = "medium";
    reasons.push(`page numbers${tp ? ` with a page count at ${tp}` : ""}`);
  } else {
    reasons.push(
      "no pagination signal found (no Link header, next URL, cursor, offset or page): one page only — check the API docs",
    );
  }
  if (recordCount === 0) {
    confidence = "low";
    reasons.push("the response held no records, so the record shape could not be seen");
  }
  const sampleKeys =
    sample && typeof sample === "object" && !Array.isArray(sample)
      ? Object.keys(sample as object).slice(0, 30)
      : [];
  return { recordsPath, recordCount, sampleKeys, paginate, confidence, reasons };
}

function scaffold(name: string, url: URL | null, probe: Probe | null): string {
  const base = url ? url.origin : "https://api.example.com/v1";
  const pathPart = url ? url.pathname : "/items";
  const params = url
    ? [...url.searchParams.entries()].filter(
        ([k]) => !["cursor", "page", "offset", "after", "starting_after", "page_token"].includes(k),
      )
    : [];
  const fieldLines = probe?.sampleKeys.length
    ? probe.sampleKeys
        .map(
          (k) =>
            `    #   ${/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : JSON.stringify(k)}: ${/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `$.${k}` : `$['${k}']`}`,
        )
        .join("\n")
    : "    #   id: $.id\n    #   name: $.name\n    #   author: $.user.login";
  return `# yaml-language-server: $schema=../schemas/pipeline.schema.json
# Pipeline \`${name}\`${url ? `, scaffolded from ${url.origin}${url.pathname} (${probe?.confidence} confidence: check the guesses marked GUESS)` : ""}.
# Reference: README.md, "Pipeline file format". Check it with \`pipelines validate ${name}\`.
version: 1
description: ${url ? `Records of ${url.pathname}` : "What this pipeline pulls"}
source:
  base_url: ${base}
  # auth: { type: bearer, token: "\${env.API_TOKEN}" }   # or basic, api_key, oauth2
  # headers: { Accept: application/json }
  # timeout: 30s
  # retry: { max_attempts: 5, initial_delay: 1s, max_delay: 60s }
  # rate_limit: { requests_per_second: 5, remaining_header: x-ratelimit-remaining, reset_header: x-ratelimit-reset }
streams:
  ${/^[A-Za-z0-9._-]+$/.test(name) ? name : "items"}:
    path: ${pathPart}
${params.length ? `    params:\n${params.map(([k, v]) => `      ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join("\n")}\n` : ""}    records: "${probe?.recordsPath ?? "$.data"}"${probe ? "   # GUESS" : ""}
    paginate: ${probe?.paginate ?? "{ type: none }   # cursor, offset, page, link_header, next_url"}${probe ? "   # GUESS" : ""}
    # fields:            # keep only these fields (JSONPath into each record)
${fieldLines}
    # schema: ${name}.schema.json   # draft one with \`pipelines infer ${name}\`
    # primary_key: id
# output: { format: jsonl, mode: replace }      # jsonl, json, csv, sqlite; replace, append, merge
# validation: { invalid_records: skip, max_invalid_ratio: 0.05, drift: warn }
`;
}
