import path from "node:path";
import { compilePlan } from "../compile/compile-plan.js";
import type { ExecutionPlan } from "../compile/plan.js";
import type { LoadedPipeline } from "../config/load-pipeline.js";
import type { Project } from "../config/project.js";
import { settleRemovals } from "../outputs/atomic-file.js";
import { RedisStateError } from "../queue/redis-state.js";
import { seedTokenShare } from "../queue/redis-tokens.js";
import { buildReport } from "../report/build-report.js";
import { addHistoryView } from "../report/history-view.js";
import { pruneReports } from "../report/prune-reports.js";
import type { RunReport } from "../report/report-types.js";
import { writeReport } from "../report/write-report.js";
import { guardFromHistory, historyEntry, keepRuns, recordRun } from "../run/history.js";
import { showProgress } from "../run/progress.js";
import { newRunId } from "../run/run-id.js";
import { lockPipeline, PipelineLockedError, type RunLock } from "../run/run-lock.js";
import { type RunOptions, startPipelineRun } from "../run/run-pipeline.js";
import type { PipelineResult } from "../run/stream-result.js";
import { formatSummary, summaryJson } from "../run/summary.js";
import { VERSION } from "../shared/version.js";
import type { HistoryRun } from "../state/run-history.js";
import { StateFileError, StateStore } from "../state/state-store.js";
import { PREVIEW_DEFAULT, previewRun } from "./cmd-preview.js";
import { load, projectFor } from "./context.js";
import { CliError, type CliIO, EXIT, StillRunningError } from "./io.js";
import type { QueueProject, QueueRunSetup } from "./queue-run.js";
import { checkRecordOption, startRecording } from "./record-run.js";
import {
  bookmarksOf,
  endSingerOutput,
  MemoryStateStore,
  readSingerState,
  singerPlan,
  startSingerOutput,
  watchSingerPositions,
  writesSinger,
  writesSingerToStdout,
} from "./singer-run.js";

type SingerState = Awaited<ReturnType<typeof readSingerState>>;

/**
 * `--singer` (one pipeline; its plan rewritten to Singer on stdout) and `--state FILE` (read
 * before anything is sent); stdout carries Singer messages, so `--json` cannot go with them.
 */
async function singerOptions(
  io: CliIO,
  plans: ExecutionPlan[],
  opts: RunCommandOptions,
): Promise<SingerState | null> {
  if (opts.state !== undefined && !opts.singer)
    throw new CliError("--state goes with --singer (a Singer state file to start from)", EXIT.config);
  if (opts.singer) {
    if (plans.length !== 1) throw new CliError("--singer runs one pipeline at a time", EXIT.config);
    plans[0] = singerPlan(plans[0]);
  }
  if (opts.json && plans.some(writesSingerToStdout))
    throw new CliError(
      "Singer messages go to standard output: --json cannot be used with them (the summary stays on stderr)",
      EXIT.config,
    );
  if (opts.singer && opts.preview !== undefined)
    throw new CliError(
      "--preview prints records on standard output, where --singer sends Singer messages: use one or the other",
      EXIT.config,
    );
  // One stream of messages per standard output: a target reads one run's SCHEMAs and STATEs.
  if (plans.filter(writesSingerToStdout).length > 1)
    throw new CliError(
      `pipelines ${plans
        .filter(writesSingerToStdout)
        .map((p) => p.pipeline)
        .join(
          ", ",
        )} all send Singer messages to standard output: run them one at a time (or give each a \`path\`)`,
      EXIT.config,
    );
  return opts.singer && opts.state !== undefined
    ? readSingerState(path.resolve(io.cwd, opts.state), plans[0], io.cwd)
    : null;
}

/**
 * What `--queue` does not go with (exit 2 whether Redis answers or not): the workers send the
 * requests, so the submitter has nothing to record or preview; no `--limit` or `--singer`; no
 * output that one process writes.
 */
