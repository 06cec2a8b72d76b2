import path from "node:path";
import { plural } from "../shared/format.js";
import { formatDuration } from "../shared/units.js";
import { fmtInt } from "./progress.js";
import type { PipelineResult, StreamResult } from "./stream-result.js";
import { fitTable } from "./summary-table.js";

export function retryCount(r: StreamResult): number {
  return Object.values(r.requests.retries).reduce((a, b) => a + b, 0);
}

/** The end-of-run table, for stderr; `interrupted`: stopped by Ctrl-C or SIGTERM. */
export function formatSummary(result: PipelineResult, root: string, interrupted = false): string {
  const lines = [verdictLine(result, interrupted), ...streamTable(result.streams)];
  for (const s of result.streams) lines.push(...streamNotes(s, root).map((note) => `  ${s.name}: ${note}`));
  return lines.join("\n");
}

/** `pipeline: ok in 2.1 s · run <id>`, or what failed. */
function verdictLine(result: PipelineResult, interrupted: boolean): string {
  const failed = result.streams.filter((s) => s.status !== "ok").length;
  const verdict = interrupted
    ? interruptedVerdict(result)
    : result.status === "ok"
      ? "ok"
      : result.status === "quality_failed"
        ? `DATA QUALITY CHECK FAILED (${failed} of ${plural(result.streams.length, "stream")} not committed)`
        : `FAILED (${failed} of ${plural(result.streams.length, "stream")})`;
  return `${result.pipeline}: ${verdict} in ${formatDuration(result.durationMs)} · run ${result.runId}`;
}

const TABLE_HEADER = [
  "stream",
  "status",
  "seen",
  "valid",
  "invalid",
  "written",
  "pages",
  "requests",
  "retries",
  "time",
  "stopped because",
];

/**
 * The headline of a run stopped by a signal: what it committed, in the words of the exit code 130
 * (a stream that committed some windows or partitions before the signal is `partial`: they stay).
 */
function interruptedVerdict(result: PipelineResult): string {
  const committed = result.streams.filter((s) => s.status === "ok").length;
  const partly = result.streams.filter((s) => s.status === "partial").length;
  const part = partly ? `, ${partly} partly (what it committed before the signal stays)` : "";
  return `INTERRUPTED (${committed} of ${plural(result.streams.length, "stream")} committed${part}; the others keep their previous output)`;
}

/** One row per stream, columns padded to their widest cell; a long last column goes below (80 columns). */
function streamTable(streams: StreamResult[]): string[] {
  const rows = streams.map((s) => [
    s.name,
    s.status,
    fmtInt(s.records.seen),
    fmtInt(s.records.valid),
    s.records.invalid
      ? `${fmtInt(s.records.invalid)} (${((s.records.invalid / Math.max(1, s.records.seen - s.records.filtered)) * 100).toFixed(1)}%)`
      : "0",
    fmtInt(s.records.written),
    fmtInt(s.pages),
    fmtInt(s.requests.requests),
    retryDetail(s),
    formatDuration(s.durationMs),
    s.status === "ok"
      ? (s.stop?.message ?? "")
      : s.status === "skipped"
        ? "skipped"
        : s.status === "rejected"
          ? "rejected (below)"
          : "error (below)",
  ]);
  const table = fitTable(TABLE_HEADER, rows);
  const widths = table.header.map((h, i) => Math.max(h.length, ...table.rows.map((r) => r[i].length)));
  const fmt = (cells: string[]) =>
    `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ")}`.trimEnd();
  return [fmt(table.header), ...table.rows.map(fmt), ...table.below];
}

