import { parseDuration } from "./units.js";

/**
 * Date-window arithmetic shared by the config check (no clock needed to find a bad bound) and
 * the runner (src/run/windows.ts). Everything is in UTC milliseconds.
 */

export type WindowFormat = "iso8601" | "date" | "epoch" | "epoch_ms";

/** One unit of each format: the smallest step it can write, and what `${window.last}` subtracts. */
export const FORMAT_UNIT_MS: Record<WindowFormat, number> = {
  iso8601: 1000,
  date: 86_400_000,
  epoch: 1000,
  epoch_ms: 1,
};

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i;
const HAS_ZONE = /(Z|[+-]\d{2}:?\d{2})$/i;

/**
 * A date (`2024-01-01`, midnight UTC) or a date-time (`2024-01-01T06:00:00Z`; without a zone it
 * is read as UTC) → epoch ms; null when it is neither.
 */
export function parseInstant(text: string): number | null {
  const t = text.trim();
  const d = DATE.exec(t);
  if (d) return realDate(d) ? Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3])) : null;
  const dt = DATE_TIME.exec(t);
  // 2024-02-30T00:00:00Z would roll over to March too (Date.parse takes it): refuse it.
  if (!dt || !realDate(DATE.exec(dt[1]))) return null;
  const ms = Date.parse(HAS_ZONE.test(t) ? t.replace(" ", "T") : `${t.replace(" ", "T")}Z`);
  return Number.isNaN(ms) ? null : ms;
}

/** A `YYYY-MM-DD` that names a day of the calendar (2024-02-30 would roll over to March). */
function realDate(d: RegExpExecArray | null): boolean {
  if (!d) return false;
  const ms = Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]));
  return new Date(ms).toISOString().slice(0, 10) === d[0];
}

/** `start`: an instant, or a duration meaning that long before `now`. */
export function parseStart(text: string, now: number): number | null {
  const at = parseInstant(text);
  if (at !== null) return at;
  try {
    return now - parseDuration(text);
  } catch {
    return null;
  }
}

/** `end`: `now` or an instant. */
export function parseEnd(text: string, now: number): number | null {
  return text.trim() === "now" ? now : parseInstant(text);
}

/** Floors to the format's unit (a `date` bound to the start of its day, others to the second or ms). */
export function floorTo(ms: number, format: WindowFormat): number {
  const unit = FORMAT_UNIT_MS[format];
  return Math.floor(ms / unit) * unit;
}

/** A bound written in the format: `2024-01-01T00:00:00Z`, `2024-01-01`, seconds, milliseconds. */
export function formatBound(ms: number, format: WindowFormat): string {
  switch (format) {
    case "date":
      return new Date(ms).toISOString().slice(0, 10);
    case "epoch":
      return String(Math.floor(ms / 1000));
    case "epoch_ms":
      return String(ms);
    default: {
      const iso = new Date(ms).toISOString();
      return ms % 1000 === 0 ? iso.replace(/\.\d{3}Z$/, "Z") : iso;
    }
  }
}

/** An ISO 8601 instant for the state file and messages (seconds unless there are ms). */
export function isoInstant(ms: number): string {
  return formatBound(ms, "iso8601");
}