function checkQueueOptions(opts: RunCommandOptions, plans: ExecutionPlan[]): void {
  const given = (
    [
      ["--limit", opts.limit],
      ["--singer", opts.singer || undefined],
      ["--preview", opts.preview],
      ["--record", opts.record],
    ] as const
  ).find(([, v]) => v !== undefined);
  if (given) throw new CliError(`${given[0]} cannot be used with --queue`, EXIT.config);
  for (const plan of plans)
    for (const s of plan.streams)
      if (s.output.format === "duckdb" || s.output.format === "sqlite")
        throw new CliError(
          `stream \`${s.name}\` of \`${plan.pipeline}\` writes ${s.output.format}, a file one process writes: --queue runs need postgres or files on storage every worker shares`,
          EXIT.config,
        );
}

export interface RunCommandOptions {
  stream?: string[];
  limit?: number;
  maxPages?: number;
  json?: boolean;
  fullRefresh?: boolean;
  /** Commit even when the commit guard would keep the output beside. */
  commitPartial?: boolean;
  /** `--preview [N]`: print the first N records (true: the default N), commit nothing. */
  preview?: number | true;
  /** Singer messages on stdout instead of each stream's output (cli/singer-run.ts). */
  singer?: boolean;
  /** With `singer`: a Singer state file to start from instead of the state folder's. */
  state?: string;
  /** `--record [dir]`: keep the run's exchanges for `pipelines test` (cli/record-run.ts). */
  record?: string | true;
  /** Request sequences run on `pipelines worker` processes (src/queue/). */
  queue?: boolean;
}

/** `pipelines run <name…>`: every pipeline is loaded and checked before anything is sent. */
export async function runCommand(io: CliIO, names: string[], opts: RunCommandOptions): Promise<number> {
  const project = await projectFor(io);
  // `run a a` runs `a` once (a second run would wait for the first one's lock).
  const loaded = [...new Set(names)].map((n) => load(io, project, n));
  const plans = loaded.map((l) => compilePlan(l));
  const singerState = await singerOptions(io, plans, opts);
  checkRecordOption(opts.record, opts, plans.length);
  if (opts.queue) checkQueueOptions(opts, plans);
  for (const plan of plans) {
    for (const s of opts.stream ?? []) {
      if (!plan.streams.some((x) => x.name === s)) {
        throw new CliError(
          `pipeline \`${plan.pipeline}\` has no stream \`${s}\`; streams: ${plan.streams.map((x) => x.name).join(", ")}`,
          EXIT.config,
        );
      }
    }
  }
  if (opts.preview !== undefined) {
    const n = opts.preview === true ? PREVIEW_DEFAULT : opts.preview;
    return previewRun(io, plans, loaded, n, opts.stream, opts.json ?? false);
  }
  // With a queue configured, locks and state live in Redis for every run (queue-run.ts).
  // Loaded only when needed: the queue's modules bring BullMQ and ioredis (~70 ms to load).
  const queueRun = project.queue || opts.queue ? await import("./queue-run.js") : null;
  const shared = queueRun ? await queueRun.openQueueProject(io, project) : null;
  try {
    const queue = queueRun && opts.queue ? await queueRun.checkQueueRun(shared, loaded) : null;
    return await lockAndRun(
      io,
      { plans, loaded, project, shared },
      { ...opts, queueConfig: queue },
      singerState,
    );
  } finally {
    shared?.close();
  }
}

