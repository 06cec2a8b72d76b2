import { recordEnds } from "../../http/paginators/guards.js";
import { compileJsonPath } from "../../lang/jsonpath.js";
import { RunError } from "../../shared/errors.js";
import { type PageScan, scanPaths } from "../../shared/json-spans.js";
import { NOT_JSON, parseJsonBytes } from "../../shared/json-text.js";
import type { PageHead } from "../read-pages.js";
import { type ComparedPage, type ScanKeys, sameRecordTexts, scanHead } from "./page-scan.js";

/** A member name an array has too: an index or `length` (JSONPath reads them on arrays). */
const ARRAY_MEMBER = /^(\d+|length)$/;

/** A page whose head was read: scanned (records not parsed yet) or parsed. */
export interface ReadPage {
  head: PageHead;
  bytes: Uint8Array;
  /** Where its records lie (a scanned page), or null. */
  scan: PageScan | null;
  /** Its body and records when it was parsed to read its head, else null. */
  parsed: { body: unknown; records: unknown[] } | null;
}

/**
 * What the paginator and its guards need of each page, read in page order: a scan of the page's
 * bytes when the records path and the paginator's paths are member names (page-scan.ts), so the
 * next request leaves before the page is parsed; else a parse. Keeps the previous page for the
 * loop guard's comparison (guards.ts).
 */
export class PageHeads {
  private readonly paths: { path: string; compiled: ReturnType<typeof compileJsonPath> }[];
  private readonly scanKeys: ScanKeys | null;
  /** The records path as member names, or null when it is not made of them. */
  readonly recordKeys: readonly string[] | null;
  /** The previous page, for the guards' comparison of consecutive pages. */
  previous: ComparedPage | null = null;

  constructor(
    records: string,
    /** The paths the paginator reads (pathsRead). */
    paths: readonly string[],
    private readonly select: (body: unknown) => unknown[],
    /** Whether the scan reads the records strictly for the byte check (ScanPaths.strict). */
    strict = false,
  ) {
    this.paths = paths.map((path) => ({ path, compiled: compileJsonPath(path) }));
    this.recordKeys = compileJsonPath(records).keys;
    // PIPELINES_PAGE_SCAN=off parses every page first (tests and A/B). Paths a scan would never
    // read are left to the parse from the start: not member names, a member an array has too
    // (`0`, `length`), and what scanPaths refuses (`$` as a value path, value paths beside `$`).
    const keys = [this.recordKeys, ...this.paths.map((p) => p.compiled.keys)];
    const names = keys.every((k) => k?.every((name) => !ARRAY_MEMBER.test(name)))
      ? (keys as (readonly string[])[])
      : null;
    const prepared =
      process.env.PIPELINES_PAGE_SCAN !== "off" && names ? scanPaths(names[0], names.slice(1), strict) : null;
    this.scanKeys = prepared ? { paths, prepared } : null;
  }

  /** Whether pages are scanned (the records path and the paginator's paths are member names). */
  get scans(): boolean {
    return this.scanKeys !== null;
  }

  /** The page's head, by a scan or else a parse; null when its body is not JSON. */
  read(bytes: Uint8Array): ReadPage | null {
    return this.scanned(bytes) ?? this.parsed(bytes);
  }

  /** The page's head from a scan of its bytes, or null (page-scan.ts). */
  scanned(bytes: Uint8Array): ReadPage | null {
    const scanned = this.scanKeys && bytes.length ? scanHead(bytes, this.scanKeys) : null;
    if (!scanned) return null;
    const { count, values, ends, scan } = scanned;
    const page = { count, ends, records: null, bytes, spans: scan.spans };
    let compared: PageHead["compared"];
    try {
      compared = this.compare(page);
    } catch (err) {
      // The loop guard parsed the records of a page like the one before, and one did not parse:
      // the page is parsed whole (and said to be not JSON). `previous` is set only on success.
      if (err instanceof SyntaxError) return this.parsed(bytes);
      throw err;
    }
    return { head: { count, values, compared }, bytes, scan, parsed: null };
  }

  /** The page's head from its parse; null when the body is not JSON. */
  parsed(bytes: Uint8Array): ReadPage | null {
    const body = parseJsonBytes(bytes);
    if (body === NOT_JSON) return null;
    const records = this.select(body);
    const values = new Map<string, unknown>();
    for (const { path, compiled } of this.paths) values.set(path, compiled.first(body));
    const page = { count: records.length, ends: recordEnds(records), records, bytes: null, spans: null };
    const head = { count: records.length, values, compared: this.compare(page) };
    return { head, bytes, scan: null, parsed: { body, records } };
  }

  /** The loop guard's comparison with the previous page, made here where the records are. */
  private compare(page: ComparedPage): PageHead["compared"] {
    const prev = this.previous;
    const { ends, count } = page;
    const samePrevious =
      prev !== null &&
      ends !== "" &&
      prev.ends === ends &&
      prev.count === count &&
      sameRecordTexts(page, prev);
    this.previous = count ? page : null;
    return { ends, samePrevious };
  }
}

/**
 * A read page's body and records: those of its parse, or parsed now (a scanned page); NOT_JSON
 * when the bytes a scan read do not parse (the caller says so, masked). A scanned page's records
 * must be as many as its head said: else an internal error.
 */
export function pageRecords(
  page: ReadPage,
  select: (body: unknown) => unknown[],
): { body: unknown; records: unknown[] } | typeof NOT_JSON {
  if (page.parsed) return page.parsed;
  const body = parseJsonBytes(page.bytes);
  if (body === NOT_JSON) return NOT_JSON;
  const records = select(body);
  if (records.length !== page.head.count)
    throw new RunError(
      "internal",
      `a page's scan found ${page.head.count} records, its parse ${records.length}`,
    );
  return { body, records };
}

/** A page whose head was read elsewhere (the main thread), as a worker's processor takes it. */
export function readElsewhere(bytes: Uint8Array, count: number, scan: PageScan | null): ReadPage {
  const head = { count, values: new Map(), compared: { ends: "", samePrevious: false } };
  return { head, bytes, scan, parsed: null };
}
