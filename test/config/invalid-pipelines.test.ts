// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files and messages use `${…}` templates
import { existsSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, type ConfigErrorCode, formatIssue } from "../../src/config/errors.js";
import { checkPipelineName, loadPipeline } from "../../src/config/load-pipeline.js";
import { makeProject } from "../../src/config/project.js";
import { configErrorOf, issuesOf, tempDir, tempProject, yaml } from "./helpers.js";

/**
 * Invalid pipeline files: text → the issue the loader reports, with its code and 1-based
 * line/column (the key for unknown keys and incomplete maps, the value otherwise).
 */
interface Case {
  name: string;
  text: string;
  env?: Record<string, string>;
  code: ConfigErrorCode;
  line: number;
  column: number;
  /** A substring of the issue's message. */
  message?: string;
  /** The issue's key path. */
  path?: string;
  /** How many issues the file gives in all (one problem, one issue: default 1). */
  count?: number;
}

const { project, cleanup } = tempProject({
  "ok.schema.json": JSON.stringify({ type: "object", properties: { id: { type: "integer" } } }),
  "not-json.schema.json": '{ "type": "object", ',
  "bad-type.schema.json": JSON.stringify({ type: "nope" }),
});
afterAll(cleanup);

const CASES: Case[] = [
  // `schedule`: a cron expression (UTC) that parses (issue 17).
  {
    name: "schedule that does not parse",
    text: yaml`
      schedule: "61 * * * *"
      source:
        base_url: https://x.test
      streams:
        a: { path: /a }
    `,
    code: "bad_value",
    line: 1,
    column: 11,
    message: "the cron expression does not parse",
    path: "schedule",
  },
  {
    name: "schedule with three fields",
    text: yaml`
      schedule: "* * *"
      source:
        base_url: https://x.test
      streams:
        a: { path: /a }
    `,
    code: "bad_value",
    line: 1,
    column: 11,
    message: "3 fields",
    path: "schedule",
  },
  {
    // Parses, but no day ever matches: BullMQ would drop the schedule without a word.
    name: "schedule that never comes",
    text: yaml`
      schedule: "0 0 31 2,4 *"
      source:
        base_url: https://x.test
      streams:
        a: { path: /a }
    `,
    code: "bad_value",
    line: 1,
    column: 11,
    message: "never comes",
    path: "schedule",
  },
  {
    // cron-parser's `H` is a random value at every parse: BullMQ's next time moves at each run.
    name: "schedule with a hashed `H` field",
    text: yaml`
      schedule: "H * * * THU"
      source:
        base_url: https://x.test
      streams:
        a: { path: /a }
    `,
    code: "bad_value",
    line: 1,
    column: 11,
    message: "`H`",
    path: "schedule",
  },
  // Key typos, at several levels, with "did you mean".
  {
    name: "top-level key typo",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a }
      validaton: { drift: warn }
    `,
    code: "unknown_key",
    line: 5,
    column: 1,
    message: "unknown key `validaton` (did you mean `validation`?)",
    path: "validaton",
  },
  {
    name: "source key typo",
    text: yaml`
      source:
        base_url: https://x.test
        hedaers: { Accept: x }
      streams:
        a: { path: /a }
    `,
    code: "unknown_key",
    line: 3,
    column: 3,
    message: "(did you mean `headers`?)",
    path: "source.hedaers",
  },
  {
    name: "stream key typo pagnate",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          pagnate: { type: none }
    `,
    code: "unknown_key",
    line: 6,
    column: 5,
    message: "unknown key `pagnate` (did you mean `paginate`?)",
    path: "streams.a.pagnate",
  },
  {
    name: "paginate key typo in a flow map",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          paginate: { type: cursor, cursor: $.next, parm: c }
    `,
    code: "unknown_key",
    line: 6,
    column: 47,
    message: "(did you mean `param`?)",
  },
  {
    name: "retry key typo",
    text: yaml`
      source:
        base_url: https://x.test
        retry:
          max_attempt: 3
      streams:
        a: { path: /a }
    `,
    code: "unknown_key",
    line: 4,
    column: 5,
    message: "(did you mean `max_attempts`?)",
  },
  {
    name: "auth key typo",
    text: yaml`
      source:
        base_url: https://x.test
        auth:
          type: bearer
          tokn: "\${env.T}"
      streams:
        a: { path: /a }
    `,
    env: { T: "t0k" },
    code: "unknown_key",
    line: 5,
    column: 5,
    message: "(did you mean `token`?)",
    // and `token` is missing
    count: 2,
  },
  {
    name: "output key typo",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a }
      output:
        formt: csv
    `,
    code: "unknown_key",
    line: 6,
    column: 3,
    message: "(did you mean `format`?)",
  },
  {
    name: "flatten option typo (inside a oneOf)",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a, flatten: { sep: "." } }
    `,
    code: "unknown_key",
    line: 4,
    column: 29,
    message: "unknown key `sep` (did you mean `separator`?)",
  },

  // Wrong types and values.
  {
    name: "concurrency is not a number",
    text: yaml`
      source:
        base_url: https://x.test
        concurrency: four
      streams:
        a: { path: /a }
    `,
    code: "wrong_type",
    line: 3,
    column: 16,
    message: "expected a whole number, found `four`",
  },
  // `source.workers`: a whole number from 1, or `auto`.
  {
    name: "workers is 0",
    text: yaml`
      source:
        base_url: https://x.test
        workers: 0
      streams:
        a: { path: /a }
    `,
    code: "bad_value",
    line: 3,
    column: 12,
    message: "expected a number at least 1, found the number `0`",
  },
  {
    name: "workers is a word other than auto",
    text: yaml`
      source:
        base_url: https://x.test
        workers: many
      streams:
        a: { path: /a }
    `,
    code: "bad_value",
    line: 3,
    column: 12,
    message: "expected `auto`, found `many`",
  },
  {
    name: "streams is a list",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        - a
        - b
    `,
    code: "wrong_type",
    line: 4,
    column: 3,
    message: "expected a map, found a list",
  },
  {
    name: "header value is a map",
    text: yaml`
      source:
        base_url: https://x.test
        headers:
          Accept: { a: 1 }
      streams:
        a: { path: /a }
    `,
    code: "wrong_type",
    line: 4,
    column: 13,
    path: "source.headers.Accept",
  },
  {
    name: "max_attempts is not whole",
    text: yaml`
      source:
        base_url: https://x.test
        retry: { max_attempts: 2.5 }
      streams:
        a: { path: /a }
    `,
    code: "wrong_type",
    line: 3,
    column: 26,
    message: "found the number `2.5`",
  },
  {
    name: "flatten is neither boolean nor map",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a, flatten: yes please }
    `,
    code: "wrong_type",
    line: 4,
    column: 27,
    message: "found `yes please`",
  },
  {
    name: "primary_key is an empty list",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a, primary_key: [] }
    `,
    code: "bad_value",
    line: 4,
    column: 31,
    message: "expected at least one item, found an empty list",
  },
  {
    name: "status out of range in a flow list",
    text: yaml`
      source:
        base_url: https://x.test
        retry:
          on_status: [429, 600]
      streams:
        a: { path: /a }
    `,
    code: "bad_value",
    line: 4,
    column: 22,
    message: "expected a number at most 599, found the number `600`",
    path: "source.retry.on_status[1]",
  },
  {
    name: "wrong type in a block list",
    text: yaml`
      source:
        base_url: https://x.test
        allowed_hosts:
          - cdn.x.test
          - 12
      streams:
        a: { path: /a }
    `,
    code: "wrong_type",
    line: 5,
    column: 7,
    path: "source.allowed_hosts[1]",
  },
  {
    name: "empty name in a primary key list",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          fields: { id: $.id }
          primary_key: [id, ""]
    `,
    code: "bad_value",
    line: 7,
    column: 23,
    message: "expected a non-empty string",
  },
  {
    name: "method PUT",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a, method: PUT }
    `,
    code: "bad_value",
    line: 4,
    column: 26,
    message: "expected one of `GET`, `POST`, found `PUT`",
  },
  {
    name: "version 2",
    text: yaml`
      version: 2
      source:
        base_url: https://x.test
      streams:
        a: { path: /a }
    `,
    code: "bad_value",
    line: 1,
    column: 10,
    message: "expected `1`, found the number `2`",
  },
  {
    name: "stream name with a space",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        my stream: { path: /a }
    `,
    code: "bad_value",
    line: 4,
    column: 3,
    message: "`my stream` is not a valid name here",
  },
  {
    name: "header name with a space",
    text: yaml`
      source:
        base_url: https://x.test
        headers:
          "Bad Header": x
      streams:
        a: { path: /a }
    `,
    code: "bad_value",
    line: 4,
    column: 5,
    message: "expected an HTTP header name",
  },
  {
    name: "max_invalid_ratio above 1",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a }
      validation: { max_invalid_ratio: 1.5 }
    `,
    code: "bad_value",
    line: 5,
    column: 34,
    message: "expected a number at most 1",
  },
  {
    name: "base_url is not http(s)",
    text: yaml`
      source:
        base_url: ftp://x.test
      streams:
        a: { path: /a }
    `,
    code: "bad_url",
    line: 2,
    column: 13,
    message: "found `ftp://x.test`",
  },
  {
    name: "base_url without a host (reported once)",
    text: yaml`
      source:
        base_url: "https://"
      streams:
        a: { path: /a }
    `,
    code: "bad_url",
    line: 2,
    column: 13,
    message: "expected an http(s) URL",
  },
  {
    name: "base_url with a bad port",
    text: yaml`
      source:
        base_url: https://x.test:99999
      streams:
        a: { path: /a }
    `,
    code: "bad_url",
    line: 2,
    column: 13,
  },

  // Durations and sizes.
  {
    name: "timeout: fast",
    text: yaml`
      source:
        base_url: https://x.test
        timeout: fast
      streams:
        a: { path: /a }
    `,
    code: "bad_duration",
    line: 3,
    column: 12,
    message: "expected a duration like `30s`",
  },
  {
    name: "negative initial_delay",
    text: yaml`
      source:
        base_url: https://x.test
        retry: { initial_delay: -1 }
      streams:
        a: { path: /a }
    `,
    code: "bad_duration",
    line: 3,
    column: 27,
  },
  {
    name: "lookback in weeks",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          fields: { t: $.t }
          incremental: { cursor_field: t, param: since, lookback: 3 weeks }
    `,
    code: "bad_duration",
    line: 7,
    column: 61,
    message: "found `3 weeks`",
  },
  {
    name: "max_response_size: lots",
    text: yaml`
      source:
        base_url: https://x.test
        max_response_size: lots
      streams:
        a: { path: /a }
    `,
    code: "bad_size",
    line: 3,
    column: 22,
    message: "expected a size like `64MiB`",
  },
  {
    name: "max_response_size: 0",
    text: yaml`
      source:
        base_url: https://x.test
        max_response_size: 0
      streams:
        a: { path: /a }
    `,
    code: "bad_size",
    line: 3,
    column: 22,
  },

  // JSONPaths.
  {
    name: "records without $",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          records: data
    `,
    code: "bad_jsonpath",
    line: 6,
    column: 14,
    message: "starts with `$`",
  },
  {
    name: "field path with an unclosed bracket",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          fields:
            id: $.id
            name: $.a[
    `,
    code: "bad_jsonpath",
    line: 8,
    column: 13,
    path: "streams.a.fields.name",
  },
  {
    name: "cursor path ending in ..",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          paginate:
            type: cursor
            cursor: $..
    `,
    code: "bad_jsonpath",
    line: 8,
    column: 15,
    path: "streams.a.paginate.cursor",
  },
  {
    name: "filter that does not parse",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          records: $.items[?(@.active ==)]
    `,
    code: "bad_jsonpath",
    line: 6,
    column: 14,
    message: "filter `@.active ==`",
  },
  {
    name: "next_url next path",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          paginate: { type: next_url, next: "$.links[next" }
    `,
    code: "bad_jsonpath",
    line: 6,
    // A quoted value starts at its quote.
    column: 39,
  },

  // Paginate and auth types.
  {
    name: "unknown paginate type cursr",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          paginate: { type: cursr }
    `,
    code: "unknown_type",
    line: 6,
    column: 23,
    message:
      "unknown paginate type `cursr`; use one of none, cursor, offset, page, link_header, next_url (did you mean `cursor`?)",
  },
  {
    name: "unknown auth type",
    text: yaml`
      source:
        base_url: https://x.test
        auth: { type: bearr, token: x }
      streams:
        a: { path: /a }
    `,
    code: "unknown_type",
    line: 3,
    column: 17,
    message:
      "unknown auth type `bearr`; use one of none, bearer, basic, api_key, oauth2 (did you mean `bearer`?)",
  },
  {
    name: "paginate without type",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          paginate: { max_pages: 3 }
    `,
    code: "missing_key",
    line: 6,
    column: 5,
    message: "missing required key `type`; use one of none, cursor",
  },

  // Missing required keys: reported at the key of the incomplete map.
  {
    name: "no base_url",
    text: yaml`
      source:
        timeout: 3s
      streams:
        a: { path: /a }
    `,
    code: "missing_key",
    line: 1,
    column: 1,
    message: "missing required key `base_url`",
    path: "source",
  },
  {
    name: "no path",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          records: $.data
    `,
    code: "missing_key",
    line: 4,
    column: 3,
    message: "a stream needs `path` (what to request) or `values` (its records, listed)",
    path: "streams.a",
  },
  {
    name: "no streams",
    text: yaml`
      source:
        base_url: https://x.test
    `,
    code: "missing_key",
    line: 1,
    column: 1,
    message: "missing required key `streams`",
  },
  {
    name: "bearer without token",
    text: yaml`
      source:
        base_url: https://x.test
        auth:
          type: bearer
      streams:
        a: { path: /a }
    `,
    code: "missing_key",
    line: 3,
    column: 3,
    message: "missing required key `token`",
  },
  {
    name: "next_url without next",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          paginate:
            type: next_url
    `,
    code: "missing_key",
    line: 6,
    column: 5,
    message: "missing required key `next`",
  },
  {
    name: "oauth2 refresh_token grant without a refresh token",
    text: yaml`
      source:
        base_url: https://x.test
        auth:
          type: oauth2
          token_url: https://x.test/token
          grant_type: refresh_token
      streams:
        a: { path: /a }
    `,
    code: "missing_key",
    line: 3,
    column: 3,
    message: "missing required key `refresh_token`",
  },
  {
    name: "cursor paginator with neither cursor nor cursor_header",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          paginate:
            type: cursor
            param: after
    `,
    code: "missing_key",
    line: 6,
    column: 5,
    message: "needs `cursor`",
  },
  {
    name: "merge mode without primary_key",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
      output:
        mode: merge
    `,
    code: "missing_key",
    line: 4,
    column: 3,
    message: "this stream needs `primary_key`",
    path: "streams.a",
  },
  {
    name: "size_param without size",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          paginate: { type: page, size_param: per_page }
    `,
    code: "missing_key",
    line: 6,
    column: 29,
    message: "`size_param` and `size` go together",
  },

  // Environment variables.
  {
    name: "two missing env variables, both named",
    text: yaml`
      source:
        base_url: \${env.MISSING_ONE}
        auth: { type: bearer, token: "\${env.MISSING_TWO}" }
      streams:
        a: { path: /a }
    `,
    code: "missing_env",
    line: 2,
    column: 13,
    message: "environment variable `MISSING_ONE` is not set",
    count: 2,
  },
  {
    name: "missing env variable inside a string points at the template",
    text: yaml`
      source:
        base_url: https://x.test
        headers:
          X-Key: key-\${env.NOT_SET}
      streams:
        a: { path: /a }
    `,
    code: "missing_env",
    line: 4,
    column: 16,
    message: "`NOT_SET`",
  },

  // YAML itself.
  {
    name: "broken YAML (tab indentation)",
    text: "source:\n\tbase_url: https://x.test\nstreams:\n  a: { path: /a }\n",
    code: "yaml_syntax",
    line: 2,
    column: 1,
    message: "indented with a tab: YAML indents with spaces only",
  },
  {
    name: "broken YAML (unclosed flow map)",
    text: yaml`
      source: { base_url: https://x.test
      streams:
        a: { path: /a }
    `,
    code: "yaml_syntax",
    line: 2,
    column: 1,
  },
  {
    name: "duplicate key",
    text: yaml`
      source:
        base_url: https://x.test
        base_url: https://y.test
      streams:
        a: { path: /a }
    `,
    code: "duplicate_key",
    line: 3,
    column: 3,
    message: "duplicate key `base_url`: it is already set at line 2",
    path: "source.base_url",
  },
  {
    name: "not a map",
    text: "- just\n- a list\n",
    code: "wrong_type",
    line: 1,
    column: 1,
  },
  {
    name: "empty file",
    text: "",
    code: "wrong_type",
    line: 1,
    column: 1,
  },

  // Record schemas.
  {
    name: "schema file that is missing",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a, schema: ok.schema.jsn }
    `,
    code: "schema_missing",
    line: 4,
    column: 26,
    message: "schema file `ok.schema.jsn` not found in",
  },
  {
    name: "schema file outside the schemas folder",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a, schema: ../secret.json }
    `,
    code: "schema_missing",
    line: 4,
    column: 26,
    message: "is not a file name in the schemas folder",
  },
  {
    name: "schema file that is not JSON",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a, schema: not-json.schema.json }
    `,
    code: "schema_invalid",
    line: 4,
    column: 26,
    message: "is not valid JSON",
  },
  {
    name: "schema file that does not compile",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a, schema: bad-type.schema.json }
    `,
    code: "schema_invalid",
    line: 4,
    column: 26,
    message: "schema does not compile",
  },
  {
    name: "inline schema that does not compile",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          schema: { type: object, properties: { id: { type: 12 } } }
    `,
    code: "schema_invalid",
    line: 6,
    column: 13,
    message: "schema does not compile",
  },
  {
    name: "inline schema with an unsupported draft",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          schema: { $schema: "https://json-schema.org/draft/2019-09/schema", type: object }
    `,
    code: "schema_invalid",
    line: 6,
    column: 13,
    message: "unsupported `$schema`",
  },

  {
    name: "an env value that is not a number where one is wanted (the value stays masked)",
    text: yaml`
      source:
        base_url: https://x.test
        concurrency: \${env.CONC}
      streams:
        a: { path: /a }
    `,
    env: { CONC: "eight" },
    code: "wrong_type",
    line: 3,
    column: 16,
    message: "expected a whole number, found `***`",
  },
  {
    name: "a merge (<<) of something that is not a map",
    text: yaml`
      source:
        base_url: https://x.test
        timeout: &t 5s
      streams:
        a:
          <<: *t
          path: /a
    `,
    code: "yaml_syntax",
    line: 6,
    column: 9,
    message: "Merge sources must be maps or map aliases",
  },
  {
    name: "a map that merges itself (an alias loop)",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: &u { <<: *u, path: /a }
    `,
    code: "yaml_syntax",
    line: 4,
    column: 15,
    message: "Excessive alias count",
  },
  {
    name: "a mistake inside merged (<<) settings is shown where it is written",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          <<: &page
            paginate: { type: cursor, cursor: $.next, limt: 5 }
          path: /a
        b: { <<: *page, path: /b }
    `,
    code: "unknown_key",
    line: 6,
    column: 49,
    message: "unknown key `limt`",
  },

  // Templates.
  {
    name: "empty env template",
    text: yaml`
      source:
        base_url: https://x.test
        headers:
          X-Token: \${env.}
      streams:
        a: { path: /a }
    `,
    code: "bad_template",
    line: 4,
    column: 14,
    message: `template \`\${env.}\` does not parse`,
  },
  {
    name: "unterminated template",
    text: yaml`
      source:
        base_url: https://x.test
        headers:
          X-Token: "abc \${env.X"
      streams:
        a: { path: /a }
    `,
    code: "bad_template",
    line: 4,
    column: 19,
    message: `unterminated template \`\${env.X\``,
  },
  {
    name: "unknown namespace",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a/\${foo.x}
    `,
    code: "unknown_namespace",
    line: 5,
    column: 14,
    message: "unknown template namespace `foo`",
  },
  {
    name: "parent template in a stream without parent",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a/\${parent.id}
    `,
    code: "bad_template",
    line: 5,
    column: 14,
    message: `\`\${parent.id}\` cannot be used here`,
  },
  {
    name: "stream placeholder outside output.path",
    text: yaml`
      source:
        base_url: https://x.test
        headers:
          X-Name: \${stream}
      streams:
        a: { path: /a }
    `,
    code: "bad_template",
    line: 4,
    column: 13,
  },
  {
    name: "env template with two names",
    text: yaml`
      source:
        base_url: https://x.test
        headers:
          X: \${env.A.B}
      streams:
        a: { path: /a }
    `,
    code: "bad_template",
    line: 4,
    column: 8,
    message: `expected \`\${env.NAME}\` with one variable name`,
  },

  // Parents.
  {
    name: "parent naming no stream",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        users: { path: /users }
        repos:
          path: /repos
          parent: user
    `,
    code: "unknown_parent",
    line: 7,
    column: 13,
    message: "no stream `user` (did you mean `users`?)",
  },
  {
    name: "parent cycle a → b → a",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          parent: b
        b:
          path: /b
          parent: a
    `,
    code: "parent_cycle",
    line: 6,
    column: 13,
    message: "parent cycle: a → b → a",
  },
  {
    name: "stream that is its own parent",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          parent: a
    `,
    code: "parent_cycle",
    line: 6,
    column: 13,
    message: "cannot be its own parent",
  },
  {
    name: "include_parent without parent",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          include_parent: { pid: id }
    `,
    code: "conflict",
    line: 6,
    column: 5,
  },

  // Cross-key rules.
  {
    name: "body with GET",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          body: { q: 1 }
    `,
    code: "conflict",
    line: 6,
    column: 5,
    message: "a `body` is sent only with `method: POST`",
  },
  {
    name: "cursor in body with GET",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          paginate: { type: cursor, cursor: $.next, in: body }
    `,
    code: "conflict",
    line: 6,
    column: 51,
    message: "needs `method: POST`",
  },
  {
    name: "initial_delay longer than max_delay",
    text: yaml`
      source:
        base_url: https://x.test
        retry: { initial_delay: 2m, max_delay: 30s }
      streams:
        a: { path: /a }
    `,
    code: "conflict",
    line: 3,
    column: 27,
    message: "`initial_delay` (2m00s) is longer than `max_delay` (30.0s)",
  },
  {
    name: "cursor sent as a header under a name that is not a header name",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          paginate: { type: cursor, cursor: $.next, in: header, param: "next cursor" }
    `,
    code: "bad_value",
    line: 6,
    column: 66,
    message: "expected an HTTP header name, found `next cursor`",
  },
  {
    name: "api_key header name that is not a header name",
    text: yaml`
      source:
        base_url: https://x.test
        auth: { type: api_key, name: "api key", value: x }
      streams:
        a: { path: /a }
    `,
    code: "bad_value",
    line: 3,
    column: 32,
    message: "expected an HTTP header name, found `api key`",
  },
  {
    name: "CRLF line ends and a byte order mark",
    text: "\uFEFFsource:\r\n  base_url: https://x.test\r\n  timeout: fast\r\nstreams:\r\n  a: { path: /a }\r\n",
    code: "bad_duration",
    line: 3,
    column: 12,
  },
  {
    name: "several streams writing one file",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a }
        b: { path: /b }
      output:
        path: out/all.jsonl
    `,
    code: "conflict",
    line: 7,
    column: 9,
    message: "every stream would write to the same file",
  },
  {
    name: "several streams writing one DuckDB table",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        eu: { path: /eu }
        us: { path: /us }
      output: { format: duckdb, table: events, mode: append }
    `,
    code: "conflict",
    line: 6,
    column: 34,
    message: "every stream would write to the same table: add `${stream}` to `table`",
  },
  {
    name: "two DuckDB streams whose names differ only in case",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        Users: { path: /u }
        users: { path: /v }
      output: { format: duckdb }
    `,
    code: "conflict",
    line: 5,
    column: 3,
    message: "streams `Users` and `users` would write one table (`users`: duckdb table names ignore case)",
  },
  {
    name: "a stream writing another stream's table of invalid records",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        x: { path: /x }
        x__invalid: { path: /y }
      output: { format: postgres, url: "postgres://h/db" }
    `,
    code: "conflict",
    line: 5,
    column: 3,
    message: "stream `x__invalid` would write table `x__invalid`, where stream `x`'s invalid records go",
  },
  {
    name: "a stream named __proto__",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        __proto__: { path: /a }
        b: { path: /b }
    `,
    code: "bad_value",
    line: 4,
    column: 3,
    message: "a key cannot be `__proto__`: JavaScript reads it as the object's prototype",
  },
  {
    name: "a param named __proto__",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a, params: { __proto__: 1 } }
    `,
    code: "bad_value",
    line: 4,
    column: 28,
    message: "a key cannot be `__proto__`",
  },
  {
    name: "two SQLite streams whose names differ only in case",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        Users: { path: /u }
        users: { path: /v }
      output: { format: sqlite }
    `,
    code: "conflict",
    line: 5,
    column: 3,
    message: "streams `Users` and `users` would write one table (`users`: sqlite table names ignore case)",
  },
  {
    name: "primary_key that is not an output field",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          fields: { id: $.id }
          primary_key: idd
    `,
    code: "bad_value",
    line: 7,
    column: 18,
    message: "`idd` is not an output field (did you mean `id`?)",
  },
  // Format 1.1: values, windows, body paths.
  {
    name: "windows.step zero",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /export
          windows: { step: 0, start: 2024-01-01 }
    `,
    code: "bad_value",
    line: 6,
    column: 22,
    message: "`step` must be longer than zero",
    path: "streams.a.windows.step",
  },
  {
    name: "windows.step negative",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /export
          windows: { step: -1d, start: 2024-01-01 }
    `,
    code: "bad_duration",
    line: 6,
    column: 22,
    path: "streams.a.windows.step",
  },
  {
    name: "windows.step not a duration",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /export
          windows: { step: daily, start: 2024-01-01 }
    `,
    code: "bad_duration",
    line: 6,
    column: 22,
    path: "streams.a.windows.step",
  },
  {
    name: "windows.step shorter than a day with format: date",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /export
          windows: { step: 6h, start: 2024-01-01, format: date }
    `,
    code: "bad_value",
    line: 6,
    column: 22,
    message: "shorter than one unit of `format: date` (1 day)",
  },
  {
    name: "windows.start after end",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /export
          windows: { step: 1d, start: 2024-03-01, end: 2024-02-01 }
    `,
    code: "bad_value",
    line: 6,
    column: 33,
    message: "`start` 2024-03-01 is after `end` 2024-02-01",
    path: "streams.a.windows.start",
  },
  {
    name: "windows.start a date-time on a day that does not exist (no roll-over to March)",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /export
          windows: { step: 1d, start: 2024-02-30T00:00:00Z }
    `,
    code: "bad_value",
    line: 6,
    column: 33,
    message: "`start` is not a date, a date-time or a duration",
    path: "streams.a.windows.start",
  },
  {
    name: "windows.end a date-time on a day that does not exist",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /export
          windows: { step: 1d, start: 2024-01-01, end: "2024-04-31 10:00" }
    `,
    code: "bad_value",
    line: 6,
    column: 50,
    message: "`end` is not `now`, a date or a date-time",
    path: "streams.a.windows.end",
  },
  {
    name: "windows together with incremental",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /export
          windows: { step: 1d, start: 2024-01-01 }
          incremental: { cursor_field: t, param: since }
    `,
    code: "conflict",
    line: 7,
    column: 5,
    message: "`windows` and `incremental` cannot go together",
    path: "streams.a.incremental",
  },
  {
    name: "window template in a stream without windows",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /export
          params: { from: "\${window.start}" }
    `,
    code: "bad_template",
    line: 6,
    column: 22,
    message: "`${window.start}` cannot be used here",
    path: "streams.a.params.from",
  },
  {
    name: "window template in a field value of a stream without windows",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /export
          fields: { w: { value: "\${window.start}" } }
    `,
    code: "bad_template",
    line: 6,
    column: 28,
    message: "`${window.start}` cannot be used here",
    path: "streams.a.fields.w.value",
  },
  {
    name: "window template with an unknown bound",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /export
          params: { from: "\${window.first}" }
          windows: { step: 1d, start: 2024-01-01 }
    `,
    code: "bad_template",
    line: 6,
    column: 22,
    message: "expected `${window.start}`, `${window.end}` or `${window.last}`",
  },
  {
    name: "parent template in a path, no parent",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /repos/\${parent.owner}/issues
    `,
    code: "bad_template",
    line: 5,
    column: 18,
    message: "`${parent.owner}` cannot be used here",
  },
  {
    name: "request key beside values",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        repos:
          values: [a, b]
          params: { x: 1 }
    `,
    code: "conflict",
    line: 6,
    column: 5,
    message: "`params` cannot stand beside `values`",
    path: "streams.repos.params",
  },
  {
    name: "dotted body path on a GET stream",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /graphql
          paginate: { type: cursor, cursor: $.next, in: body, param: variables.after }
    `,
    code: "conflict",
    line: 6,
    column: 51,
    message: "needs `method: POST`",
    path: "streams.a.paginate.in",
  },
  {
    name: "page in: body on a GET stream",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /search
          paginate: { type: page, in: body, page_param: page.number }
    `,
    code: "conflict",
    line: 6,
    column: 33,
    message: "needs `method: POST`",
    path: "streams.a.paginate.in",
  },
  // Format 1.1: response rules, field specs, filter, response formats.
  {
    name: "1.1: unknown action",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          on_response:
            - { status: 404, action: ignor }
    `,
    code: "bad_value",
    line: 7,
    column: 32,
    message: "found `ignor` (did you mean `ignore`?)",
    path: "streams.a.on_response[0].action",
  },
  {
    name: "1.1: rule without a condition",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          on_response:
            - { action: ignore }
    `,
    code: "missing_key",
    line: 7,
    column: 9,
    message: "a response rule needs a condition",
    path: "streams.a.on_response[0]",
  },
  {
    name: "1.1: unknown condition",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          on_response:
            - { stauts: 404, action: ignore }
    `,
    code: "unknown_key",
    line: 7,
    column: 11,
    message: "unknown key `stauts` (did you mean `status`?)",
    path: "streams.a.on_response[0].stauts",
  },
  {
    name: "1.1: equals without match",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          on_response:
            - { status: 200, equals: ratelimited, action: retry }
    `,
    code: "conflict",
    line: 7,
    column: 24,
    message: "`equals` compares the first match of `match`",
    path: "streams.a.on_response[0].equals",
  },
  {
    name: "1.1: refresh_auth without oauth2",
    text: yaml`
      source:
        base_url: https://x.test
        on_response:
          - { status: 401, action: refresh_auth }
      streams:
        a: { path: /a }
    `,
    code: "conflict",
    line: 4,
    column: 30,
    message: "it needs `source.auth.type: oauth2`",
    path: "source.on_response[0].action",
  },
  {
    name: "1.1: unknown field type",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          fields:
            n: { path: $.n, type: int }
    `,
    code: "bad_value",
    line: 7,
    column: 29,
    message: "found `int`",
    path: "streams.a.fields.n.type",
  },
  {
    name: "1.1: unknown from",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          fields:
            t: { path: $.t, type: date-time, from: epoch_s }
    `,
    code: "bad_value",
    line: 7,
    column: 46,
    message: "found `epoch_s` (did you mean `epoch_ms`?)",
    path: "streams.a.fields.t.from",
  },
  {
    name: "1.1: from without date-time",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          fields:
            t: { path: $.t, type: integer, from: epoch }
    `,
    code: "conflict",
    line: 7,
    column: 38,
    message: "it needs `type: date-time`",
    path: "streams.a.fields.t.from",
  },
  {
    name: "1.1: filter that does not parse",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          filter: "@.type == "
    `,
    code: "bad_value",
    line: 6,
    column: 13,
    message: "the filter expression does not parse",
    path: "streams.a.filter",
  },
  {
    name: "1.1: filter with a name that is not the record (every record would be dropped)",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          filter: "$.type != 'bot' && amount > 0"
    `,
    code: "bad_value",
    line: 6,
    column: 13,
    message: "the filter uses `$` and `amount`, which are not defined: the record is `@` (`@.type`)",
    path: "streams.a.filter",
  },
  {
    name: "1.1: records with jsonl",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          response: { format: jsonl }
          records: $.data
    `,
    code: "conflict",
    line: 7,
    column: 5,
    message: "`records` is not used with `response.format: jsonl`",
    path: "streams.a.records",
  },
  {
    name: "1.1: JSONPath pagination key with csv",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          response: { format: csv }
          paginate: { type: cursor, cursor: $.next }
    `,
    code: "conflict",
    line: 7,
    column: 31,
    message: "`cursor` is a JSONPath into a JSON body",
    path: "streams.a.paginate.cursor",
  },
  {
    name: "1.1: csv options without format: csv (the body would be read as JSON)",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          response: { csv: { delimiter: ";" } }
    `,
    code: "conflict",
    line: 6,
    column: 17,
    message: "`csv` options go with `format: csv`",
    path: "streams.a.response.csv",
  },
  {
    name: "1.1: a csv delimiter that is a double quote",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          response: { format: csv, csv: { delimiter: '"' } }
    `,
    code: "bad_value",
    line: 6,
    column: 48,
    message: "`delimiter`: a double quote or a line break cannot separate cells",
    path: "streams.a.response.csv.delimiter",
  },
  {
    name: "1.1: a csv delimiter of two characters ('\\t' in single quotes) is one issue",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          response: { format: csv, csv: { delimiter: '\\t' } }
    `,
    code: "bad_value",
    line: 6,
    column: 48,
    path: "streams.a.response.csv.delimiter",
  },
  {
    name: "1.1: a csv delimiter outside the Basic Multilingual Plane",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          response: { format: csv, csv: { delimiter: "😀" } }
    `,
    code: "bad_value",
    line: 6,
    column: 48,
    message: "a character outside the Basic Multilingual Plane cannot be a delimiter",
    path: "streams.a.response.csv.delimiter",
  },
  {
    name: "1.1: a csv delimiter that is a line break",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          response: { format: csv, csv: { delimiter: "\\r" } }
    `,
    code: "bad_value",
    line: 6,
    column: 48,
    message: "a double quote or a line break cannot separate cells",
    path: "streams.a.response.csv.delimiter",
  },
  {
    name: "1.1: run template in a request path",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a/\${run.id}
    `,
    code: "bad_template",
    line: 5,
    column: 14,
    message: "`${run.id}` cannot be used here",
    path: "streams.a.path",
  },
  {
    name: "1.1: unknown run field in a value",
    text: yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          path: /a
          fields:
            r: { value: "\${run.name}" }
    `,
    code: "bad_template",
    line: 7,
    column: 20,
    message: "expected `${run.id}` or `${run.started_at}`",
    path: "streams.a.fields.r.value",
  },
];

