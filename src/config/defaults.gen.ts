// Generated from schemas/pipeline.schema.json by scripts/gen-types.mjs. Do not edit.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: some defaults are templates (`table`)

/** The `default` of every setting that has one in the format, by schema definition. */
export const DEFAULTS = {
  pipeline: {
    version: 1,
  },
  source: {
    timeout: "30s",
    concurrency: 4,
    workers: "auto",
    max_response_size: "64MiB",
  },
  retry: {
    max_attempts: 5,
    initial_delay: "1s",
    max_delay: "60s",
    on_status: [408, 425, 429, 500, 502, 503, 504],
  },
  authBearer: {
    scheme: "Bearer",
  },
  authBasic: {
    password: "",
  },
  authApiKey: {
    in: "header",
  },
  authOAuth2: {
    client_auth: "body",
    refresh_before: "60s",
  },
  stream: {
    write: true,
    method: "GET",
    records: "$",
    flatten: false,
    on_partition_error: "fail",
  },
  stream_flatten: {
    separator: "_",
  },
  response: {
    format: "json",
    compression: "auto",
  },
  response_csv: {
    delimiter: ",",
    header: true,
  },
  paginateCommon: {
    max_empty_pages: 3,
    stop_on_empty_page: false,
  },
  paginateCursor: {
    param: "cursor",
    in: "query",
  },
  paginateOffset: {
    offset_param: "offset",
    limit_param: "limit",
    limit: 100,
    start: 0,
    in: "query",
  },
  paginatePage: {
    page_param: "page",
    start: 1,
    in: "query",
  },
  paginateLinkHeader: {
    rel: "next",
  },
  windows: {
    end: "now",
    format: "iso8601",
    lookback: "0",
  },
  incremental: {
    in: "query",
  },
  output: {
    format: "jsonl",
    mode: "replace",
    allow_empty: false,
    max_volume_drop: 0.9,
    schema: "public",
    table: "${stream}",
    metadata_columns: true,
    nested: "json",
  },
  output_csv: {
    escape_formulas: false,
  },
  reports: {
    keep: 30,
  },
  validation: {
    invalid_records: "skip",
    max_invalid_ratio: 0.05,
    drift: "warn",
  },
} as const;
