// Generated from schemas/pipeline.schema.json by scripts/gen-types.mjs. Do not edit.

/**
 * How requests authenticate. Every auth field is a secret.
 */
export type Auth = AuthNone | AuthBearer | AuthBasic | AuthApiKey | AuthOAuth2;
export type StatusCondition = number | string;
/**
 * Response rules for every stream (a stream's own rules are checked first). The first rule whose conditions all hold decides; none holding means the built-in behaviour.
 */
export type OnResponse = ResponseRule[];
/**
 * Response rules of this stream, checked before `source.on_response`; `error_path` is this list's last rule.
 */
export type OnResponse1 = ResponseRule[];
/**
 * How the next page is requested and when to stop.
 */
export type Paginate =
  PaginateNone | PaginateCursor | PaginateOffset | PaginatePage | PaginateLinkHeader | PaginateNextUrl;

/**
 * A `pipelines` pipeline file, format version 1. One REST API pull: where to fetch, how to authenticate and paginate, which records to keep, how to validate and where to write them.
 */
export interface PipelineFile {
  /**
   * Format version. Only `1` exists.
   */
  version?: 1;
  /**
   * What this pipeline pulls; shown by `pipelines list`.
   */
  description?: string;
  source: Source;
  /**
   * Map from stream name to stream. Each stream is one endpoint pulled page by page. Streams run concurrently within `source.concurrency`.
   */
  streams: {
    [k: string]: Stream;
  };
  output?: Output;
  validation?: Validation;
  reports?: Reports;
  /**
   * When `pipelines worker --schedules` runs this pipeline: a cron expression in UTC (`0 * * * *`: every hour). A run still going when the next one is due is skipped, and that is reported. `run` ignores it.
   */
  schedule?: string;
}
/**
 * The API: base URL, shared headers and params, auth, timeouts, retries, rate budget and concurrency.
 */
export interface Source {
  /**
   * Scheme + host (+ base path). A stream's `path` is appended to it; a leading `/` in the path keeps the base path.
   */
  base_url: string;
  /**
   * Headers sent with every request. `Authorization`, `Cookie` and `Proxy-Authorization` are secrets. Numbers and booleans are sent as written (`X-Api-Version: 2`).
   */
  headers?: {
    [k: string]: string | number | boolean;
  };
  params?: ParamMap;
  auth?: Auth;
  /**
   * Time limit for one request, from connect to the last body byte.
   */
  timeout?: string | number;
  retry?: Retry;
  rate_limit?: RateLimit;
  /**
   * Requests in flight at once for the whole pipeline.
   */
  concurrency?: number;
  /**
   * Threads that do record work (decode, shape, check and serialize records), the main thread included: `1` keeps everything on the main thread; `auto` uses min(cores - 1, 4) worker threads beside it (none on one core). A JSONL or CSV export's big bodies go to one worker thread per stream.
   */
  workers?: number | "auto";
  /**
   * Other origins (`https://host[:port]`, or a bare host name meaning https) that pagination links may lead to. Credentials are never sent to them.
   */
  allowed_hosts?: string[];
  /**
   * Larger response bodies fail the request.
   */
  max_response_size?: string | number;
  on_response?: OnResponse;
}
/**
 * Query parameters. Values are strings, numbers or booleans; a list repeats the parameter. Bracketed names such as `page[size]` are sent as written (percent-encoded).
 */
