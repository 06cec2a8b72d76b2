import type { StreamPlan } from "../compile/plan.js";
import type { PageRequest, StopReason } from "../http/paginators/paginator.js";
import { type CompiledPath, compileJsonPath } from "../lang/jsonpath.js";
import type { FieldStats } from "../records/quality-types.js";
import { formatNumber } from "../shared/format.js";
import type { Suspicion } from "./stream-result.js";

/**
 * Named checks for a run that ends well on the wire but looks wrong in the data: a `records`
 * path that matched nothing while the body holds records elsewhere, pagination that stopped for
 * want of a pointer after a full page, a field that is null in every record. Each is a named
 * warning (summary, `--json`, report); the commit guard (commit-guard.ts) refuses to commit when
 * one `decides`.
 */

/** Nodes looked at in a page body when searching it for arrays of objects (a bounded scan). */
const SCAN_NODES = 2000;
const SCAN_DEPTH = 4;
/** Query parameters that ask for a page size. */
const SIZE_PARAM =
  /^(\$?top|limit|per_?page|page_?size|pagesize|size|max_?results|page\[(size|limit)\]|take|rows)$/i;
/** Body members that say how many records there are in all. */
const TOTAL_KEY =
  /^(@odata\.count|total|total_?count|total_?results|total_?items|totalCount|totalItems|totalResults)$/i;
/** Codes of a pointer paginator that stopped because the pointer was not in the page. */
const POINTER_MISSING = new Set(["no_next_url", "no_cursor", "no_next_link"]);

export interface PageWatchState {
  pages: number;
  records: number;
  emptyMatch: { page: number; holders: string[] } | null;
  lastBody: unknown;
  lastCount: number;
}

/** Watches the pages of one request sequence (a whole stream, not a child partition). */
export class PageWatch {
  private pages = 0;
  private records = 0;
  private readonly selector: CompiledPath | null;
  private emptyMatch: { page: number; holders: string[] } | null = null;
  private lastBody: unknown = null;
  private lastCount = 0;

  /** `asked`: the page size the first request asks for (pageSizeAsked). */
  constructor(
    private readonly stream: Pick<StreamPlan, "records">,
    private readonly asked: { param: string; size: number } | null,
  ) {
    this.selector = stream.records === "$" ? null : compileJsonPath(stream.records);
  }

  /** Called once per page, in order: counts, and scans the first body whose `records` matched nothing. */
  see(body: unknown, count: number): void {
    this.pages++;
    this.records += count;
    this.lastBody = body;
    this.lastCount = count;
    if (count === 0 && !this.emptyMatch && this.selector && this.selector.first(body) === undefined) {
      const holders = arraysOfObjects(body);
      if (holders.length) this.emptyMatch = { page: this.pages, holders };
    }
  }

  /** What it has seen so far, as plain data (page processing moves to a worker: page-work/). */
  state(): PageWatchState {
    const { pages, records, emptyMatch, lastBody, lastCount } = this;
    return { pages, records, emptyMatch, lastBody, lastCount };
  }

  /** Continues from `state()` of another PageWatch of the same sequence. */
  resume(s: PageWatchState): void {
    ({
      pages: this.pages,
      records: this.records,
      emptyMatch: this.emptyMatch,
      lastBody: this.lastBody,
      lastCount: this.lastCount,
    } = s);
  }

  /**
   * The suspicions once the sequence has ended with `stop`. `streamRecords`: for one window of a
   * stream, the records of the stream's windows up to this one (a wrong path decides only when
   * the stream has none).
   */
  verdict(stop: StopReason | null, streamRecords?: number): Suspicion[] {
    const out: Suspicion[] = [];
    const m = this.emptyMatch;
    if (m) {
      const none = (streamRecords ?? this.records) === 0;
      const every =
        streamRecords === undefined
          ? ` (and on every page: 0 records from ${this.pages} ${this.pages === 1 ? "page" : "pages"})`
          : " (and the stream has no record so far)";
      out.push({
        code: "records_path_matched_nothing",
        decides: none,
        message: `\`records: ${this.stream.records}\` matched nothing on page ${m.page}${none ? every : ""}, but the body holds arrays of objects: ${m.holders.join("; ")}. Probably a wrong \`records\` path`,
      });
    }
    if (stop && POINTER_MISSING.has(stop.code)) {
      const full = this.pages === 1 && this.asked !== null && this.lastCount === this.asked.size;
      const total = totalIn(this.lastBody);
      const more = total !== null && total > this.records;
      if (full || more) {
        const why = full
          ? `page 1 was full (${this.lastCount} records, \`${this.asked!.param}=${this.asked!.size}\` asked)`
          : `the body says ${formatNumber(total!)} records in all (\`${formatNumber(total!)}\` in ${totalKeyIn(this.lastBody)}) and ${formatNumber(this.records)} were read`;
        const hints = pointerHints(this.lastBody);
        out.push({
          code: "next_path_missing",
          decides: false,
          message: `pagination stopped after page ${this.pages}: ${stop.message}, but ${why}. Probably a wrong \`next\` path${hints.length ? `; the body has ${hints.join(", ")}` : ""}`,
        });
      }
    }
    return out;
  }
}