/** The lines under the table about one stream: error, quality, files, partitions, warnings, waits. */
function streamNotes(s: StreamResult, root: string): string[] {
  const notes: string[] = [];
  if (s.error)
    notes.push(
      `${s.status === "skipped" ? "skipped" : s.status === "rejected" ? "rejected" : "error"}: ${s.error.message}`,
    );
  notes.push(...qualityNotes(s, root));
  if (s.records.filtered)
    notes.push(
      `${fmtInt(s.records.filtered)} of ${fmtInt(s.records.seen)} records filtered out by \`filter\` (not invalid)`,
    );
  if (s.records.duplicates)
    notes.push(`${fmtInt(s.records.duplicates)} duplicate primary keys in this run (the last record kept)`);
  if (s.partitions)
    notes.push(
      `${s.partitions.done} of ${s.partitions.total} partitions${
        s.partitions.failed.length
          ? `, ${s.partitions.failed.length} failed: ${s.partitions.failed
              .slice(0, 3)
              .map((f) => f.parent_key)
              .join(", ")}`
          : ""
      }`,
    );
  if (s.units) notes.push(unitsLine(s.units));
  for (const w of s.warnings) notes.push(`warning: ${w}`);
  for (const w of s.suspicions)
    notes.push(`SUSPICIOUS (${w.code}${w.decides ? ", not committed" : ""}): ${w.message}`);
  if (s.requests.rateLimitWaits.count)
    notes.push(
      `waited ${formatDuration(s.requests.rateLimitWaits.ms)} for rate limits (${plural(s.requests.rateLimitWaits.count, "time")})`,
    );
  if (s.output)
    notes.push(`wrote ${path.isAbsolute(s.output) ? path.relative(root, s.output) || s.output : s.output}`);
  else if (s.status === "failed" || s.status === "rejected")
    notes.push("nothing committed (the previous output, if any, is unchanged)");
  return notes;
}

/** Invalid records by reason, schema drift, the quarantine file. */
function qualityNotes(s: StreamResult, root: string): string[] {
  const q = s.quality;
  const notes: string[] = [];
  if (q?.errors.length) {
    const top = q.errors.slice(0, 3).map((g) => `${g.field} ${g.keyword} ×${g.count}`);
    notes.push(
      `invalid records by reason: ${top.join(", ")}${q.errors.length > 3 ? `, +${q.errors.length - 3} more` : ""}`,
    );
  }
  if (q?.drift && (q.drift.new_fields.length || q.drift.type_changes.length) && q.drift.policy !== "ignore") {
    const parts = [
      q.drift.new_fields.length
        ? `new fields: ${q.drift.new_fields.map((f) => `${f.field} (${f.count})`).join(", ")}`
        : "",
      q.drift.type_changes.length
        ? `type changes: ${q.drift.type_changes
            .map(
              (t) =>
                `${t.field} (${Object.entries(t.actual)
                  .map(([k, v]) => `${k}×${v}`)
                  .join(" ")})`,
            )
            .join(", ")}`
        : "",
    ].filter(Boolean);
    notes.push(`schema drift: ${parts.join("; ")}`);
  }
  if (q?.quarantine)
    notes.push(`invalid records quarantined in ${path.relative(root, q.quarantine) || q.quarantine}`);
  return notes;
}

/** `7 of 12 windows done, 7 committed (2024-01-01…2024-01-08 to …), step 7d`. */
export function unitsLine(u: NonNullable<StreamResult["units"]>): string {
  const what = u.kind === "windows" ? "windows" : "partitions";
  const parts = [`${u.done} of ${u.total} ${what} done`];
  if (u.checkpoints) parts.push(`${u.committed} committed`);
  if (u.incomplete) parts.push(`${u.incomplete} cut short (fetched again next run)`);
  if (u.windows?.first) parts.push(`${u.windows.first} to ${u.windows.last}, step ${u.windows.step}`);
  if (u.kind === "windows" && u.total === 0) parts.push("the range is already empty: nothing to fetch");
  return parts.join(", ");
}

function retryDetail(s: StreamResult): string {
  const n = retryCount(s);
  if (!n) return "0";
  const parts = Object.entries(s.requests.retries).map(([k, v]) => `${k.replace(/^status_/, "")}×${v}`);
  return `${n} (${parts.join(", ")})`;
}

/** The `--json` summary (already free of secrets: messages are redacted when built). */
export function summaryJson(result: PipelineResult): Record<string, unknown> {
  return {
    pipeline: result.pipeline,
    run_id: result.runId,
    status: result.status,
    started_at: result.startedAt,
    duration_ms: Math.round(result.durationMs),
    streams: result.streams.map((s) => ({
      name: s.name,
      status: s.status,
      records: s.records,
      pages: s.pages,
      requests: s.requests.requests,
      retries: s.requests.retries,
      rate_limit_waits: {
        count: s.requests.rateLimitWaits.count,
        seconds: +(s.requests.rateLimitWaits.ms / 1000).toFixed(3),
      },
      stop_reason: s.stop,
      error: s.error,
      warnings: s.warnings,
      suspicions: s.suspicions,
      output: s.output,
      preview: s.preview,
      partitions: s.partitions,
      units: s.units,
      duration_ms: Math.round(s.durationMs),
    })),
  };
}
