/**
 * The execution plan: a plain, serializable description of a run, compiled from a pipeline file
 * with no network. Runtime objects (paginators, writers, clients) are created from it per run.
 */
export interface ExecutionPlan {
  version: 1;
  pipeline: string;
  file: string;
  description: string | null;
  source: SourcePlan;
  auth: AuthPlan;
  /** Parents before their children. */
  streams: StreamPlan[];
  validation: ValidationPlan;
  dirs: { root: string; out: string; reports: string; state: string; schemas: string };
  /** `reports.keep`: runs whose reports (and history) are kept. Absent: the schema's default. */
  keepReports?: number;
}

export interface SourcePlan {
  baseUrl: string;
  origin: string;
  headers: Record<string, string>;
  params: ParamsPlan;
  timeoutMs: number;
  retry: RetryPlan;
  rateLimit: RateLimitPlan | null;
  concurrency: number;
  /** `workers`: threads doing record work, the main thread included (src/run/record-workers/). */
  workers: number | "auto";
  /** Origins (scheme://host:port) pagination links may lead to, besides base_url's. */
  allowedOrigins: string[];
  maxResponseBytes: number;
  /** `max_response_size` when the file or the project defaults set it (jsonl/csv bodies), else null. */
  maxStreamedBytes?: number | null;
}

export type ParamsPlan = Record<string, string | string[]>;

export interface RetryPlan {
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  onStatus: number[];
}

export interface RateLimitPlan {
  perSecond: number | null;
  perMinute: number | null;
  perHour: number | null;
  perDay: number | null;
  remainingHeader: string | null;
  resetHeader: string | null;
}

export type AuthPlan =
  | { type: "none" }
  | { type: "bearer"; token: string; scheme: string }
  | { type: "basic"; username: string; password: string }
  | { type: "api_key"; name: string; value: string; in: "header" | "query" }
  | {
      type: "oauth2";
      tokenUrl: string;
      grantType: "client_credentials" | "refresh_token";
      clientId: string | null;
      clientSecret: string | null;
      refreshToken: string | null;
      scope: string | null;
      clientAuth: "body" | "basic";
      refreshBeforeMs: number;
    };

export interface PaginatorCommon {
  maxPages: number | null;
  maxEmptyPages: number;
  stopOnEmptyPage: boolean;
}

export type PaginatorPlan = PaginatorCommon &
  (
    | { type: "none" }
    | {
        type: "cursor";
        cursorPath: string | null;
        cursorHeader: string | null;
        param: string;
        in: "query" | "body" | "header";
        hasMore: string | null;
        done: string | null;
      }
    | {
        type: "offset";
        offsetParam: string;
        limitParam: string;
        limit: number;
        start: number;
        total: string | null;
        /** Absent: query. */
        in?: "query" | "body";
      }
    | {
        type: "page";
        pageParam: string;
        start: number;
        sizeParam: string | null;
        size: number | null;
        totalPages: string | null;
        /** Absent: query. */
        in?: "query" | "body";
      }
    | { type: "link_header"; rel: string }
    | { type: "next_url"; next: string; hasMore: string | null; done: string | null }
  );

export type PaginatorType = PaginatorPlan["type"];

export interface RequestPlan {
  method: "GET" | "POST";
  /**
   * `path` joined to base_url. For child streams (`templated`), it, `params`, `headers` and `body`
   * hold `${parent.…}` templates filled per parent record (`$${` is a literal `${`). A child's
   * path that starts with a template (`${parent.url}`) is kept as written: fill it, then join it
   * to base_url unless it is an absolute URL.
   */
  url: string;
  params: ParamsPlan;
  headers: Record<string, string>;
  body: unknown;
  templated: boolean;
}

export interface FieldPlan {
  name: string;
  /** The JSONPath read from the record ("" for a computed `{ value }` field). */
  path: string;
  multi: boolean;
  /** `{ path, type, from, default }`: the conversion (absent: the value as it is). */
  type?: "string" | "integer" | "number" | "boolean" | "date-time";
  from?: "epoch" | "epoch_ms";
  /** Written for a missing, `null` or `""` value (absent: null). */
  default?: unknown;
  /** `{ value }`: a constant, or a string whose templates are filled per record. */
  value?: unknown;
}

/** One `on_response` rule: every condition given must hold. */
export interface ResponseRulePlan {
  /** Where it was written: `streams.x.on_response[0]`, `source.on_response[1]`, `streams.x.error_path`. */
  at: string;
  /** Exact statuses, and classes as their first digit (2 for `2xx`); both null: any status. */
  statuses: number[] | null;
  classes: number[] | null;
  match: string | null;
  /** With `match`: compare its first match to `equals` (hasEquals false: any non-empty match). */
  hasEquals: boolean;
  equals: unknown;
  bodyContains: string | null;
  action: "retry" | "fail" | "ignore" | "refresh_auth";
  message: string | null;
  waitMs: number | null;
}