export interface ParamMap {
  [k: string]: string | number | boolean | (string | number | boolean)[];
}
export interface AuthNone {
  /**
   * No authentication.
   */
  type: "none";
}
export interface AuthBearer {
  /**
   * `Authorization: <scheme> <token>`.
   */
  type: "bearer";
  /**
   * The token; use `${env.NAME}`.
   */
  token: string;
  /**
   * Word before the token, e.g. `token` for GitHub classic tokens.
   */
  scheme?: string;
}
export interface AuthBasic {
  /**
   * HTTP Basic authentication.
   */
  type: "basic";
  username: string;
  /**
   * May be empty (Stripe-style keys).
   */
  password?: string;
}
export interface AuthApiKey {
  /**
   * A key sent in a header or query parameter.
   */
  type: "api_key";
  /**
   * Header or query parameter name.
   */
  name: string;
  /**
   * The key; use `${env.NAME}`.
   */
  value: string;
  in?: "header" | "query";
}
export interface AuthOAuth2 {
  /**
   * OAuth 2.0 access tokens, fetched and refreshed by the runner.
   */
  type: "oauth2";
  /**
   * The token endpoint.
   */
  token_url: string;
  grant_type: "client_credentials" | "refresh_token";
  client_id?: string;
  client_secret?: string;
  /**
   * Required with `grant_type: refresh_token`. A rotated token from the server replaces it in the state file.
   */
  refresh_token?: string;
  scope?: string;
  /**
   * Send client credentials in the form body or as HTTP Basic.
   */
  client_auth?: "body" | "basic";
  /**
   * Refresh this long before the token expires (or at half its lifetime when that is shorter).
   */
  refresh_before?: string | number;
}
/**
 * Retries of failed requests: connection errors, resets, timeouts, truncated bodies and the statuses in `on_status`.
 */
export interface Retry {
  /**
   * Tries per request, the first included.
   */
  max_attempts?: number;
  /**
   * Backoff before the first retry; doubles each retry, with full jitter.
   */
  initial_delay?: string | number;
  /**
   * Longest wait between tries. A Retry-After or rate-limit reset longer than this fails the request at once.
   */
  max_delay?: string | number;
  /**
   * HTTP statuses that are retried.
   */
  on_status?: number[];
}
/**
 * Proactive request budget shared by every stream of the pipeline; all windows are enforced at once.
 */
export interface RateLimit {
  requests_per_second?: number;
  requests_per_minute?: number;
  requests_per_hour?: number;
  requests_per_day?: number;
  /**
   * Response header with the requests left in the API's window (e.g. `x-ratelimit-remaining`). At 0 the runner waits until `reset_header`.
   */
  remaining_header?: string;
  /**
   * Response header with the window's reset: seconds to wait, an epoch time (above 10^9), or an HTTP or ISO 8601 date.
   */
  reset_header?: string;
}
/**
 * When all its conditions hold, `action` decides what the response means.
 */
export interface ResponseRule {
  /**
   * A status code, a list of codes, or a class `2xx` … `5xx`.
   */
  status?: number | string | [StatusCondition, ...StatusCondition[]];
  /**
   * Holds when this JSONPath over the JSON body matches something other than null, false, "", [] or {} (with `equals`: when its first match equals that value).
   */
  match?: string;
  /**
   * With `match`: the value its first match must equal.
   */
  equals?: {
    [k: string]: unknown;
  };
  /**
   * Holds when the raw body contains this text.
   */
  body_contains?: string;
  /**
   * `ignore`: an empty last page; `retry`: retried within `retry.max_attempts`; `fail`: the stream fails; `refresh_auth`: a fresh token, then one more try.
   */
  action: "retry" | "fail" | "ignore" | "refresh_auth";
  /**
   * Added to the stream's error when the rule ends it: `fail`, or a `retry` or `refresh_auth` that did not help (an ignored response is counted, without its message).
   */
  message?: string;
  /**
   * With `action: retry`: the delay before the retry (overrides `Retry-After`).
   */
  wait?: string | number;
}
/**
 * One endpoint pulled page by page. Each record goes: select (`records`) → `fields` → `exclude` → `flatten` → `include_parent` → `filter` → validate against `schema` → write.
 */
