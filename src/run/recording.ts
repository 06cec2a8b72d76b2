/**
 * A recording (`pipelines run --record`): the run's HTTP exchanges with secrets named, the state
 * it started from, its clock, run id and options, and the env values it used that are no secret.
 * `replayRecording` runs a pipeline against one with no network, into a scratch folder.
 */
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { ExecutionPlan } from "../compile/plan.js";
import { FileReadError, MiB, readText } from "../config/read-bounded.js";
import { type RecordedExchange, ReplayClient, SecretNamer } from "../http/recorder.js";
import { writeAtomic } from "../shared/atomic-write.js";
import type { Redactor } from "../shared/secrets.js";
import { type PipelineState, StateStore } from "../state/state-store.js";
import { startPipelineRun } from "./run-pipeline.js";
import type { PipelineResult } from "./stream-result.js";

export const RECORDING_FILE = "recording.json";
/** Recordings are meant for small runs (`--max-pages 2`); a bigger file is refused. */
const MAX_RECORDING_BYTES = 256 * MiB;

export interface Recording {
  version: 1;
  pipeline: string;
  run_id: string;
  /** The run's clock (ISO 8601): `end: now`, relative starts and `run.started_at` replay at it. */
  started_at: string;
  options: { streams: string[]; limit: number | null; max_pages: number | null; full_refresh: boolean };
  /** Env values the pipeline used that are not secrets (a base URL, a page size). */
  env: Record<string, string>;
  /** Env variables whose values are secrets: recorded by name only. */
  secret_env: string[];
  /** The state the run started from (cursors, positions; never an auth token). */
  state: PipelineState;
  exchanges: RecordedExchange[];
}

/** What a test replays with in place of a secret env variable's value. */
export function placeholderFor(name: string): string {
  return `recorded-secret-${name}`;
}

/**
 * The env variables the pipeline uses, split into secrets (the redactor masks their values:
 * named `${env.NAME}`) and plain values (kept, so that the test runs with them).
 */
export function splitEnv(
  envUsed: string[],
  env: Record<string, string | undefined>,
  redactor: Redactor,
): { plain: Record<string, string>; secret: string[]; namer: SecretNamer } {
  const plain: Record<string, string> = {};
  const secret: string[] = [];
  const namer = new SecretNamer();
  for (const name of envUsed) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    if (redactor.text(value) === value) plain[name] = value;
    else {
      secret.push(name);
      namer.add(value, `\${env.${name}}`);
    }
  }
  return { plain, secret, namer };
}

/**
 * The state a recording keeps: cursors and positions. An auth token is a secret and is left out;
 * so are the committed lengths of this machine's output files (a test writes elsewhere).
 */
export function recordableState(state: PipelineState): PipelineState {
  const { auth: _auth, updated_at: _at, ...rest } = state;
  if (!rest.streams) return rest;
  const streams: NonNullable<PipelineState["streams"]> = {};
  for (const [name, s] of Object.entries(rest.streams)) {
    const { files: _files, updated_at: _u, ...position } = s;
    streams[name] = position;
  }
  return { ...rest, streams };
}

export async function writeRecording(dir: string, recording: Recording, mask: (t: string) => string) {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, RECORDING_FILE);
  await writeAtomic(file, `${mask(JSON.stringify(recording, null, 2))}\n`, 0o644);
  return file;
}

/** The recording in `dir`; null when there is none. Throws Error with what is wrong with it. */
export async function readRecording(dir: string): Promise<Recording | null> {
  let text: string;
  try {
    text = await readText(path.join(dir, RECORDING_FILE), {
      maxBytes: MAX_RECORDING_BYTES,
      what: "a recording",
    });
  } catch (err) {
    if (err instanceof FileReadError && err.problem === "missing") return null;
    throw err;
  }
  const r = JSON.parse(text) as Recording;
  if (r?.version !== 1 || typeof r.pipeline !== "string" || !Array.isArray(r.exchanges))
    throw new Error(`${RECORDING_FILE} is not a recording of this version (version 1 with exchanges)`);
  return r;
}

/** The env a test runs with: the project's, the recorded plain values, placeholders for secrets. */
export function replayEnv(
  recording: Recording,
  env: Record<string, string | undefined>,
): Record<string, string | undefined> {
  const out = { ...env, ...recording.env };
  for (const name of recording.secret_env) out[name] = placeholderFor(name);
  return out;
}

/** The plan of a test: every output is JSON lines in `dir` (its state and scratch files too). */
export function replayPlan(plan: ExecutionPlan, dir: string): ExecutionPlan {
  return {
    ...plan,
    dirs: { ...plan.dirs, out: path.join(dir, "out"), state: path.join(dir, "state"), reports: dir },
    streams: plan.streams.map((s) => ({
      ...s,
      output: { format: "jsonl", mode: s.output.mode, path: path.join(dir, "out", `${s.name}.jsonl`) },
    })),
  };
}

export interface Replay {
  result: PipelineResult;
  /** Each written stream's records (JSON lines text). */
  outputs: Map<string, string>;
  /** Recorded exchanges no request asked for. */
  unused: number;
}

/** Runs `plan` against the recording (no network), from its state, at its clock, with its run id. */
export async function replayRecording(
  plan: ExecutionPlan,
  redactor: Redactor,
  recording: Recording,
  namer: SecretNamer,
  env: Record<string, string | undefined>,
): Promise<Replay> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "pipelines-test-"));
  try {
    const test = replayPlan(plan, dir);
    await mkdir(test.dirs.out, { recursive: true });
    const stateStore = new StateStore(test.dirs.state, plan.pipeline);
    await writeAtomic(stateStore.file, `${JSON.stringify({ ...recording.state, version: 1 })}\n`);
    // A name in a recorded answer (a next URL that held a key) is given the test's value back.
    const fill = (t: string) =>
      t.includes("${env.")
        ? t.replace(/\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, n: string) => env[n] ?? m)
        : t;
    const client = new ReplayClient(recording.exchanges, namer, fill);
    const o = recording.options;
    const run = startPipelineRun(test, redactor, {
      runId: recording.run_id,
      startedAt: new Date(recording.started_at),
      streams: o.streams,
      limit: o.limit,
      maxPages: o.max_pages,
      fullRefresh: o.full_refresh,
      stateStore,
      httpClient: () => client,
      random: () => 0.5,
    });
    const result = await run.done;
    const outputs = new Map<string, string>();
    for (const s of test.streams) {
      if (!s.write || !result.streams.some((r) => r.name === s.name)) continue;
      outputs.set(s.name, await readFile(s.output.path, "utf8").catch(() => ""));
    }
    return { result, outputs, unused: client.unused };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
