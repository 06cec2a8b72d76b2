/** Text helpers of the HTML report: escaping (every string from a report is API data), numbers, times, short previews. */
import { formatNumber, plural as pluralOf } from "../shared/format.js";
import { formatDuration as formatDurationOf } from "../shared/units.js";

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** HTML-escapes text for element content and double-quoted attributes (every string from a report is API data). */
export function e(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

export const num = formatNumber;
export const plural = (n: number, one: string, many = `${one}s`): string => pluralOf(n, one, many, num);

export function formatPercent(ratio: number): string {
  const v = ratio * 100;
  if (v > 0 && v < 0.1) return "<0.1%";
  const r = Math.round(v * 10) / 10;
  return `${Number.isInteger(r) ? r : r.toFixed(1)}%`;
}

/** Durations in words ("2 min 5 s"): the one formatter, in its report style. */
export const formatDuration = (ms: number): string => formatDurationOf(ms, "words");

export function formatTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** A short, one-line rendering of an example value (JSON, truncated). */
export function preview(value: unknown, max = 60): string {
  let s: string;
  try {
    s = value === undefined ? "(missing)" : (JSON.stringify(value) ?? String(value));
  } catch {
    s = String(value);
  }
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export const clip = (s: string, max: number): string => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

/** "string ×12, null ×3", most frequent first. */
export function typeCounts(types: Record<string, number>): string {
  const parts = Object.entries(types)
    .sort((a, b) => b[1] - a[1])
    .map(([t, n]) => `${t} ×${num(n)}`);
  return parts.length ? parts.join(", ") : "—";
}
