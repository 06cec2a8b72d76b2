import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import { run } from "../../src/cli/main.js";
import { compilePlan } from "../../src/compile/compile-plan.js";
import type { ExecutionPlan } from "../../src/compile/plan.js";
import { loadPipelineText } from "../../src/config/load-pipeline.js";
import { makeProject } from "../../src/config/project.js";
import { openSession } from "../../src/run/run-pipeline.js";
import { runStream } from "../../src/run/run-stream.js";
import type { StreamIO, StreamRunOptions } from "../../src/run/stream-options.js";
import { newStreamResult } from "../../src/run/stream-result.js";
import type { StateStore } from "../../src/state/state-store.js";

/** A temporary project folder (pipelines/, schemas/) removed by `cleanup()`. */
export interface TempProject {
  dir: string;
  /** Writes `pipelines/<name>.yaml`. */
  pipeline(name: string, text: string): void;
  /** Absolute path of a file in the project. */
  file(rel: string): string;
  cleanup(): void;
}

export function tempProject(prefix = "pipelines-run-"): TempProject {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  mkdirSync(path.join(dir, "pipelines"), { recursive: true });
  mkdirSync(path.join(dir, "schemas"), { recursive: true });
  return {
    dir,
    pipeline(name, text) {
      writeFileSync(path.join(dir, "pipelines", `${name}.yaml`), text);
    },
    file: (rel) => path.join(dir, rel),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface StreamSummary {
  name: string;
  status: string;
  records: { seen: number; valid: number; invalid: number; written: number; duplicates: number };
  pages: number;
  requests: number;
  retries: Record<string, number>;
  rate_limit_waits: { count: number; seconds: number };
  stop_reason: { code: string; message: string; warning?: boolean } | null;
  error: { kind: string; message: string } | null;
  warnings: string[];
  output: string | null;
}

export interface RunSummary {
  pipeline: string;
  status: string;
  streams: StreamSummary[];
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** The parsed `--json` summary (one pipeline). */
  summary: RunSummary;
  stream(name: string): StreamSummary;
}

/** `pipelines run <name> --json …` in-process, with `cwd` = the project. */
export async function runPipeline(
  dir: string,
  name: string,
  args: string[] = [],
  env: Record<string, string | undefined> = {},
): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const code = await run(["run", name, "--json", ...args], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    cwd: dir,
    env,
  });
  let summary: RunSummary;
  try {
    summary = JSON.parse(stdout) as RunSummary;
  } catch {
    throw new Error(`stdout is not a JSON summary (exit ${code}):\n${stdout}\nstderr:\n${stderr}`);
  }
  return {
    code,
    stdout,
    stderr,
    summary,
    stream(n) {
      const s = summary.streams.find((x) => x.name === n);
      if (!s) throw new Error(`no stream ${n} in the summary: ${stdout}`);
      return s;
    },
  };
}

/** The records of a jsonl file. */
export function readJsonl(file: string): unknown[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}

/** Every file under `dir` (relative paths), recursively. */
export function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? path.join(rel, e.name) : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk("");
  return out.sort();
}

/** The YAML `source:` block common to test pipelines. */
export function sourceBlock(baseUrl: string, extra = ""): string {
  return [
    "source:",
    `  base_url: ${baseUrl}`,
    "  retry: { max_attempts: 4, initial_delay: 10ms, max_delay: 2s }",
    "  timeout: 5s",
    ...extra
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => `  ${l}`),
  ].join("\n");
}

/** The streams of a fan-out (orgs, then a partition per org for its repos), written as JSON lines. */
export const FAN_OUT_STREAMS = [
  "streams:",
  "  orgs: { path: /orgs, records: $.data }",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the pipeline's own `${parent.…}` template
  "  repos: { parent: orgs, path: '/orgs/${parent.id}/repos', records: $.data }",
  "output: { format: jsonl }",
  "",
].join("\n");

/** Starts `server` on 127.0.0.1 (a free port) and gives its base URL. */
export function listenLocal(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  );
}

/** Stops `server`. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * A loopback API for the tests of a file: `handler` serves on a free port from before the first
 * test to after the last; `url` is its base URL once started.
 */
export function useLocalServer(handler: RequestListener): { readonly url: string } {
  const server = createServer(handler);
  let url = "";
  beforeAll(async () => {
    url = await listenLocal(server);
  });
  afterAll(() => closeServer(server));
  return {
    get url() {
      return url;
    },
  };
}

