import { stringifyJson } from "../shared/json-text.js";

/** Most characters of a cell; longer values end with `…`. */
const CELL_CHARS = 40;
/** Most columns shown; the rest are named below the table. */
const MAX_COLUMNS = 12;

/**
 * Records as a plain text table: one column per field (in first-seen order), one line per record.
 * A value is shown as text (strings as they are, anything else as JSON), on one line, cut to
 * 40 characters; null and missing are empty.
 */
export function recordTable(rows: Record<string, unknown>[]): string {
  if (!rows.length) return "  (no records)";
  const names: string[] = [];
  const seen = new Set<string>();
  for (const r of rows)
    for (const k of Object.keys(r))
      if (!seen.has(k)) {
        seen.add(k);
        names.push(k);
      }
  const shown = names.slice(0, MAX_COLUMNS);
  const cells = rows.map((r) => shown.map((k) => cellText(Object.hasOwn(r, k) ? r[k] : null)));
  const head = shown.map((k) => cellText(k));
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => `  ${c.map((x, i) => x.padEnd(widths[i])).join("  ")}`.trimEnd();
  const out = [line(head), line(widths.map((w) => "─".repeat(w))), ...cells.map(line)];
  if (names.length > shown.length)
    out.push(`  (+${names.length - shown.length} more fields: ${names.slice(MAX_COLUMNS).join(", ")})`);
  return out.join("\n");
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return "";
  const text = (typeof v === "string" ? v : stringifyJson(v)).replace(/\s+/g, " ");
  return text.length > CELL_CHARS ? `${text.slice(0, CELL_CHARS - 1)}…` : text;
}