export interface Stream {
  /**
   * The stream's records, listed here instead of requested (no request is sent): a list of maps (each a record as it is) or scalars (each `{ value: <scalar> }`), or a string that is one `${env.…}` template, split on commas. Replaces `path`; only `fields`, `schema`, `primary_key`, `write`, `flatten` may stand beside it.
   */
  values?: ({} | string | number | boolean)[] | string;
  /**
   * `false`: the records are validated, counted, reported and drive child streams, but are not written (no file, table or message).
   */
  write?: boolean;
  windows?: Windows;
  /**
   * Joined to `source.base_url`; an absolute URL is used as is. May use `${parent.…}`.
   */
  path?: string;
  method?: "GET" | "POST";
  params?: ParamMap;
  /**
   * Merged over `source.headers` (names compared without case).
   */
  headers?: {
    [k: string]: string | number | boolean;
  };
  /**
   * JSON body (POST). Strings may use templates.
   */
  body?: {
    [k: string]: unknown;
  };
  /**
   * JSONPath; every match is a record, and a single matched array is unwrapped into its elements. No match, or `null`, is an empty page.
   */
  records?: string;
  /**
   * JSONPath; on a 2xx response, a non-empty match makes the response an error with that value as its message.
   */
  error_path?: string;
  on_response?: OnResponse1;
  response?: Response;
  paginate?: Paginate;
  /**
   * Map of output field → JSONPath into the record, `{ path, type, from, default }` (a typed field) or `{ value }` (a constant or template). A path that can match several values (wildcard, slice, filter, `..`) gives an array; any other path gives its value, or null.
   */
  fields?: {
    [k: string]: string | FieldSpec;
  };
  /**
   * Dotted paths removed from each record after `fields` (to drop a few large fields).
   */
  exclude?: string[];
  /**
   * A JSONPath filter expression on the record as written (`@.type != 'bot' && @.amount > 0`), run in the safe evaluator: records for which it is false are dropped before validation and counted as filtered.
   */
  filter?: string;
  /**
   * `true` or `{ separator: "_" }`: nested objects become `a_b` fields (after `fields`).
   */
  flatten?:
    | boolean
    | {
        separator?: string;
      };
  /**
   * JSON Schema of the record as written: a file name in `schemas/`, or an inline schema (draft-07 or 2020-12 by `$schema`).
   */
  schema?: string | {};
  /**
   * Field name or list of names; used by `mode: merge` and to drop duplicates within a run.
   */
  primary_key?: string | [string, ...string[]];
  incremental?: Incremental;
  /**
   * Name of another stream; this stream runs once per valid parent record, with `${parent.…}` in templates.
   */
  parent?: string;
  include_parent?: StringMap;
  /**
   * For a child stream: when the request for one parent fails after retries (a 404 for a deleted parent, say), `fail` fails the stream, `skip` records the failure with the parent key in the report and goes on.
   */
  on_partition_error?: "fail" | "skip";
}
/**
 * Cut the stream's range into consecutive date windows of `step`, each fetched by its own request sequence (`${window.start}` inclusive, `${window.end}` exclusive, `${window.last}` inclusive).
 */
export interface Windows {
  /**
   * Window length.
   */
  step: string | number;
  /**
   * Where the first run starts: a date, a date-time, or a duration meaning that long before now (`90d`).
   */
  start: string;
  /**
   * `now` (fixed when the run starts), a date or a date-time.
   */
  end?: string;
  /**
   * How window bounds are written.
   */
  format?: "iso8601" | "date" | "epoch" | "epoch_ms";
  /**
   * A later run starts this long before where the last one ended.
   */
  lookback?: string | number;
}
/**
 * How response bodies are read: `json` (one document), `jsonl` (a record per line) or `csv` (a record per row); `jsonl` and `csv` are processed as they arrive.
 */
