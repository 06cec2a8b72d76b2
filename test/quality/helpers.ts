import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import type { RecordError } from "../../src/records/quality.js";
import type { RunReport, StreamReport } from "../../src/report/report-types.js";
import { type CliResult, runCli } from "../cli/helpers.js";
import { QUALITY_SCHEMA, type QualityServer, startQualityServer } from "../server/quality-dataset.js";

/** A temporary project (pipelines/, schemas/) for one test; `cleanup()` removes it. */
export interface Project {
  dir: string;
  file(rel: string): string;
  write(rel: string, text: string): void;
  read(rel: string): string;
  exists(rel: string): boolean;
  cleanup(): void;
}

export function newProject(): Project {
  const dir = mkdtempSync(path.join(tmpdir(), "pipelines-quality-"));
  mkdirSync(path.join(dir, "pipelines"));
  mkdirSync(path.join(dir, "schemas"));
  const file = (rel: string) => path.join(dir, rel);
  return {
    dir,
    file,
    write(rel, text) {
      mkdirSync(path.dirname(file(rel)), { recursive: true });
      writeFileSync(file(rel), text);
    },
    read: (rel) => readFileSync(file(rel), "utf8"),
    exists: (rel) => existsSync(file(rel)),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export type { CliResult };

/** The CLI in-process, with the project as working directory. */
export function cli(
  dir: string,
  argv: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  return runCli(argv, dir, env);
}

/** A line of a quarantine file. */
export interface QuarantineLine {
  record_id: string;
  record: Record<string, unknown>;
  errors: RecordError[];
}

/** The records of a JSON lines file (of the shape the caller says, e.g. QuarantineLine). */
export function readJsonl<T = Record<string, unknown>>(file: string): T[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}

/** `reports/<pipeline>/latest.json`, parsed. */
export function latestReport(p: Project, pipeline: string): RunReport {
  return JSON.parse(p.read(`reports/${pipeline}/latest.json`)) as RunReport;
}

export function streamReport(r: RunReport, name: string): StreamReport {
  const s = r.streams.find((x) => x.name === name);
  if (!s) throw new Error(`no stream ${name} in the report of ${r.pipeline}`);
  return s;
}

/**
 * The exact corruption of test/server/quality-dataset.ts (60 records), written out by hand so a
 * generator change cannot silently move both sides of an assertion.
 */
export const TRUTH = {
  seen: 60,
  nameMissing: [9, 25, 41, 57],
  priceString: [10, 20, 30, 40, 50, 60],
  statusEnum: [7, 22, 37, 52],
  categoryNull: [5, 17, 29, 41, 53],
  dateBad: [3, 23, 43],
  skuNumber: [30, 60],
  legacy: [25, 50],
  /** Every invalid record (41 breaks two rules; 30 and 60 break two). */
  invalid: [3, 5, 7, 9, 10, 17, 20, 22, 23, 25, 29, 30, 37, 40, 41, 43, 50, 52, 53, 57, 60],
};

/** A pipeline file: `source` at `url` (plus extra source lines), one stream `items`, `validation`. */
export function pipelineYaml(opts: {
  url: string;
  stream: string[];
  validation?: string;
  source?: string[];
}): string {
  return [
    "source:",
    `  base_url: ${opts.url}`,
    "  retry: { max_attempts: 2, initial_delay: 10ms, max_delay: 1s }",
    ...(opts.source ?? []).map((l) => `  ${l}`),
    "streams:",
    "  items:",
    ...opts.stream.map((l) => `    ${l}`),
    ...(opts.validation ? [`validation: ${opts.validation}`] : []),
    "",
  ].join("\n");
}

/** The cursor-paginated `items` stream of the quality server, 7 records a page. */
export function cursorStream(params = "", extra: string[] = ["schema: item.schema.json"]): string[] {
  return [
    "path: /cursor/items",
    `params: { limit: 7${params ? `, ${params}` : ""} }`,
    "records: $.data",
    "paginate: { type: cursor, cursor: $.next_cursor }",
    "primary_key: id",
    ...extra,
  ];
}

/**
 * The quality test server for a file's tests, and a fresh project for each test, with
 * `schemas/item.schema.json` in it unless `schema: false`. `use` gets both before each test.
 */
export function qualityFixture(
  use: (server: QualityServer, project: Project) => void,
  opts: { schema: boolean } = { schema: true },
): void {
  let server: QualityServer;
  let project: Project;
  beforeAll(async () => {
    server = await startQualityServer();
  });
  afterAll(() => server.close());
  beforeEach(() => {
    project = newProject();
    if (opts.schema) project.write("schemas/item.schema.json", JSON.stringify(QUALITY_SCHEMA));
    use(server, project);
  });
  afterEach(() => project.cleanup());
}
