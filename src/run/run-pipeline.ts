import { setMaxListeners } from "node:events";
import { rm, rmdir } from "node:fs/promises";
import path from "node:path";
import { partitionScratchDir, scratchFile } from "../compile/layout.js";
import type { ExecutionPlan, StreamPlan } from "../compile/plan.js";
import { createAuth } from "../http/auth/create-auth.js";
import type { TokenShare } from "../http/auth/token-share.js";
import { HttpClient, type HttpClientOptions } from "../http/client.js";
import { RequestExecutor } from "../http/executor.js";
import { RateBudget, type RequestBudget } from "../http/rate-budget.js";
import { RetryPolicy } from "../http/retry-policy.js";
import { Semaphore } from "../http/semaphore.js";
import type { Redactor } from "../shared/secrets.js";
import { VERSION } from "../shared/version.js";
import { StateStore } from "../state/state-store.js";
import type { GuardOptions } from "./commit-guard.js";
import { saveParentCursors } from "./parent-cursors.js";
import { resolveWorkers } from "./record-workers/setting.js";
import { newRunId } from "./run-id.js";
import { runStream } from "./run-stream.js";
import type { RemotePull, StreamRunOptions } from "./stream-options.js";
import { newStreamResult, type PipelineResult, type StreamResult } from "./stream-result.js";

export interface RunOptions {
  /** Only these streams (their parents run too). */
  streams?: string[];
  limit?: number | null;
  maxPages?: number | null;
  signal?: AbortSignal;
  runId?: string;
  /** Ignore saved incremental cursors. */
  fullRefresh?: boolean;
  /** The retries' jitter (a replayed test: a fixed one, so its waits are the same every time). */
  random?: () => number;
  /** The commit guard's history and overrides (commit-guard.ts). */
  guard?: GuardOptions;
  /** Where cursors are read and saved (default: the state folder's file; `run --singer`: memory). */
  stateStore?: StateStore;
  /** The run's clock: windows ending `now` and `run.started_at` (a replayed test: the recorded one). */
  startedAt?: Date;
  /** Makes the run's HTTP client (record and replay wrap or replace it: http/recorder.ts). */
  httpClient?: (opts: HttpClientOptions) => HttpClient;
  /** `run --queue`: request sequences run on workers (src/queue/submit.ts). */
  remote?: RemotePull;
  /**
   * A local run of a project with a queue: the OAuth2 token the workers share (redis-tokens.ts),
   * so a refresh token rotated here is the one the workers use next (and the reverse).
   */
  tokens?: TokenShare;
}

export interface PipelineRun {
  runId: string;
  /** Live: progress renderers read these while the run goes. */
  results: StreamResult[];
  done: Promise<PipelineResult>;
}

export function selectStreams(plan: ExecutionPlan, names?: string[]): StreamPlan[] {
  if (!names || names.length === 0) return plan.streams;
  const wanted = new Set<string>();
  const add = (n: string) => {
    if (wanted.has(n)) return;
    wanted.add(n);
    const parent = plan.streams.find((s) => s.name === n)?.parent;
    if (parent) add(parent);
  };
  for (const n of names) add(n);
  return plan.streams.filter((s) => wanted.has(s.name));
}

/** The HTTP side of a run: one client, auth, rate budget and concurrency for the pipeline. */
export function openSession(
  plan: ExecutionPlan,
  redactor: Redactor,
  opts: Pick<RunOptions, "signal" | "random" | "stateStore" | "httpClient" | "tokens"> & {
    budget?: RequestBudget;
  },
) {
  // Every request in flight listens to the run's signal (Ctrl-C ends it): more than Node's ten
  // at a concurrency above 10, which is no leak (a warning on stderr otherwise).
  if (opts.signal) setMaxListeners(0, opts.signal);
  const client = (opts.httpClient ?? ((o) => new HttpClient(o)))({
    timeoutMs: plan.source.timeoutMs,
    maxResponseBytes: plan.source.maxResponseBytes,
    connections: plan.source.concurrency,
    userAgent: `pipelines/${VERSION}`,
  });
  const state = opts.stateStore ?? new StateStore(plan.dirs.state, plan.pipeline);
  const policy = new RetryPolicy(plan.source.retry, plan.source.rateLimit, opts.random);
  const budget = opts.budget ?? new RateBudget(plan.source.rateLimit);
  const auth = createAuth(plan, { client, redactor, state, policy, budget, tokens: opts.tokens });
  const executor = new RequestExecutor({
    source: plan.source,
    client,
    auth,
    budget,
    slots: new Semaphore(plan.source.concurrency),
    redactor,
    signal: opts.signal,
    policy,
  });
  return { client, state, auth, executor };
}

/** Starts every stream of a plan; streams run concurrently, requests share one budget. */
export function startPipelineRun(
  plan: ExecutionPlan,
  redactor: Redactor,
  opts: RunOptions = {},
): PipelineRun {
  const runId = opts.runId ?? newRunId();
  const streams = selectStreams(plan, opts.streams);
  const results: StreamResult[] = streams.map((s) => newStreamResult(s.name));
  const startedAt = opts.startedAt ?? new Date();
  const t0 = performance.now();

  const done = (async (): Promise<PipelineResult> => {
    const session = openSession(plan, redactor, opts);
    try {
      await runStreams({
        plan,
        redactor,
        opts,
        runId,
        streams,
        results,
        session,
        startedAtMs: startedAt.getTime(),
      });
    } finally {
      // A token fetch the interrupted streams left may still be saving a rotated refresh token.
      await session.auth.settled?.();
      await session.client.close();
    }
    return {
      pipeline: plan.pipeline,
      runId,
      status: pipelineStatus(results),
      startedAt: startedAt.toISOString(),
      durationMs: performance.now() - t0,
      streams: results,
    };
  })();
  return { runId, results, done };
}

