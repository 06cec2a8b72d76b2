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
  const lines: string[] = [];
  const failed = result.streams.filter((s) => s.status !== "ok").length;
  const verdict = interrupted
    ? interruptedVerdict(result)
    : result.status === "ok"
      ? "ok"
      : result.status === "quality_failed"
        ? `DATA QUALITY CHECK FAILED (${failed} of ${plural(result.streams.length, "stream")} not committed)`
        : `FAILED (${failed} of ${plural(result.streams.length, "stream")})`;
  lines.push(`${result.pipeline}: ${verdict} in ${formatDuration(result.durationMs)} · run ${result.runId}`);
  const header = [
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
  const rows = result.streams.map((s) => [
    s.name,
    s.status,
    fmtInt(s.records.seen),
    fmtInt(s.records.valid),
    s.records.invalid
      ? `${fmtInt(s.records.invalid)} (${((s.records.invalid / Math.max(1, s.records.seen)) * 100).toFixed(1)}%)`
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
  const table = fitTable(header, rows);
  const widths = table.header.map((h, i) => Math.max(h.length, ...table.rows.map((r) => r[i].length)));
  const fmt = (cells: string[]) =>
    `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ")}`.trimEnd();
  lines.push(fmt(table.header));
  for (const r of table.rows) lines.push(fmt(r));
  lines.push(...table.below);
  for (const s of result.streams) {
    if (s.error)
      lines.push(
        `  ${s.name}: ${s.status === "skipped" ? "skipped" : s.status === "rejected" ? "rejected" : "error"}: ${s.error.message}`,
      );
    const q = s.quality;
    if (q?.errors.length) {
      const top = q.errors.slice(0, 3).map((g) => `${g.field} ${g.keyword} ×${g.count}`);
      lines.push(
        `  ${s.name}: invalid records by reason: ${top.join(", ")}${q.errors.length > 3 ? `, +${q.errors.length - 3} more` : ""}`,
      );
    }
    if (
      q?.drift &&
      (q.drift.new_fields.length || q.drift.type_changes.length) &&
      q.drift.policy !== "ignore"
    ) {
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
      lines.push(`  ${s.name}: schema drift: ${parts.join("; ")}`);
    }
    if (q?.quarantine)
      lines.push(
        `  ${s.name}: invalid records quarantined in ${path.relative(root, q.quarantine) || q.quarantine}`,
      );
    if (s.records.duplicates)
      lines.push(
        `  ${s.name}: ${fmtInt(s.records.duplicates)} duplicate primary keys in this run (the last record kept)`,
      );
    if (s.partitions)
      lines.push(
        `  ${s.name}: ${s.partitions.done} of ${s.partitions.total} partitions${
          s.partitions.failed.length
            ? `, ${s.partitions.failed.length} failed: ${s.partitions.failed
                .slice(0, 3)
                .map((f) => f.parent_key)
                .join(", ")}`
            : ""
        }`,
      );
    for (const w of s.warnings) lines.push(`  ${s.name}: warning: ${w}`);
    if (s.requests.rateLimitWaits.count)
      lines.push(
        `  ${s.name}: waited ${formatDuration(s.requests.rateLimitWaits.ms)} for rate limits (${s.requests.rateLimitWaits.count} times)`,
      );
    if (s.output) lines.push(`  ${s.name}: wrote ${path.relative(root, s.output) || s.output}`);
    else if (s.status === "failed" || s.status === "rejected")
      lines.push(`  ${s.name}: nothing committed (the previous output, if any, is unchanged)`);
  }
  return lines.join("\n");
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
      output: s.output,
      partitions: s.partitions,
      duration_ms: Math.round(s.durationMs),
    })),
  };
}

/** The headline of a run stopped by a signal: what it committed, in the words of the exit code 130. */
function interruptedVerdict(result: PipelineResult): string {
  const committed = result.streams.filter((s) => s.status === "ok").length;
  return `INTERRUPTED (${committed} of ${plural(result.streams.length, "stream")} committed; the others keep their previous output)`;
}
