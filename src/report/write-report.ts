import path from "node:path";
import { reportDir, reportFiles } from "../compile/layout.js";
import { writeAtomic } from "../shared/atomic-write.js";
import type { Redactor } from "../shared/secrets.js";
import { renderReportHtml } from "./render-html.js";
import type { RunReport } from "./report-types.js";

export interface WrittenReport {
  json: string;
  html: string;
  latestJson: string;
  latestHtml: string;
}

/**
 * Writes `reports/<pipeline>/<run-id>.json|.html` and `latest.json|.html`, each atomically. The
 * report is masked once more as a whole before it is written: no secret reaches a report.
 */
export async function writeReport(
  reportsDir: string,
  projectRoot: string,
  report: RunReport,
  redactor: Redactor,
): Promise<WrittenReport> {
  const safe = redactor.value(report);
  // File names from the names as they are (checked names, never secrets): masking could turn a
  // pipeline name into `***` and put the report where \`pipelines report\` does not look.
  const dir = reportDir(reportsDir, report.pipeline);
  const json = `${JSON.stringify(safe, null, 2)}\n`;
  // Paths in the report are relative to the project root; links are relative to the page.
  const linkBase = `${path.relative(dir, projectRoot).split(path.sep).join("/")}/`;
  const html = redactor.text(renderReportHtml(safe, { linkBase }));
  const out: WrittenReport = reportFiles(reportsDir, report.pipeline, report.run_id);
  // Four independent files: written at once (each is atomic on its own), not one fsync after
  // another; a failure is reported once all four have ended (none still being written).
  const written = await Promise.allSettled([
    writeAtomic(out.json, json, 0o644),
    writeAtomic(out.html, html, 0o644),
    writeAtomic(out.latestJson, json, 0o644),
    writeAtomic(out.latestHtml, html, 0o644),
  ]);
  for (const w of written) if (w.status === "rejected") throw w.reason;
  return out;
}