async function lockAndRun(
  io: CliIO,
  { plans, loaded, project, shared }: Omit<Locked, "runIds" | "locks">,
  opts: RunCommandOptions & { queueConfig: QueueRunSetup | null },
  singerState: SingerState | null,
): Promise<number> {
  // One run of a pipeline at a time: every lock is taken before anything is sent.
  const runIds = plans.map(() => newRunId());
  const locks: RunLock[] = [];
  try {
    for (const [i, plan] of plans.entries()) {
      const local = await lockPipeline(plan, runIds[i]);
      locks.push(shared ? await shared.lock(plan, runIds[i], local) : local);
    }
    // The saved state is input: a state that cannot be used stops the command before
    // anything is sent, and is kept as it is (discarding it would be a silent full reload).
    for (const plan of plans)
      await (shared?.state(plan) ?? new StateStore(plan.dirs.state, plan.pipeline)).read();
  } catch (err) {
    await Promise.all(locks.map((l) => l.release()));
    if (err instanceof PipelineLockedError)
      throw new (err.held ? StillRunningError : CliError)(err.message, EXIT.runFailed);
    if (err instanceof RedisStateError)
      throw new CliError(
        `${err.message}. Nothing was sent. Fix it, or delete the key to start afresh (\`redis-cli DEL ${err.key}\`): the next run then starts every incremental stream from \`initial\` (a full reload)`,
        EXIT.config,
      );
    if (err instanceof StateFileError) {
      throw new CliError(
        `state file ${path.relative(io.cwd, err.file) || err.file} ${err.problem}. Nothing was sent. Fix the file, or move it away to start afresh: the next run then starts every incremental stream from \`initial\` (a full reload), and an oauth2 refresh token saved in it is lost`,
        EXIT.config,
      );
    }
    throw err;
  }
  try {
    return await runLocked(io, { plans, loaded, runIds, locks, project, shared }, opts, singerState);
  } finally {
    // Outputs replaced by this run are gone before the next run may start.
    await settleRemovals();
    await Promise.all(locks.map((l) => l.release()));
  }
}

/**
 * Where a run reads and saves its state: Redis when the project has a queue, memory for
 * `--singer` (never written back), else the state folder's file (run-pipeline's default).
 */
async function stateStoreFor(
  plan: ExecutionPlan,
  shared: QueueProject | null,
  singerOnly: boolean,
  singerState: SingerState | null,
): Promise<StateStore | undefined> {
  const store = shared?.state(plan);
  if (!singerOnly) return store;
  return new MemoryStateStore(plan.dirs.state, plan.pipeline, singerState?.state ?? (await store?.read()));
}

/** Records the run in the history and writes its report; the summary's report line. */
async function reportRun(
  io: CliIO,
  plan: ExecutionPlan,
  loaded: LoadedPipeline,
  result: PipelineResult,
  runs: HistoryRun[],
  interrupted: boolean,
): Promise<{ report: RunReport; reportLine: string }> {
  const report = buildReport(plan, result, VERSION, interrupted);
  // The history file is written while the report is made and written (the run holds the lock:
  // the runs read at its start are the file's, this one goes last).
  const recorded = recordRun(plan, result).catch(() => null);
  await addHistoryView(report, plan, [...runs, historyEntry(result)].slice(-keepRuns(plan)));
  try {
    const written = await writeReport(plan.dirs.reports, plan.dirs.root, report, loaded.redactor);
    await pruneReports(path.dirname(written.html), keepRuns(plan));
    return { report, reportLine: `  report: ${path.relative(io.cwd, written.html) || written.html}` };
  } catch (err) {
    return {
      report,
      reportLine: `  report: could not be written (${loaded.redactor.text((err as Error).message)})`,
    };
  } finally {
    await recorded;
  }
}

/** Stopped by Ctrl-C or SIGTERM (bin.ts aborts with "interrupted by SIG…"), not by a closed output. */
function isInterrupted(io: CliIO): boolean {
  return io.signal?.aborted === true && /^interrupted/.test(String((io.signal.reason as Error)?.message));
}

/** The pipelines of one `run` command, loaded, compiled and locked. */
interface Locked {
  plans: ExecutionPlan[];
  loaded: LoadedPipeline[];
  runIds: string[];
  locks: RunLock[];
  project: Project;
  /** The project's queue: locks and state in Redis (null without one). */
  shared: QueueProject | null;
}