describe("invalid pipeline files", () => {
  it("has a table of at least 35 cases", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(35);
  });

  it.each(CASES.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const issues = issuesOf(project, c.text, c.env ?? {});
    expect(issues.length, issues.map(formatIssue).join("\n")).toBe(c.count ?? 1);
    const issue = issues.find((i) => i.code === c.code);
    expect(issue, `no ${c.code} issue among:\n${issues.map(formatIssue).join("\n")}`).toBeDefined();
    expect({ line: issue!.line, column: issue!.column }).toEqual({ line: c.line, column: c.column });
    expect(issue!.file).toBe("pipelines/test.yaml");
    if (c.message) expect(issue!.message).toContain(c.message);
    if (c.path !== undefined) expect(issue!.path).toBe(c.path);
    // Every issue carries the source line with a caret under its column.
    const sourceLine = c.text.split(/\r?\n/)[c.line - 1];
    if (sourceLine?.trim()) {
      expect(issue!.excerpt).toContain(sourceLine);
      expect(issue!.excerpt!.split("\n")[1].indexOf("^")).toBe(
        issue!.excerpt!.split("|")[0].length + 1 + c.column,
      );
    }
  });

  it("reports each problem once (no duplicate issues at one place)", () => {
    for (const c of CASES) {
      const issues = issuesOf(project, c.text, c.env ?? {});
      const keys = issues.map((i) => `${i.line}:${i.column}:${i.code}:${i.message}`);
      expect(new Set(keys).size, c.name).toBe(keys.length);
      const sameCodeSamePlace = issues.filter(
        (i) => i.code === c.code && i.line === c.line && i.column === c.column,
      );
      expect(sameCodeSamePlace.length, c.name).toBe(1);
    }
  });

  it("a mistake in merged (<<) text is one issue that names every place merging it", () => {
    const issues = issuesOf(
      project,
      yaml`
        source:
          base_url: https://x.test
        streams:
          a: { <<: &page { paginate: { type: cursor, cursor: $.next, limt: 5 } }, path: /a }
          b: { <<: *page, path: /b }
          c: { <<: *page, path: /c }
      `,
    );
    expect(issues).toHaveLength(1);
    expect(issues[0].path).toBe("streams.a.paginate.limt");
    expect(issues[0].hint).toBe(
      "also at `streams.b.paginate.limt`, `streams.c.paginate.limt`, which merge this text",
    );
  });

  it("collects every error of a file, in file order", () => {
    const issues = issuesOf(
      project,
      yaml`
        source:
          base_url: https://x.test
          timeout: fast
        streams:
          a:
            path: /a
            pagnate: { type: none }
            records: $.data[
      `,
    );
    expect(issues.map((i) => [i.code, i.line, i.column])).toEqual([
      ["bad_duration", 3, 12],
      ["unknown_key", 7, 5],
      ["bad_jsonpath", 8, 14],
    ]);
    const err = new ConfigError(issues);
    expect(err.message).toContain("pipelines/test.yaml:3:12: error[bad_duration] `source.timeout`");
    expect(err.message).toContain("pipelines/test.yaml:7:5: error[unknown_key]");
    expect(err.message).toContain("hint: did you mean `paginate`?");
  });

  it("names every missing env variable in each missing_env issue", () => {
    const issues = issuesOf(
      project,
      yaml`
        source:
          base_url: \${env.MISSING_ONE}
          auth: { type: bearer, token: "\${env.MISSING_TWO}" }
        streams:
          a: { path: /a }
      `,
    );
    const missing = issues.filter((i) => i.code === "missing_env");
    expect(missing.map((i) => [i.line, i.column])).toEqual([
      [2, 13],
      [3, 33],
    ]);
    for (const i of missing) {
      expect(i.hint).toContain("MISSING_ONE");
      expect(i.hint).toContain("MISSING_TWO");
    }
    expect(missing[1].message).toContain("`MISSING_TWO`");
    // Set them and the same file loads: the error was only about the variables.
    expect(
      issuesOf(
        project,
        yaml`
      source:
        base_url: \${env.MISSING_ONE}
        auth: { type: bearer, token: "\${env.MISSING_TWO}" }
      streams:
        a: { path: /a }
    `,
        { MISSING_ONE: "https://x.test", MISSING_TWO: "t0ken" },
      ),
    ).toEqual([]);
  });

  it("an env variable set to an empty string is set", () => {
    const text = yaml`
      source:
        base_url: https://x.test
        headers: { X-Empty: "\${env.EMPTY}" }
      streams:
        a: { path: /a }
    `;
    expect(issuesOf(project, text, { EMPTY: "" })).toEqual([]);
  });

  it("streams writing their own tables are fine: a file per stream, `${ stream }` with spaces", () => {
    const two = (output: string) => yaml`
      source:
        base_url: https://x.test
      streams:
        eu: { path: /eu }
        us: { path: /us }
        EU: { path: /eu2 }
      output: ${output}
    `;
    expect(issuesOf(project, two('{ format: duckdb, path: "out/${stream}.duckdb", table: events }'))).toEqual(
      [],
    );
    expect(issuesOf(project, two('{ format: sqlite, path: "out/${stream}.db" }'))).toEqual([]);
    expect(
      issuesOf(project, two('{ format: postgres, url: "postgres://h/db", table: "raw_${ stream }" }')),
    ).toEqual([]);
    // The same with one DuckDB file: `eu` and `EU` are one table there.
    expect(
      issuesOf(project, two('{ format: duckdb, table: "raw_${ stream }" }')).map((i) => i.message),
    ).toEqual([
      expect.stringContaining(
        "streams `eu` and `EU` would write one table (`raw_EU`: duckdb table names ignore case)",
      ),
    ]);
  });
});

