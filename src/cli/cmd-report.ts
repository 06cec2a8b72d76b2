import { existsSync } from "node:fs";
import path from "node:path";
import { latestReport } from "../compile/layout.js";
import { ConfigError } from "../config/errors.js";
import { checkPipelineName } from "../config/load-pipeline.js";
import { FileReadError, MiB, readTextSync } from "../config/read-bounded.js";
import type { RunReport } from "../report/report-types.js";
import { fmtInt } from "../run/progress.js";
import { formatDuration } from "../shared/units.js";
import { projectFor } from "./context.js";
import { CliError, type CliIO, EXIT } from "./io.js";

/** `pipelines report <name>`: the latest report's summary, its JSON, or its HTML path. */
export async function reportCommand(
  io: CliIO,
  name: string,
  opts: { json?: boolean; open?: boolean },
): Promise<number> {
  const bad = checkPipelineName(name);
  if (bad) throw new ConfigError([bad]);
  const project = await projectFor(io);
  const latest = latestReport(project.reportsDir, name);
  const jsonFile = latest.json;
  if (!existsSync(jsonFile)) {
    throw new CliError(
      `no report for \`${name}\` yet (looked for ${path.relative(io.cwd, jsonFile)}); run \`pipelines run ${name}\` first`,
      EXIT.config,
    );
  }
  if (opts.open) {
    io.stdout.write(`${latest.html}\n`);
    return EXIT.ok;
  }
  // The report folder is read back like the state folder: bounded, and a file that is not a
  // report is a clear error (it may have been edited, truncated, or written by another version).
  const unusable = (problem: string) =>
    new CliError(
      `report file ${path.relative(io.cwd, jsonFile)} ${problem}; run \`pipelines run ${name}\` to write a new one`,
      EXIT.config,
    );
  let text: string;
  try {
    text = readTextSync(jsonFile, { maxBytes: 64 * MiB, what: "a report" });
  } catch (err) {
    if (err instanceof FileReadError) throw unusable(err.message);
    throw err;
  }
  if (opts.json) {
    io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
    return EXIT.ok;
  }
  let summary: string;
  try {
    summary = formatReportSummary(JSON.parse(text) as RunReport);
  } catch {
    throw unusable("is not a run report this version can read");
  }
  io.stdout.write(`${summary}\n  html: ${path.relative(io.cwd, latest.html)}\n`);
  return EXIT.ok;
}

export function formatReportSummary(r: RunReport): string {
  const lines = [
    `${r.pipeline} · run ${r.run_id} · ${r.started_at} · ${formatDuration(r.duration_ms)} · ${r.status === "ok" ? "ok" : r.status === "quality_failed" ? "data-quality check failed (exit 3)" : "failed (exit 1)"}`,
  ];
  for (const s of r.streams) {
    lines.push(
      `  ${s.name}: ${s.status} · ${fmtInt(s.records.seen)} seen, ${fmtInt(s.records.valid)} valid, ${fmtInt(s.records.invalid)} invalid (${(s.invalid_ratio * 100).toFixed(1)}% of max ${(s.max_invalid_ratio * 100).toFixed(1)}%), ${s.records.filtered ? `${fmtInt(s.records.filtered)} filtered, ` : ""}${fmtInt(s.records.written)} written · ${s.pages} pages, ${s.requests} requests${
        Object.keys(s.retries).length
          ? `, retries ${Object.entries(s.retries)
              .map(([k, v]) => `${k}×${v}`)
              .join(" ")}`
          : ""
      }`,
    );
    if (s.stop_reason) lines.push(`    stopped: ${s.stop_reason.message}`);
    if (s.error) lines.push(`    ${s.status === "rejected" ? "rejected" : "error"}: ${s.error.message}`);
    for (const g of s.errors.slice(0, 5))
      lines.push(
        `    invalid: ${g.field} ${g.keyword} ×${g.count}${g.expected ? ` (expected ${g.expected})` : ""}`,
      );
    const d = s.drift;
    // `drift: ignore` means the analyst asked not to hear about it (the JSON report keeps it).
    if (d && d.policy !== "ignore") {
      for (const f of d.new_fields.slice(0, 5))
        lines.push(`    drift: new field ${f.field} in ${f.count} records (first ${f.first_record})`);
      for (const t of d.type_changes.slice(0, 5))
        lines.push(
          `    drift: ${t.field} expected ${t.expected.join("|")}, found ${Object.entries(t.actual)
            .map(([k, v]) => `${k}×${v}`)
            .join(" ")}`,
        );
      if (d.missing_fields.length)
        lines.push(`    drift: schema fields never seen: ${d.missing_fields.join(", ")}`);
      if (d.always_null.length) lines.push(`    drift: always null: ${d.always_null.join(", ")}`);
    }
  }
  return lines.join("\n");
}