export interface Response {
  /**
   * `jsonl` and `csv` bodies are processed as they arrive (flat memory); `records` is not used with them.
   */
  format?: "json" | "jsonl" | "csv";
  csv?: {
    /**
     * The cell separator (one character).
     */
    delimiter?: string;
    /**
     * The first row names the fields; `false` names them `c1`, `c2`, …
     */
    header?: boolean;
  };
  /**
   * `auto` follows `Content-Encoding`; `gzip` reads a gzip file whatever the headers say; `none` reads the body as sent.
   */
  compression?: "auto" | "gzip" | "none";
}
export interface PaginateNone {
  /**
   * One page only.
   */
  type: "none";
  /**
   * Stop after this many pages.
   */
  max_pages?: number;
  /**
   * Empty pages in a row that still carry a pointer, followed before stopping with a warning.
   */
  max_empty_pages?: number;
  /**
   * Any empty page ends the stream.
   */
  stop_on_empty_page?: boolean;
}
export interface PaginateCursor {
  /**
   * A cursor from the body or a header is sent with the same request.
   */
  type: "cursor";
  /**
   * JSONPath to the next cursor in the body (its first match).
   */
  cursor?: string;
  /**
   * Response header holding the next cursor.
   */
  cursor_header?: string;
  /**
   * Name the cursor is sent under.
   */
  param?: string;
  /**
   * `body` sets a JSON body field; a dotted `param` (`variables.after`) is a nested field, created where missing.
   */
  in?: "query" | "body" | "header";
  /**
   * JSONPath; stop when it is false.
   */
  has_more?: string;
  /**
   * JSONPath; stop when it is true.
   */
  done?: string;
  /**
   * Stop after this many pages.
   */
  max_pages?: number;
  /**
   * Empty pages in a row that still carry a pointer, followed before stopping with a warning.
   */
  max_empty_pages?: number;
  /**
   * Any empty page ends the stream.
   */
  stop_on_empty_page?: boolean;
}
export interface PaginateOffset {
  /**
   * `offset`/`limit` parameters; the offset advances by the records received.
   */
  type: "offset";
  offset_param?: string;
  limit_param?: string;
  limit?: number;
  start?: number;
  /**
   * JSONPath to the total record count; stops once reached (when given and not null).
   */
  total?: string;
  /**
   * `body` (with `method: POST`) sets the values in the JSON body; a dotted name is a nested field.
   */
  in?: "query" | "body";
  /**
   * Stop after this many pages.
   */
  max_pages?: number;
  /**
   * Empty pages in a row that still carry a pointer, followed before stopping with a warning.
   */
  max_empty_pages?: number;
  /**
   * Any empty page ends the stream.
   */
  stop_on_empty_page?: boolean;
}
export interface PaginatePage {
  /**
   * A page number parameter, incremented by one.
   */
  type: "page";
  page_param?: string;
  start?: number;
  size_param?: string;
  size?: number;
  /**
   * JSONPath to the number of pages; stops past it (when given).
   */
  total_pages?: string;
  /**
   * `body` (with `method: POST`) sets the values in the JSON body; a dotted name is a nested field.
   */
  in?: "query" | "body";
  /**
   * Stop after this many pages.
   */
  max_pages?: number;
  /**
   * Empty pages in a row that still carry a pointer, followed before stopping with a warning.
   */
  max_empty_pages?: number;
  /**
   * Any empty page ends the stream.
   */
  stop_on_empty_page?: boolean;
}
export interface PaginateLinkHeader {
  /**
   * The RFC 8288 `Link` header's URL with `rel` (GitHub style).
   */
  type: "link_header";
  rel?: string;
  /**
   * Stop after this many pages.
   */
  max_pages?: number;
  /**
   * Empty pages in a row that still carry a pointer, followed before stopping with a warning.
   */
  max_empty_pages?: number;
  /**
   * Any empty page ends the stream.
   */
  stop_on_empty_page?: boolean;
}
export interface PaginateNextUrl {
  /**
   * A next-page URL in the body (PokeAPI, OData style).
   */
  type: "next_url";
  /**
   * JSONPath to the next URL, absolute or relative to the request URL.
   */
  next: string;
  /**
   * JSONPath; stop when it is false.
   */
  has_more?: string;
  /**
   * JSONPath; stop when it is true.
   */
  done?: string;
  /**
   * Stop after this many pages.
   */
  max_pages?: number;
  /**
   * Empty pages in a row that still carry a pointer, followed before stopping with a warning.
   */
  max_empty_pages?: number;
  /**
   * Any empty page ends the stream.
   */
  stop_on_empty_page?: boolean;
}
/**
 * A typed field `{ path, type, from, default }`, or a computed one `{ value }`.
 */
export interface FieldSpec {
  /**
   * JSONPath into the record.
   */
  path?: string;
  /**
   * Converts the value: `"42"` → 42, `"4.50"` → 4.5, `"true"` → true, numbers → their JSON text, a date-time → `YYYY-MM-DDTHH:MM:SSZ` in UTC. A value that does not convert makes the record invalid.
   */
  type?: "string" | "integer" | "number" | "boolean" | "date-time";
  /**
   * With `type: date-time`: the value is a number (or numeric string) of seconds (`epoch`) or milliseconds (`epoch_ms`) since 1970.
   */
  from?: "epoch" | "epoch_ms";
  /**
   * The value written when the value is missing, `null` or `""`.
   */
  default?: {
    [k: string]: unknown;
  };
  /**
   * A constant, or a string with templates: `${env.X}`, `${parent.x}` (child streams), `${window.start}`, `${window.end}`, `${window.last}` (windowed streams), `${run.id}`, `${run.started_at}`, `${pipeline}`, `${stream}`.
   */
  value?: {
    [k: string]: unknown;
  };
}
/**
 * Only fetch what changed since the last successful run.
 */