async function runLocked(
  io: CliIO,
  { plans, loaded, runIds, locks, project, shared }: Locked,
  opts: RunCommandOptions & { queueConfig: QueueRunSetup | null },
  singerState: SingerState | null,
): Promise<number> {
  let code: number = EXIT.ok;
  const summaries: Record<string, unknown>[] = [];
  for (let i = 0; i < plans.length; i++) {
    const plan = plans[i];
    if (locks[i].removed.length) {
      io.stderr.write(
        `${plan.pipeline}: removed what an interrupted run left: ${locks[i].removed.join(", ")}\n`,
      );
    }
    const { runs, guard } = await guardFromHistory(plan, opts.commitPartial ?? false);
    // Singer messages on stdout start from the saved bookmarks; `--singer` never writes the state file.
    let stateStore = await stateStoreFor(plan, shared, opts.singer === true, singerState);
    const singer = writesSinger(plan);
    const singerOut = writesSingerToStdout(plan) ? io.stdout : null;
    if (singer) {
      stateStore ??= new StateStore(plan.dirs.state, plan.pipeline);
      startSingerOutput(
        runIds[i],
        singerOut,
        singerState?.bookmarks ?? bookmarksOf(await stateStore.read(), plan),
      );
      watchSingerPositions(stateStore, runIds[i], plan);
    }
    const remote = opts.queueConfig
      ? await (await import("./queue-run.js")).openSubmitter(opts.queueConfig, plan, loaded[i], runIds[i], io)
      : undefined;
    if (remote && shared && stateStore)
      await seedTokenShare(shared.tokens(plan), (await stateStore.read()).auth?.refresh_token);
    const runOpts: RunOptions = {
      remote,
      guard,
      stateStore,
      runId: runIds[i],
      streams: opts.stream,
      limit: opts.limit ?? null,
      maxPages: opts.maxPages ?? null,
      fullRefresh: opts.fullRefresh,
      signal: io.signal,
      // A local run shares the workers' OAuth2 token (a `run --queue` submitter fetches none).
      tokens: (!remote && shared?.tokens(plan)) || undefined,
    };
    const recording =
      opts.record === undefined
        ? null
        : await startRecording(io, project, plan, loaded[i], {
            record: opts.record,
            runId: runIds[i],
            streams: opts.stream ?? [],
            runOpts,
          });
    const run = startPipelineRun(plan, loaded[i].redactor, { ...runOpts, ...recording?.runOptions });
    const view = await showProgress(plan.pipeline, run.results, run.done, io);
    const result = await run.done
      .finally(() => remote?.close())
      .catch(async (err: unknown) => {
        // Nothing kept of it (a long-lived worker --schedules); its files end with their STATE.
        if (singer) await endSingerOutput(runIds[i], null).catch(() => {});
        throw err;
      });
    await view.stop();
    if (singer) await endSingerOutput(runIds[i], singerOut);
    const interrupted = isInterrupted(io);
    const { report, reportLine } = await reportRun(io, plan, loaded[i], result, runs, interrupted);
    io.stderr.write(`\n${formatSummary(result, io.cwd, interrupted)}\n${reportLine}\n`);
    const recorded = recording && !interrupted ? await recording.finish(result) : null;
    if (recorded) io.stderr.write(`${recorded.lines.join("\n")}\n`);
    summaries.push({ ...summaryJson(result), exit_code: report.exit_code });
    // A failed stream (1) outranks a data-quality rejection (3) of another one.
    if (result.status === "failed") code = EXIT.runFailed;
    else if (result.status === "quality_failed" && code === EXIT.ok) code = EXIT.quality;
    else if (recorded && !recorded.ok) code = EXIT.runFailed;
    if (io.signal?.aborted) break;
  }
  if (opts.json)
    io.stdout.write(`${JSON.stringify(summaries.length === 1 ? summaries[0] : summaries, null, 2)}\n`);
  return code;
}
