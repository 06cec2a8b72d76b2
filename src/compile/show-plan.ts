import path from "node:path";
import { MASK, type Redactor, SENSITIVE_HEADERS } from "../shared/secrets.js";
import { formatDuration, stepText } from "../shared/units.js";
import type {
  AuthPlan,
  ExecutionPlan,
  FieldPlan,
  PaginatorPlan,
  ParamsPlan,
  ResponseRulePlan,
  StreamPlan,
  StreamPreview,
} from "./plan.js";

/** The plan as it may be shown: auth fields, sensitive headers and every secret value masked. */
export function redactPlan(plan: ExecutionPlan, redactor: Redactor): ExecutionPlan {
  const maskHeaders = (h: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(h).map(([k, v]) => [k, SENSITIVE_HEADERS.has(k.toLowerCase()) ? MASK : v]),
    );
  const auth = { ...plan.auth } as Record<string, unknown>;
  for (const k of ["token", "password", "value", "clientSecret", "refreshToken", "clientId", "username"]) {
    if (typeof auth[k] === "string" && auth[k] !== "") auth[k] = MASK;
  }
  const masked: ExecutionPlan = {
    ...plan,
    auth: auth as AuthPlan,
    source: { ...plan.source, headers: maskHeaders(plan.source.headers) },
    streams: plan.streams.map((s) => ({
      ...s,
      request: { ...s.request, headers: maskHeaders(s.request.headers) },
    })),
  };
  if (plan.auth.type === "api_key" && plan.auth.in === "query") {
    const name = plan.auth.name;
    const maskParam = (p: ParamsPlan) => (name in p ? { ...p, [name]: MASK } : p);
    masked.source.params = maskParam(masked.source.params);
    masked.streams = masked.streams.map((s) => ({
      ...s,
      request: { ...s.request, params: maskParam(s.request.params) },
    }));
  }
  return redactor.value(masked);
}

/**
 * A readable plan for `pipelines plan`. Takes a redacted plan, and the partition sources and
 * windows of each stream when known (run/plan-preview.ts).
 */
export function formatPlan(plan: ExecutionPlan, previews: Record<string, StreamPreview> = {}): string {
  const rel = (p: string) => path.relative(plan.dirs.root, p) || p;
  const src = plan.source;
  const lines: string[] = [];
  lines.push(`Pipeline ${plan.pipeline}${plan.description ? ` — ${plan.description}` : ""}`);
  lines.push(`  file        ${plan.file}`);
  lines.push(`  source      ${src.baseUrl}`);
  lines.push(`  auth        ${describeAuth(plan.auth)}`);
  lines.push(
    `  requests    timeout ${formatDuration(src.timeoutMs)}, at most ${src.concurrency} in flight, responses up to ${formatBytes(src.maxResponseBytes)}`,
  );
  lines.push(
    `  retry       ${src.retry.maxAttempts} attempts, backoff ${formatDuration(src.retry.initialDelayMs)} → ${formatDuration(src.retry.maxDelayMs)} with jitter, on ${src.retry.onStatus.join(", ")}, resets and timeouts`,
  );
  if (src.rateLimit) {
    const rl = src.rateLimit;
    const windows = [
      rl.perSecond && `${rl.perSecond}/s`,
      rl.perMinute && `${rl.perMinute}/min`,
      rl.perHour && `${rl.perHour}/h`,
      rl.perDay && `${rl.perDay}/day`,
    ].filter(Boolean);
    const headers = rl.remainingHeader
      ? `; waits when \`${rl.remainingHeader}\` reaches 0 until \`${rl.resetHeader ?? "?"}\``
      : "";
    lines.push(`  rate limit  ${windows.length ? windows.join(", ") : "no fixed budget"}${headers}`);
  }
  if (src.allowedOrigins.length)
    lines.push(`  allowed     ${src.allowedOrigins.join(", ")} (for pagination links; no credentials)`);
  lines.push(
    `  validation  invalid records: ${plan.validation.invalidRecords}, max invalid ratio ${plan.validation.maxInvalidRatio}, drift: ${plan.validation.drift}`,
  );
  for (const s of plan.streams) lines.push("", ...formatStream(s, previews[s.name], rel));
  return lines.join("\n");
}

