import path from "node:path";
import type { OutputPlan, StreamPlan } from "./plan.js";

/**
 * Every artifact path a run writes, named in one place: outputs and their temporary, preview and
 * rejected files, quarantine files, partition scratch files, state, run history, run locks and
 * reports. Callers build no such path themselves. (Small state and report files are written
 * through shared/atomic-write.ts, whose temporary name `.<file>.<pid>.<time>.tmp` lives there:
 * shared/ imports nothing above it.)
 */

// Outputs

/**
 * Where an output goes without `path`: `<out>/<pipeline>/<stream>.<ext>`; one database file per
 * pipeline for sqlite and duckdb (`<out>/<pipeline>.<ext>`); for postgres, which has no file, the
 * stream's folder `<out>/<pipeline>/<stream>` (where a `--singer` run quarantines).
 */
export function defaultOutputPath(
  outDir: string,
  pipeline: string,
  stream: string,
  format: OutputPlan["format"],
  extension: string,
): string {
  if (format === "postgres") return path.join(outDir, pipeline, stream);
  if (format === "sqlite" || format === "duckdb") return path.join(outDir, `${pipeline}.${extension}`);
  return path.join(outDir, pipeline, `${stream}.${extension}`);
}

/** `<out>/<pipeline>/<stream>.singer`: the nominal output of a `--singer` run. */
export function singerOutputPath(outDir: string, pipeline: string, stream: string): string {
  return path.join(outDir, pipeline, `${stream}.singer`);
}

/** `out/p/items.jsonl` → `out/p/items.rejected-<run-id>.jsonl`: beside the target, named for what it is. */
export function rejectedPath(target: string, runId: string): string {
  const ext = path.extname(target);
  return path.join(path.dirname(target), `${path.basename(target, ext)}.rejected-${runId}${ext}`);
}

/** `out/p/items.jsonl` → `out/p/items.preview.jsonl`. */
export function previewPath(target: string): string {
  const ext = path.extname(target);
  return path.join(path.dirname(target), `${path.basename(target, ext)}.preview${ext}`);
}

/**
 * The start of the names of a run's temporary files for `target` (`.<target>.<run id>`), which
 * sit beside it; the next run finds a killed run's by it (run-lock.ts).
 */
export function outputTempPrefix(target: string, runId: string): string {
  return `.${path.basename(target)}.${runId}`;
}

/** `.<target>.<run id>[.<tag>].tmp` beside `target`: a file written whole, then renamed over it. */
export function outputTempFile(target: string, runId: string, tag = ""): string {
  return path.join(path.dirname(target), `${outputTempPrefix(target, runId)}${tag ? `.${tag}` : ""}.tmp`);
}

// Quarantine

/** `<out>/<pipeline>/<stream>.invalid.jsonl`: the quarantine of outputs that name no file. */
export function defaultQuarantinePath(outDir: string, pipeline: string, stream: string): string {
  return path.join(outDir, pipeline, `${stream}.invalid.jsonl`);
}

/**
 * `<output dir>/<stream>.invalid.jsonl`; for sqlite, whose file holds every stream of a pipeline,
 * `<output dir>/<db name>.<stream>.invalid.jsonl` so pipelines sharing a folder do not collide.
 */
export function quarantineFile(stream: StreamPlan): string {
  if (stream.output.quarantine) return stream.output.quarantine;
  const dir = path.dirname(stream.output.path);
  if (stream.output.format === "sqlite") {
    const base = path.basename(stream.output.path).replace(/\.[^.]+$/, "");
    return path.join(dir, `${base}.${stream.name}.invalid.jsonl`);
  }
  return path.join(dir, `${stream.name}.invalid.jsonl`);
}

// Scratch

/** `<state>/.partitions/<pipeline>/<run id>`: a run's parent records kept for its child streams. */
export function partitionScratchDir(stateDir: string, pipeline: string, runId: string): string {
  return path.join(stateDir, ".partitions", pipeline, runId);
}

/** `<scratch dir>/<stream>.jsonl`. */
export function scratchFile(scratchDir: string, stream: string): string {
  return path.join(scratchDir, `${stream}.jsonl`);
}

// State, history, locks

/** `<state>/<pipeline>.json`: the pipeline's incremental state (file outputs). */
export function stateFile(stateDir: string, pipeline: string): string {
  return path.join(stateDir, `${pipeline}.json`);
}

/** `<state>/.history/<pipeline>.history.json`: the last runs of a pipeline. */
export function historyFile(stateDir: string, pipeline: string): string {
  return path.join(stateDir, ".history", `${pipeline}.history.json`);
}

/** `<state>/<pipeline>.lock`: the run in progress. */
export function lockFile(stateDir: string, pipeline: string): string {
  return path.join(stateDir, `${pipeline}.lock`);
}

/** `<lock>.takeover`: created by the one run that takes a stale lock over. */
export function takeoverFile(lock: string): string {
  return `${lock}.takeover`;
}

// Reports

/** `<reports>/<pipeline>`: the pipeline's reports. */
export function reportDir(reportsDir: string, pipeline: string): string {
  return path.join(reportsDir, pipeline);
}

/** The latest report of a pipeline: `<reports>/<pipeline>/latest.json` and `latest.html`. */
export function latestReport(reportsDir: string, pipeline: string): { json: string; html: string } {
  const dir = reportDir(reportsDir, pipeline);
  return { json: path.join(dir, "latest.json"), html: path.join(dir, "latest.html") };
}

/** A run's report files: `<run id>.json` and `.html`, and the latest ones, in the pipeline's folder. */
export function reportFiles(
  reportsDir: string,
  pipeline: string,
  runId: string,
): { json: string; html: string; latestJson: string; latestHtml: string } {
  const dir = reportDir(reportsDir, pipeline);
  const latest = latestReport(reportsDir, pipeline);
  return {
    json: path.join(dir, `${runId}.json`),
    html: path.join(dir, `${runId}.html`),
    latestJson: latest.json,
    latestHtml: latest.html,
  };
}

// Staging and rejected tables (database files: sqlite, duckdb)

/** `__staging_<run id>`: how a run's staging tables end (the next run drops a killed one's by it). */
export function stagingTableSuffix(runId: string): string {
  return `__staging_${runId}`;
}

/** `<table>__staging_<run id>`: the table a run loads before its commit. */
export function stagingTable(table: string, runId: string): string {
  return `${table}${stagingTableSuffix(runId)}`;
}

/** `<table>__rejected_<run id>`: a rejected run's records, kept beside the target. */
export function rejectedTable(table: string, runId: string): string {
  return `${table}__rejected_${runId}`;
}
