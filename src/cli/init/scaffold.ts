/** The commented pipeline file `pipelines init` writes: a template, or filled in from a probe. */
import { defaultSchemaName } from "../infer-targets.js";
import { headersLine, type InitCredentials } from "./credentials.js";
import type { Probe } from "./probe.js";
import { streamNameFor } from "./shapes.js";
import { secretParam } from "./url-secrets.js";
import { member, quoted, SIMPLE_NAME, scalar } from "./yaml-text.js";

export function scaffold(name: string, url: URL | null, probe: Probe | null, creds: InitCredentials): string {
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