function formatStream(
  s: StreamPlan,
  preview: StreamPreview | undefined,
  rel: (p: string) => string,
): string[] {
  const lines: string[] = [];
  lines.push(`Stream ${s.name}${s.parent ? ` (once per record of ${s.parent})` : ""}`);
  if (!s.values)
    lines.push(`  request     ${s.request.method} ${s.request.url}${formatParams(s.request.params)}`);
  const headers = Object.entries(s.request.headers);
  if (headers.length) lines.push(`  headers     ${headers.map(([k, v]) => `${k}: ${v}`).join(", ")}`);
  if (s.request.body !== null) lines.push(`  body        ${JSON.stringify(s.request.body)}`);
  if (!s.values) lines.push(`  paginate    ${describePaginator(s.paginator)}`);
  lines.push(...describeRecords(s, preview));
  if (s.flatten) lines.push(`  flatten     nested objects joined with "${s.flatten.separator}"`);
  if (s.includeParent)
    lines.push(`  from parent ${s.includeParent.map((p) => `${p.field} ← ${p.from.join(".")}`).join(", ")}`);
  lines.push(
    `  schema      ${s.schema ? (s.schema.file ? rel(s.schema.file) : "inline") : "none (records are not validated)"}`,
  );
  if (s.primaryKey) lines.push(`  primary key ${s.primaryKey.join(", ")}`);
  if (s.incremental) {
    const inc = s.incremental;
    lines.push(
      `  incremental largest \`${inc.cursorField}\` sent as ${inc.in} \`${inc.param}\`${inc.initial !== null ? `, first run ${inc.initial}` : ""}${inc.lookbackMs ? `, minus ${formatDuration(inc.lookbackMs)}` : ""}`,
    );
  }
  if (s.parent)
    lines.push(
      `  on failure  ${s.onPartitionError === "skip" ? "skip that parent's partition" : "fail the stream"}`,
    );
  lines.push(
    `  output      ${s.output.format} ${s.output.where ?? (s.output.singer?.stdout ? "standard output" : rel(s.output.path))} (${describeMode(s)}${s.output.csv?.escapeFormulas ? ", formulas escaped" : ""})`,
  );
  return lines;
}

/** Partitions, windows, response format and rules, records, fields, exclude, filter. */
function describeRecords(s: StreamPlan, preview: StreamPreview | undefined): string[] {
  const lines: string[] = [];
  const p = preview?.partitions;
  if (p) lines.push(`  partitions  ${describePartitions(p)}`);
  const w = preview?.windows;
  if (s.windows && w) {
    const range = w.count ? `, ${w.first} to ${w.last}` : " (the range is empty: nothing to fetch)";
    lines.push(
      `  windows     ${w.count} of ${w.step} (${s.windows.format}) from ${s.windows.start} to ${s.windows.end}${range}${s.windows.lookbackMs ? `; later runs resume at the saved end minus ${stepText(s.windows.lookbackMs)}` : ""}`,
    );
  }
  const r = s.response;
  if (r && (r.format !== "json" || r.compression !== "auto")) {
    const csv =
      r.format === "csv"
        ? `, delimiter ${JSON.stringify(r.csv.delimiter)}${r.csv.header ? ", header row" : ", no header (c1, c2, …)"}`
        : "";
    lines.push(`  response    ${r.format}${csv}, compression ${r.compression}`);
  }
  for (const rule of s.onResponse ?? []) lines.push(`  on response ${describeRule(rule)}`);
  if (s.values) lines.push(`  records     ${s.values.length} listed in the file (values: no request)`);
  else if (r?.format === "jsonl" || r?.format === "csv")
    lines.push(`  records     every ${r.format === "csv" ? "row" : "line"}`);
  else lines.push(`  records     ${s.records}${s.errorPath ? ` (error when ${s.errorPath} matches)` : ""}`);
  if (s.fields) lines.push(`  fields      ${s.fields.map(describeField).join(", ")}`);
  if (s.exclude?.length) lines.push(`  exclude     ${s.exclude.map((x) => x.join(".")).join(", ")}`);
  if (s.filter) lines.push(`  filter      ${s.filter} (other records are dropped, counted as filtered)`);
  if (!s.write) lines.push("  write       no (records are validated and kept for child streams only)");
  return lines;
}

