// Generated from schemas/pipeline.schema.json by scripts/gen-types.mjs. Do not edit.

/**
 * How requests authenticate. Every auth field is a secret.
 */
export type Auth = AuthNone | AuthBearer | AuthBasic | AuthApiKey | AuthOAuth2;
/**
 * How the next page is requested and when to stop.
 */
export type Paginate =
  PaginateNone | PaginateCursor | PaginateOffset | PaginatePage | PaginateLinkHeader | PaginateNextUrl;
/**
 * A JSONPath in jsonpath-plus syntax, starting with `$` (e.g. `$.data`, `$.paging.next.after`, `$['@odata.nextLink']`, `$.items[?(@.active)]`). Filters run in the library's safe evaluator, never native eval.
 */
export type Jsonpath = string;

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
   * Other origins (`https://host[:port]`, or a bare host name meaning https) that pagination links may lead to. Credentials are never sent to them.
   */
  allowed_hosts?: string[];
  /**
   * Larger response bodies fail the request.
   */
  max_response_size?: string | number;
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
 * One endpoint pulled page by page. Each record goes: select (`records`) → `fields` → `flatten` → `include_parent` → validate against `schema` → write.
 */
export interface Stream {
  /**
   * Joined to `source.base_url`; an absolute URL is used as is. May use `${parent.…}`.
   */
  path: string;
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
  paginate?: Paginate;
  /**
   * Map of output field → JSONPath into the record. A path that can match several values (wildcard, slice, filter, `..`) gives an array; any other path gives its value, or null.
   */
  fields?: {
    [k: string]: Jsonpath;
  };
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
   * `body` sets a top-level JSON field.
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