/** A fresh temporary project for each test of a file, removed after it (`tempProject`). */
export function useTempProject(prefix: string): TempProject {
  let current: TempProject | null = null;
  const now = () => {
    if (!current) throw new Error("useTempProject: no test is running");
    return current;
  };
  beforeEach(() => {
    current = tempProject(prefix);
  });
  afterEach(() => {
    current?.cleanup();
    current = null;
  });
  return {
    get dir() {
      return now().dir;
    },
    pipeline: (name, text) => now().pipeline(name, text),
    file: (rel) => now().file(rel),
    cleanup: () => now().cleanup(),
  };
}

/** A stream's run options as run-pipeline makes them, for tests that call runStream directly. */
export function streamRunOptions(
  plan: ExecutionPlan,
  state: StateStore,
  more: Partial<StreamRunOptions> = {},
): StreamRunOptions {
  return {
    runId: "20260101T000000Z-aaaaaa",
    baseUrl: plan.source.baseUrl,
    origin: plan.source.origin,
    allowedOrigins: plan.source.allowedOrigins,
    concurrency: 1,
    validation: plan.validation,
    limit: null,
    maxPages: null,
    fullRefresh: false,
    prefetch: 1,
    state,
    scratchDir: path.join(plan.dirs.state, ".partitions"),
    ...more,
  };
}

/** A stream with no parent and no children (runStream's StreamIO). */
export const NO_STREAM_IO: StreamIO = { parentRecords: null, keepRecordsAt: null, parentKey: null };

/**
 * Pipeline `p` of `text`, compiled, with a session as run-pipeline opens it (`signal`: the
 * session's, as the CLI gives; none: a queue worker's), for tests that run a stream directly.
 */
export function streamSession(
  dir: string,
  text: string,
  opts: { env?: Record<string, string>; signal?: AbortSignal } = {},
) {
  const loaded = loadPipelineText(makeProject(dir, null, {}), "p", "pipelines/p.yaml", text, opts.env ?? {});
  const plan = compilePlan(loaded);
  const { client, state, executor } = openSession(plan, loaded.redactor, { signal: opts.signal });
  return {
    plan,
    /** Runs stream `i` (runStream) with streamRunOptions' defaults and `more`. */
    start(i: number, more: Partial<StreamRunOptions> = {}, io: StreamIO = NO_STREAM_IO) {
      const result = newStreamResult(plan.streams[i]!.name);
      const running = runStream(plan.streams[i]!, executor, streamRunOptions(plan, state, more), io, result);
      return { running, result };
    },
    close: () => client.close(),
  };
}

/**
 * A run's summary or report with what differs from run to run taken out (run ids, temporary
 * folders, times and rates, the memory figures of a DuckDB "Out of Memory Error": its allocator's
 * state, "45.7 MiB/45.7 MiB used" in one run and "45.8 MiB/…" in another, seen in CI), to compare
 * runs of the same pipeline taken different ways.
 */
export function normalizeRun(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalizeRun);
  if (v === null || typeof v !== "object") {
    return typeof v === "string"
      ? v
          .replace(/\d{8}T\d{6}Z-[0-9a-f]{6}/g, "RUN")
          .replace(/\/tmp\/[^/"]+/g, "TMP")
          .replace(/allocate data of size \d+(?:\.\d+)? (?:[KMG]i)?B/g, "allocate data of size SIZE")
          .replace(/\(\d+(?:\.\d+)? (?:[KMG]i)?B\/\d+(?:\.\d+)? (?:[KMG]i)?B used\)/g, "(SIZE used)")
      : v;
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (/(_at|_ms|seconds|duration|rate|per_second|^time$|elapsed|updated_at)$/.test(k)) continue;
    out[k] = normalizeRun(x);
  }
  return out;
}

/**
 * A run's standard error with what depends on timing taken out, to compare runs of the same
 * pipeline taken different ways: run ids and folders (normalizeRun), durations (formatDuration's
 * compact style: under 1 s in one run, over in another) and progress ticks of any stream
 * ("started", page counts).
 */
export function normalizeStderr(stderr: string): string {
  return (normalizeRun(stderr) as string)
    .replace(/\b\d+(?:\.\d+)?(?:ms|s)\b/g, "T")
    .replace(/^\[\w+\/\w+\] (started|\d+ pages.*)\n/gm, "");
}

/**
 * runPipeline with switches of the runner's own set in process.env for the run (the runner reads
 * PIPELINES_PAGE_WORK, PIPELINES_BYTE_CHECK… from there), and removed after it.
 */
export async function runPipelineWith(
  switches: Record<string, string>,
  dir: string,
  name: string,
): Promise<CliRun> {
  Object.assign(process.env, switches);
  try {
    return await runPipeline(dir, name);
  } finally {
    for (const k of Object.keys(switches)) delete process.env[k];
  }
}