function describePartitions(p: NonNullable<StreamPreview["partitions"]>): string {
  const n = p.count === null ? "" : ` (${p.count})`;
  if (p.from === "values")
    return `none: its records are listed in the file${n}, one partition each for its children`;
  if (p.from === "parent") return `one per record of ${p.parent}${n}`;
  return p.parent ? `one per window of each record of ${p.parent}${n}` : `one per window${n}`;
}

function describeField(f: FieldPlan): string {
  if (f.value !== undefined) return `${f.name} = ${JSON.stringify(f.value)}`;
  const conv = [
    f.type && `as ${f.type}`,
    f.from && `from ${f.from}`,
    f.default !== undefined && f.default !== null && `default ${JSON.stringify(f.default)}`,
  ].filter(Boolean);
  return `${f.name} ← ${f.path}${f.multi ? " (list)" : ""}${conv.length ? ` (${conv.join(", ")})` : ""}`;
}

function describeRule(r: ResponseRulePlan): string {
  const when = [
    r.statuses && `status ${r.statuses.join("/")}`,
    r.classes && `status ${r.classes.map((c) => `${c}xx`).join("/")}`,
    r.match && (r.hasEquals ? `${r.match} = ${JSON.stringify(r.equals)}` : `${r.match} matches`),
    r.bodyContains !== null && `body contains ${JSON.stringify(r.bodyContains)}`,
  ].filter(Boolean);
  const wait = r.waitMs !== null ? ` after ${stepText(r.waitMs)}` : "";
  const msg = r.message ? ` ("${r.message}")` : "";
  return `${when.length ? when.join(", ") : "any response"} → ${r.action}${wait}${msg} [${r.at}]`;
}

function describeMode(s: StreamPlan): string {
  if (s.output.mode === "merge") return `merge by ${s.primaryKey?.join(", ")}`;
  return s.output.mode;
}

function formatParams(params: ParamsPlan): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) q.append(k, x);
  const s = decodeURIComponent(q.toString().replaceAll("+", "%20"));
  return s ? `?${s}` : "";
}

function describeAuth(a: AuthPlan): string {
  switch (a.type) {
    case "none":
      return "none";
    case "bearer":
      return `bearer (Authorization: ${a.scheme} ${MASK})`;
    case "basic":
      return `basic (user ${a.username})`;
    case "api_key":
      return `api_key in ${a.in} \`${a.name}\``;
    case "oauth2":
      return `oauth2 ${a.grantType} from ${a.tokenUrl}${a.scope ? ` (scope ${a.scope})` : ""}, client auth in ${a.clientAuth}, refreshed ${formatDuration(a.refreshBeforeMs)} before expiry`;
  }
}

export function describePaginator(p: PaginatorPlan): string {
  const limits = [
    p.maxPages !== null && `at most ${p.maxPages} pages`,
    p.stopOnEmptyPage
      ? "stops at the first empty page"
      : p.type !== "none" &&
        p.type !== "offset" &&
        p.type !== "page" &&
        `follows up to ${p.maxEmptyPages} empty pages`,
  ].filter(Boolean);
  const tail = limits.length ? `; ${limits.join(", ")}` : "";
  switch (p.type) {
    case "none":
      return "none (one page)";
    case "cursor":
      return `cursor from ${p.cursorPath ?? `header ${p.cursorHeader}`} sent as ${p.in} \`${p.param}\`${p.hasMore ? `, stops when ${p.hasMore} is false` : ""}${p.done ? `, stops when ${p.done} is true` : ""}${tail}`;
    case "offset":
      return `offset \`${p.offsetParam}\` from ${p.start}, \`${p.limitParam}\`=${p.limit}, advanced by records received until an empty page${p.total ? ` or ${p.total}` : ""}${tail}`;
    case "page":
      return `page \`${p.pageParam}\` from ${p.start}${p.sizeParam ? `, \`${p.sizeParam}\`=${p.size}` : ""}, until an empty page${p.totalPages ? ` or past ${p.totalPages}` : ""}${tail}`;
    case "link_header":
      return `Link header rel="${p.rel}"${tail}`;
    case "next_url":
      return `next URL from ${p.next}${p.hasMore ? `, stops when ${p.hasMore} is false` : ""}${p.done ? `, stops when ${p.done} is true` : ""}${tail}`;
  }
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${+(n / 1024 ** 3).toFixed(1)}GiB`;
  if (n >= 1024 ** 2) return `${+(n / 1024 ** 2).toFixed(1)}MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)}KiB`;
  return `${n}B`;
}