/**
 * `fields` whose path found nothing: null or absent in every record, while the schema does not
 * say the field may be null.
 */
export function fieldSuspicions(stream: StreamPlan, stats: FieldStats[], seen: number): Suspicion[] {
  if (!stream.fields || seen === 0) return [];
  const byName = new Map(stats.map((f) => [f.name, f]));
  const props = (stream.schema?.schema?.properties ?? {}) as Record<string, { type?: unknown }>;
  const out: Suspicion[] = [];
  for (const f of stream.fields) {
    if (f.multi) continue;
    const s = byName.get(f.name);
    if (s && s.present - s.nulls > 0) continue;
    const type = Object.hasOwn(props, f.name) ? props[f.name]?.type : undefined;
    if (type === "null" || (Array.isArray(type) && type.includes("null"))) continue;
    out.push({
      code: "field_always_null",
      decides: false,
      message: `field \`${f.name}\` (\`${f.path}\`) was null in 100% of ${formatNumber(seen)} records: probably a wrong path`,
    });
  }
  return out;
}

/** `$.a`, or `$['@odata.nextLink']` for a name that is not an identifier. */
function member(base: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${base}.${key}` : `${base}['${key.replace(/'/g, "\\'")}']`;
}

/** Where a body holds non-empty arrays of objects (a bounded scan), largest first, at most 3. */
export function arraysOfObjects(body: unknown): string[] {
  const found: { path: string; n: number }[] = [];
  const queue: { v: unknown; path: string; depth: number }[] = [{ v: body, path: "$", depth: 0 }];
  let visited = 0;
  while (queue.length && visited < SCAN_NODES) {
    const { v, path, depth } = queue.shift()!;
    visited++;
    if (Array.isArray(v)) {
      const first = v[0];
      if (v.length && first !== null && typeof first === "object" && !Array.isArray(first))
        found.push({ path, n: v.length });
      continue;
    }
    if (v === null || typeof v !== "object" || depth >= SCAN_DEPTH) continue;
    for (const key of Object.keys(v)) {
      if (visited + queue.length >= SCAN_NODES) break;
      queue.push({ v: (v as Record<string, unknown>)[key], path: member(path, key), depth: depth + 1 });
    }
  }
  return found
    .sort((a, b) => b.n - a.n)
    .slice(0, 3)
    .map((f) => `\`${f.path}\` has ${formatNumber(f.n)} ${f.n === 1 ? "object" : "objects"}`);
}

/** The page size the first request asks for, from its params or its URL's query. */
export function pageSizeAsked(request: PageRequest): { param: string; size: number } | null {
  const pairs: [string, string][] = [];
  try {
    for (const [k, v] of new URL(request.url).searchParams) pairs.push([k, v]);
  } catch {
    // a URL that does not parse has no query to read
  }
  for (const [k, v] of Object.entries(request.params)) pairs.push([k, Array.isArray(v) ? v[0] : v]);
  for (const [k, v] of pairs) {
    const n = Number(v);
    if (SIZE_PARAM.test(k) && Number.isInteger(n) && n > 0) return { param: k, size: n };
  }
  return null;
}

/** Top-level members of a body, and those of its top-level objects (`meta`, `pagination`…). */
function* members(body: unknown): Generator<[string, unknown]> {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return;
  for (const [k, v] of Object.entries(body)) {
    yield [member("$", k), v];
    if (v !== null && typeof v === "object" && !Array.isArray(v))
      for (const [k2, v2] of Object.entries(v).slice(0, 50)) yield [member(member("$", k), k2), v2];
  }
}

function totalEntry(body: unknown): [string, number] | null {
  for (const [p, v] of members(body)) {
    const key = p.replace(/^.*[.[]'?/, "").replace(/'?\]$/, "");
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    if (TOTAL_KEY.test(key) && typeof n === "number" && Number.isInteger(n) && n >= 0) return [p, n];
  }
  return null;
}

const totalIn = (body: unknown): number | null => totalEntry(body)?.[1] ?? null;
const totalKeyIn = (body: unknown): string => `\`${totalEntry(body)?.[0] ?? "?"}\``;

/** Members that look like the next page's pointer: a name with `next` or `cursor`, a value. */
function pointerHints(body: unknown): string[] {
  const out: string[] = [];
  for (const [p, v] of members(body)) {
    if (out.length >= 3) break;
    if (/next|cursor/i.test(p) && (typeof v === "string" || typeof v === "number") && v !== "")
      out.push(`\`${p}\``);
  }
  return out;
}