/** `response`: how bodies are read. */
export interface ResponsePlan {
  format: "json" | "jsonl" | "csv";
  csv: { delimiter: string; header: boolean };
  compression: "auto" | "gzip" | "none";
}

export interface OutputPlan {
  format: "jsonl" | "json" | "csv" | "sqlite" | "postgres" | "duckdb" | "parquet" | "singer";
  mode: "replace" | "append" | "merge";
  /** Absolute path of the file this stream is committed to. */
  path: string;
  /** The commit guard's settings (commit-guard.ts); absent: the schema's defaults. */
  guard?: { allowEmpty: boolean; maxVolumeDrop: number };
  /** csv only: `output.csv` (absent: the schema's defaults). */
  csv?: { escapeFormulas: boolean };
  /**
   * Database formats (postgres, duckdb, sqlite): the pipeline under which the database keeps the
   * stream's incremental state (`_pipelines_state`), committed with its rows.
   */
  stateKey?: string;
  /** Database formats: the stream's table (`output.table` filled in) and its settings. */
  table?: TableOutputPlan;
  /** postgres only: the server (`url` is a secret: shown masked). */
  postgres?: { url: string; schema: string };
  /** singer only: messages go to standard output (no `path`, or `run --singer`), not to `path`. */
  singer?: { stdout: boolean };
  /**
   * Where the stream's invalid records are quarantined when not beside `path` (singer: under the
   * default output folder).
   */
  quarantine?: string;
  /** How the target is named in summaries and reports when it is not a file (a database table). */
  where?: string;
}

export interface TableOutputPlan {
  name: string;
  metadataColumns: boolean;
  nested: "json" | "tables";
}

export interface ValidationPlan {
  invalidRecords: "skip" | "keep" | "fail";
  maxInvalidRatio: number;
  drift: "warn" | "fail" | "ignore";
}

export interface StreamPlan {
  name: string;
  parent: string | null;
  request: RequestPlan;
  paginator: PaginatorPlan;
  records: string;
  errorPath: string | null;
  /** Stream rules, then source rules, then `error_path` (absent: none). */
  onResponse?: ResponseRulePlan[];
  /** Absent: `json`. */
  response?: ResponsePlan;
  fields: FieldPlan[] | null;
  /** `exclude`: dotted paths as segments (absent: none). */
  exclude?: string[][] | null;
  /** `filter`: the expression (absent: none). */
  filter?: string | null;
  flatten: { separator: string } | null;
  includeParent: { field: string; from: string[] }[] | null;
  schema: { file: string | null; schema: Record<string, unknown> } | null;
  primaryKey: string[] | null;
  incremental: {
    cursorField: string;
    param: string;
    in: "query" | "body";
    initial: string | number | null;
    lookbackMs: number;
  } | null;
  onPartitionError: "fail" | "skip";
  output: OutputPlan;
  /** `values`: the stream's records, listed in the file (it sends no request). */
  values: Record<string, unknown>[] | null;
  /** `write: false`: records are validated, counted and kept for children, not written. */
  write: boolean;
  windows: WindowsPlan | null;
  /**
   * The `${parent.…}` paths the request uses (in order of first use): the values that identify a
   * partition in the saved state.
   */
  partitionFields: string[][];
}

export interface WindowsPlan {
  stepMs: number;
  /** As written: a date, a date-time or a duration before now (resolved when the run starts). */
  start: string;
  /** `now`, a date or a date-time. */
  end: string;
  format: "iso8601" | "date" | "epoch" | "epoch_ms";
  lookbackMs: number;
}

/**
 * What `pipelines plan` adds to a stream (run/plan-preview.ts): where its partitions come from,
 * and the windows a first run (or --full-refresh) would fetch, computed now.
 */
export interface StreamPreview {
  /**
   * `values`: the stream lists its own records; `parent`: one partition per parent record
   * (`count` when the parent lists its records); `windows`: one partition per window, of each
   * parent record when `parent` is set. Null: one request sequence.
   */
  partitions: {
    from: "values" | "parent" | "windows";
    parent: string | null;
    count: number | null;
  } | null;
  windows: {
    count: number;
    first: string | null;
    last: string | null;
    step: string;
    /** `from start` unless a saved position moves it (a later run starts there, minus lookback). */
    start: string;
    end: string;
  } | null;
}