describe("pipeline names", () => {
  const BAD = ["../etc/passwd", "a/b", "..", "x y", ".", "a\\b", "", "../../x", "/abs"];

  it.each(BAD)("refuses %j with bad_name", (name) => {
    expect(checkPipelineName(name)?.code).toBe("bad_name");
  });

  it("accepts file names", () => {
    for (const name of ["github", "my-pipe_1", "v1.2", "A.b-c_d"]) expect(checkPipelineName(name)).toBeNull();
  });

  it("refuses a bad name before any file is opened (bad_name, not not_found)", () => {
    const { dir, cleanup } = tempDir();
    try {
      // A project whose pipelines folder does not exist: any file access would give not_found.
      const project = makeProject(path.join(dir, "nowhere"), null, {});
      expect(existsSync(project.pipelinesDir)).toBe(false);
      for (const name of ["../etc/passwd", "a/b", "..", "x y"]) {
        const error = configErrorOf(() => loadPipeline(project, name, {}));
        expect(error.issues.map((i) => i.code)).toEqual(["bad_name"]);
      }
      // The control: a good name that does not exist is not_found.
      const err = configErrorOf(() => loadPipeline(project, "nothing", {}));
      expect(err.issues[0].code).toBe("not_found");
    } finally {
      cleanup();
    }
  });
});