export interface Incremental {
  /**
   * Output field whose largest value is saved after a successful run.
   */
  cursor_field: string;
  /**
   * Request parameter that receives the saved value.
   */
  param: string;
  in?: "query" | "body";
  /**
   * Value sent on the first run.
   */
  initial?: string | number;
  /**
   * Subtracted from a saved date-time value before it is sent.
   */
  lookback?: string | number;
}
/**
 * Map of output field → parent field (dotted path), copied into every child record.
 */
export interface StringMap {
  [k: string]: string;
}
/**
 * Where and how records are written.
 */
export interface Output {
  format?: "jsonl" | "json" | "csv" | "sqlite" | "postgres" | "duckdb" | "parquet" | "singer";
  /**
   * File path, relative to the project root; `${stream}` and `${pipeline}` are filled in. Default `out/${pipeline}/${stream}.<format>`, or `out/${pipeline}.db` for sqlite, `out/${pipeline}.duckdb` for duckdb (one file for all streams). Not used by postgres; singer writes to standard output without it.
   */
  path?: string;
  /**
   * `merge` upserts by `primary_key`.
   */
  mode?: "replace" | "append" | "merge";
  /**
   * Let a `replace` run that wrote no record replace an output that has records. Off by default: such a run does not commit, keeps its (empty) output beside as `<name>.preview.<ext>` and exits 3 (as `--commit-partial` does for one run).
   */
  allow_empty?: boolean;
  /**
   * A `replace` run that writes fewer records than the last successful run by more than this share (0.9: a drop of more than 90%) does not commit: it keeps its output beside as `<name>.preview.<ext>` and exits 3. 1 turns the check off.
   */
  max_volume_drop?: number;
  /**
   * postgres: the server's connection URL, `postgres://user:password@host:5432/db?sslmode=require` (a secret: write `${env.DATABASE_URL}`). Required for postgres.
   */
  url?: string;
  /**
   * postgres: the database schema the tables are created in.
   */
  schema?: string;
  /**
   * postgres and duckdb: the table a stream is written to; `${stream}` and `${pipeline}` are filled in.
   */
  table?: string;
  /**
   * postgres, duckdb and parquet: add the columns `_run_id` and `_loaded_at` to every row (a merged row carries the run that last wrote it).
   */
  metadata_columns?: boolean;
  /**
   * postgres and duckdb: arrays of objects stored as JSON in their row, or (`tables`) as child tables `<table>__<field>` carrying the parent's primary key and `_index` (needs `primary_key`).
   */
  nested?: "json" | "tables";
  /**
   * Settings of the csv format.
   */
  csv?: {
    /**
     * Prefix with `'` every string cell and column name that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR), except strings that are plain numbers such as `-5`. Off by default: the file keeps the API's values exactly, for programs that read it.
     */
    escape_formulas?: boolean;
  };
}
/**
 * What happens to records that do not match the stream's schema.
 */
export interface Validation {
  /**
   * `skip` quarantines them, `keep` writes them too, `fail` fails the stream at the first one.
   */
  invalid_records?: "skip" | "keep" | "fail";
  /**
   * Above this share of invalid records the stream fails (exit 3) and its output is not committed.
   */
  max_invalid_ratio?: number;
  /**
   * Fields not in the schema and type changes: report them, fail the stream (exit 3), or ignore them.
   */
  drift?: "warn" | "fail" | "ignore";
}
/**
 * The run reports in `reports/<pipeline>/`.
 */
export interface Reports {
  /**
   * How many runs' reports are kept per pipeline; older `<run-id>.json` and `.html` files are removed after each run (`latest.*` always stays). The run history in the state folder keeps the same number of runs.
   */
  keep?: number;
}