interface RunScope {
  plan: ExecutionPlan;
  redactor: Redactor;
  opts: RunOptions;
  runId: string;
  streams: StreamPlan[];
  results: StreamResult[];
  session: ReturnType<typeof openSession>;
  /** When the run started (windows ending `now` end here). */
  startedAtMs: number;
}

/** Auth first, then every stream (a child after its parent), then the scratch files go. */
async function runStreams(scope: RunScope): Promise<void> {
  const { plan, redactor, opts, runId, streams, results } = scope;
  let authFailure: string | null = null;
  try {
    // A queue run sends nothing from here: its workers get the token (one for all of them).
    if (!opts.remote) await scope.session.auth.start(opts.signal);
  } catch (err) {
    authFailure = redactor.text((err as Error).message);
  }
  // Per pipeline: the next run of it removes what a killed one left here (run-lock.ts).
  const scratchDir = partitionScratchDir(plan.dirs.state, plan.pipeline, runId);
  const family: Family = {
    byName: new Map(results.map((r) => [r.name, r])),
    finished: new Map(),
    hasChildren: new Set(streams.map((s) => s.parent).filter((p): p is string => Boolean(p))),
    scratchDir,
    authFailure,
    deferred: new Map(),
  };
  for (const stream of streams) family.finished.set(stream.name, runOneStream(scope, family, stream));
  await Promise.all(family.finished.values());
  await saveParentCursors(family.deferred, streams, results);
  await rm(scratchDir, { recursive: true, force: true });
  await rmdir(path.dirname(scratchDir)).catch(() => {}); // when no other run's is left
  await rmdir(path.dirname(path.dirname(scratchDir))).catch(() => {});
}

/** What the streams of one run share: results by name, who has finished, parent records on disk. */
interface Family {
  byName: Map<string, StreamResult>;
  finished: Map<string, Promise<void>>;
  hasChildren: Set<string>;
  scratchDir: string;
  authFailure: string | null;
  /** Parent cursors waiting for their children (parent-cursors.ts). */
  deferred: Map<string, () => Promise<void>>;
}

async function runOneStream(scope: RunScope, family: Family, stream: StreamPlan): Promise<void> {
  const { plan, opts, runId, streams } = scope;
  const result = family.byName.get(stream.name)!;
  if (family.authFailure) {
    result.status = "failed";
    result.error = { kind: "auth", message: family.authFailure };
    return;
  }
  if (stream.parent) {
    await family.finished.get(stream.parent);
    const parent = family.byName.get(stream.parent)!;
    if (parent.status !== "ok") {
      result.status = "skipped";
      result.error = {
        kind: "partition",
        message: `parent stream \`${stream.parent}\` did not succeed`,
      };
      return;
    }
  }
  const scratch = (name: string) => scratchFile(family.scratchDir, name);
  const parentPlan = stream.parent ? streams.find((s) => s.name === stream.parent) : undefined;
  await runStream(
    stream,
    scope.session.executor,
    {
      runId,
      pipeline: plan.pipeline,
      runStartedAt: new Date(scope.startedAtMs).toISOString(),
      baseUrl: plan.source.baseUrl,
      origin: plan.source.origin,
      allowedOrigins: plan.source.allowedOrigins,
      concurrency: plan.source.concurrency,
      validation: plan.validation,
      limit: opts.limit ?? null,
      maxPages: opts.maxPages ?? null,
      fullRefresh: opts.fullRefresh ?? false,
      prefetch: plan.source.concurrency,
      workers: resolveWorkers(plan.source.workers),
      pageWorkers: plan.source.workers === "auto" ? 1 : resolveWorkers(plan.source.workers),
      state: scope.session.state,
      scratchDir: family.scratchDir,
      signal: opts.signal,
      startedAtMs: scope.startedAtMs,
      guard: opts.guard,
      deferCursor: deferFor(family, stream),
      remote: opts.remote,
    },
    {
      parentRecords: stream.parent ? scratch(stream.parent) : null,
      keepRecordsAt: family.hasChildren.has(stream.name) ? scratch(stream.name) : null,
      parentKey: parentPlan?.primaryKey ?? null,
    },
    result,
  );
}

/** A parent's cursor (kept in the state file) waits for its children; a database keeps its own. */
function deferFor(family: Family, stream: StreamPlan): StreamRunOptions["deferCursor"] {
  if (!family.hasChildren.has(stream.name) || stream.output.stateKey) return undefined;
  return (save) => family.deferred.set(stream.name, save);
}

/** ok when every stream is; quality_failed when the only failures are about data quality. */
function pipelineStatus(results: StreamResult[]): PipelineResult["status"] {
  if (results.every((r) => r.status === "ok")) return "ok";
  return results.every(
    (r) =>
      r.status === "ok" ||
      r.status === "rejected" ||
      (r.status === "partial" && (r.error?.kind === "validation" || r.error?.kind === "drift")) ||
      (r.status === "failed" && (r.error?.kind === "validation" || r.error?.kind === "drift")),
  )
    ? "quality_failed"
    : "failed";
}
