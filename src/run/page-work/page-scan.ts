import { sameRecordList } from "../../http/paginators/guards.js";
import { isCanonicalJsonObject } from "../../shared/canonical-json.js";
import { type PageScan, type ScanPaths, scanPage } from "../../shared/json-spans.js";
import { parseJson, stringifyJson } from "../../shared/json-text.js";

/**
 * A page as the guards compare it with the next (guards.ts sameRecords): its record count, its
 * first and last record as JSON, and its records — parsed, or where they lie in its bytes.
 */
export interface ComparedPage {
  count: number;
  ends: string;
  records: readonly unknown[] | null;
  bytes: Uint8Array | null;
  spans: readonly number[] | null;
}

/** What the paginator and its guards need of a page, read from its bytes without parsing it. */
export interface ScannedHead {
  count: number;
  values: Map<string, unknown>;
  ends: string;
  scan: PageScan;
}

/** The paths the paginator reads (their values' keys in the head), and all paths prepared for the scan. */
export interface ScanKeys {
  paths: readonly string[];
  prepared: ScanPaths;
}

/**
 * A page's head from a scan of its bytes (json-spans.ts scanPage): the count of records, the
 * paginator's values (each parsed alone) and the first and last record as JSON. Null when the scan
 * is unsure or a value does not parse: the page is then parsed whole, as before. The records are
 * parsed later, after the next page's request left (a body that is not JSON fails then).
 */
export function scanHead(bytes: Uint8Array, keys: ScanKeys): ScannedHead | null {
  const scan = scanPage(bytes, keys.prepared);
  if (!scan) return null;
  const { spans } = scan;
  const count = spans.length / 2;
  const buf = asBuffer(bytes);
  try {
    const values = new Map<string, unknown>();
    keys.paths.forEach((path, j) => {
      const start = scan.values[2 * j];
      values.set(
        path,
        start < 0 ? undefined : parseJson(buf.toString("utf8", start, scan.values[2 * j + 1])),
      );
    });
    const last = count - 1;
    const end = (i: number) => canonicalText(buf, spans[2 * i], spans[2 * i + 1]);
    const ends = count ? `${end(0)}\n${end(last)}` : "";
    return { count, values, ends, scan };
  } catch {
    return null; // not JSON where the scan looked: the whole parse says what it is
  }
}

/**
 * Two consecutive pages with the same count and ends: the same records, compared as JSON one by
 * one (guards.ts sameRecordList when both were parsed), up to the first that differs.
 */
export function sameRecordTexts(a: ComparedPage, b: ComparedPage): boolean {
  if (a.records && b.records) return sameRecordList(a.records, b.records);
  for (let i = 0; i < a.count; i++) if (recordJson(a, i) !== recordJson(b, i)) return false;
  return true;
}

/** A page's record `i` as JSON: parsed and written, or its bytes (elementJson). */
function recordJson(p: ComparedPage, i: number): string {
  if (p.records) return stringifyJson(p.records[i]);
  const spans = p.spans!;
  const start = spans[2 * i];
  const end = spans[2 * i + 1];
  const buf = asBuffer(p.bytes!);
  return canonicalText(buf, start, end);
}

/** An element's JSON as stringifyJson writes it: its bytes when canonical, else parsed and written. */
function canonicalText(buf: Buffer, start: number, end: number): string {
  const text = buf.toString("utf8", start, end);
  return isCanonicalJsonObject(buf, start, end) ? text : stringifyJson(parseJson(text));
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
