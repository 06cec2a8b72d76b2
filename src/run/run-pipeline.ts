import { rm, rmdir } from "node:fs/promises";
import path from "node:path";
import type { ExecutionPlan, StreamPlan } from "../compile/plan.js";
import { createAuth } from "../http/auth/create-auth.js";
import { HttpClient } from "../http/client.js";
import { RequestExecutor } from "../http/executor.js";
import { RateBudget } from "../http/rate-budget.js";
import { RetryPolicy } from "../http/retry-policy.js";
import { Semaphore } from "../http/semaphore.js";
import type { Redactor } from "../shared/secrets.js";
import { VERSION } from "../shared/version.js";
import { StateStore } from "../state/state-store.js";
import { newRunId } from "./run-id.js";
import { runStream } from "./run-stream.js";
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
export function openSession(plan: ExecutionPlan, redactor: Redactor, opts: { signal?: AbortSignal }) {
  const client = new HttpClient({
    timeoutMs: plan.source.timeoutMs,
    maxResponseBytes: plan.source.maxResponseBytes,
    connections: plan.source.concurrency,
    userAgent: `pipelines/${VERSION}`,
  });
  const state = new StateStore(plan.dirs.state, plan.pipeline);
  const policy = new RetryPolicy(plan.source.retry, plan.source.rateLimit);
  const budget = new RateBudget(plan.source.rateLimit);
  const auth = createAuth(plan, { client, redactor, state, policy, budget });
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
  const startedAt = new Date();
  const t0 = performance.now();

  const done = (async (): Promise<PipelineResult> => {
    const { client, state, auth, executor } = openSession(plan, redactor, opts);
    try {
      let authFailure: string | null = null;
      try {
        await auth.start(opts.signal);
      } catch (err) {
        authFailure = redactor.text((err as Error).message);
      }
      const byName = new Map(results.map((r) => [r.name, r]));
      // Per pipeline: the next run of it removes what a killed one left here (run-lock.ts).
      const scratchDir = path.join(plan.dirs.state, ".partitions", plan.pipeline, runId);
      const scratch = (name: string) => path.join(scratchDir, `${name}.jsonl`);
      const hasChildren = new Set(streams.map((s) => s.parent).filter((p): p is string => Boolean(p)));
      const finished = new Map<string, Promise<void>>();
      for (const stream of streams) {
        const result = byName.get(stream.name)!;
        const run = async () => {
          if (authFailure) {
            result.status = "failed";
            result.error = { kind: "auth", message: authFailure };
            return;
          }
          if (stream.parent) {
            await finished.get(stream.parent);
            const parent = byName.get(stream.parent)!;
            if (parent.status !== "ok") {
              result.status = "skipped";
              result.error = {
                kind: "partition",
                message: `parent stream \`${stream.parent}\` did not succeed`,
              };
              return;
            }
          }
          const parentPlan = stream.parent ? streams.find((s) => s.name === stream.parent) : undefined;
          await runStream(
            stream,
            executor,
            {
              runId,
              baseUrl: plan.source.baseUrl,
              origin: plan.source.origin,
              allowedOrigins: plan.source.allowedOrigins,
              concurrency: plan.source.concurrency,
              validation: plan.validation,
              limit: opts.limit ?? null,
              maxPages: opts.maxPages ?? null,
              fullRefresh: opts.fullRefresh ?? false,
              prefetch: plan.source.concurrency,
              state,
              scratchDir,
              signal: opts.signal,
            },
            {
              parentRecords: stream.parent ? scratch(stream.parent) : null,
              keepRecordsAt: hasChildren.has(stream.name) ? scratch(stream.name) : null,
              parentKey: parentPlan?.primaryKey ?? null,
            },
            result,
          );
        };
        finished.set(stream.name, run());
      }
      await Promise.all(finished.values());
      await rm(scratchDir, { recursive: true, force: true });
      await rmdir(path.dirname(scratchDir)).catch(() => {}); // when no other run's is left
      await rmdir(path.dirname(path.dirname(scratchDir))).catch(() => {});
    } finally {
      await client.close();
    }
    return {
      pipeline: plan.pipeline,
      runId,
      status: results.every((r) => r.status === "ok")
        ? "ok"
        : results.every(
              (r) =>
                r.status === "ok" ||
                r.status === "rejected" ||
                (r.status === "failed" && r.error?.kind === "validation"),
            )
          ? "quality_failed"
          : "failed",
      startedAt: startedAt.toISOString(),
      durationMs: performance.now() - t0,
      streams: results,
    };
  })();
  return { runId, results, done };
}
