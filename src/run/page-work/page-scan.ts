import { canonicalObjectEnd } from "../../shared/canonical-json.js";
import { type PageScan, scanPage } from "../../shared/json-spans.js";
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

/** The member names of the records path and of each path the paginator reads, when all are such paths. */
export interface ScanKeys {
  records: readonly string[];
  paths: readonly { path: string; keys: readonly string[] }[];
}

/**
 * A page's head from a scan of its bytes (json-spans.ts scanPage): the count of records, the
 * paginator's values (each parsed alone) and the first and last record as JSON. Null when the scan
 * is unsure or a value does not parse: the page is then parsed whole, as before. The records are
 * parsed later, after the next page's request left (a body that is not JSON fails then).
 */
export function scanHead(bytes: Uint8Array, keys: ScanKeys): ScannedHead | null {
  const scan: PageScan | null = scanPage(
    bytes,
    keys.records,
    keys.paths.map((p) => p.keys),
  );
  if (!scan) return null;
  const { spans } = scan;
  const count = spans.length / 2;
  const buf = asBuffer(bytes);
  try {
    const values = new Map<string, unknown>();
    keys.paths.forEach(({ path }, j) => {
      const start = scan.values[2 * j];
      values.set(
        path,
        start < 0 ? undefined : parseJson(buf.toString("utf8", start, scan.values[2 * j + 1])),
      );
    });
    const ends = count
      ? `${elementJson(buf, spans[0], spans[1])}\n${elementJson(buf, spans[2 * count - 2], spans[2 * count - 1])}`
      : "";
    return { count, values, ends, scan };
  } catch {
    return null; // not JSON where the scan looked: the whole parse says what it is
  }
}

/** Two consecutive pages with the same count and ends: the same records, compared as JSON. */
export function sameRecordTexts(a: ComparedPage, b: ComparedPage): boolean {
  const x = recordTexts(a);
  const y = recordTexts(b);
  return x.length === y.length && x.every((t, i) => t === y[i]);
}

function recordTexts(p: ComparedPage): string[] {
  if (p.records) return p.records.map((r) => stringifyJson(r));
  const buf = asBuffer(p.bytes!);
  const spans = p.spans!;
  const texts: string[] = [];
  for (let j = 0; j < spans.length; j += 2) texts.push(elementJson(buf, spans[j], spans[j + 1]));
  return texts;
}

/** An element's JSON as stringifyJson writes it: its bytes when canonical, else parsed and written. */
function elementJson(buf: Buffer, start: number, end: number): string {
  const text = buf.toString("utf8", start, end);
  return canonicalObjectEnd(buf, start, end) === end ? text : stringifyJson(parseJson(text));
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
