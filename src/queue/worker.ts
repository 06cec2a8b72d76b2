import { setMaxListeners } from "node:events";
import { hostname } from "node:os";
import type { Redis } from "ioredis";
import { compilePlan } from "../compile/compile-plan.js";
import type { ExecutionPlan, RequestPlan, StreamPlan } from "../compile/plan.js";
import { ConfigError } from "../config/errors.js";
import { listPipelineNames, loadPipeline, readEnv } from "../config/load-pipeline.js";
import type { Project } from "../config/project.js";
import type { PageRequest } from "../http/paginators/paginator.js";
import { compileShaper, type Row } from "../records/shape.js";
import { applyIncremental } from "../run/incremental.js";
import { pull } from "../run/pull.js";
import { compileRequestTemplate } from "../run/request-template.js";
import { openSession } from "../run/run-pipeline.js";
import { recordContext, type StreamRunOptions } from "../run/stream-options.js";
import { newStreamResult, type StreamResult } from "../run/stream-result.js";
import { interrupted, MESSAGE_CHARS, quote, RunError } from "../shared/errors.js";
import { plural } from "../shared/format.js";
import { parseJson } from "../shared/json-text.js";
import type { Redactor } from "../shared/secrets.js";
import { untilAbort } from "../shared/sleep.js";
import { VERSION } from "../shared/version.js";
import { dotenvVersion, PipelineFileHashes } from "./file-hash.js";
import type { UnitJob, UnitOutcome } from "./jobs.js";
import { RedisRateBudget } from "./redis-budget.js";
import { redisTokenShare } from "./redis-tokens.js";
import { StagedWriter } from "./staging.js";

interface Compiled {
  plan: ExecutionPlan;
  redactor: Redactor;
  session: ReturnType<typeof openSession>;
  /** The session's first token (OAuth2), asked for at the first job; null again after a failure. */
  authStarted: Promise<void> | null;
  /** Each child stream's request template, compiled at its first job. */
  templates: Map<string, ReturnType<typeof compileRequestTemplate>>;
}

/**
 * A worker's side of a queue run: compiles the pipeline from its own project folder (once per
 * file text), refuses a job of another file text or tool version, runs the request sequence
 * with its own HTTP session, and leaves the shaped records in the job's staged list in Redis.
 */
export class UnitRunner {
  readonly id = `${hostname()}:${process.pid}`;
  private readonly compiled = new Map<string, Compiled>();
  private readonly fileHashes = new PipelineFileHashes();

  constructor(
    private readonly project: Project,
    private readonly env: Record<string, string | undefined>,
    /** Extra secrets of this worker (the Redis URL). */
    private readonly secrets: Iterable<string>,
    /** Where the shared rate budgets live: a connection and the key prefix. */
    private readonly budgets: { redis: Redis; prefix: string },
  ) {}

  /**
   * Runs one job; `signal` (its run was cancelled) stops it at once: no new page, no retry, no
   * wait (a Retry-After, a backoff) or request in flight goes on. `held` says
   * whether this worker still holds the job (its BullMQ lock): a worker that stalled past it saw
   * the job taken over by another one, its outcome will never be recorded, so it deletes its
   * staged rows at once instead of leaving them to expire.
   */
  async process(job: UnitJob, signal?: AbortSignal, held?: () => Promise<boolean>): Promise<UnitOutcome> {
    const base: UnitOutcome = {
      worker: this.id,
      stop: null,
      error: null,
      pages: 0,
      filtered: 0,
      rows: 0,
      staged: null,
      requests: null,
      suspicions: [],
    };
    // Each of its requests in flight listens to it (no leak: a warning on stderr otherwise).
    if (signal) setMaxListeners(0, signal);
    let redactor: Redactor | null = null;
    // A pull that fails still reports what it did (requests, retries, pages), as a local run counts them.
    let result: StreamResult | null = null;
    try {
      const refused = await this.refusal(job);
      if (refused) return { ...base, error: { kind: "queue", message: refused, details: {} } };
      const c = this.compile(job.pipeline, job.fileHash);
      redactor = c.redactor;
      result = newStreamResult(job.stream);
      return { ...base, ...(await this.pullUnit(c, job, result, signal, held)) };
    } catch (err) {
      const e =
        err instanceof RunError
          ? { kind: err.kind, message: err.message, details: err.details }
          : err instanceof ConfigError
            ? // Its text may quote values of this worker's environment: not sent, pointed at.
              {
                kind: "queue" as const,
                message: `worker ${this.id} cannot load pipeline \`${job.pipeline}\` (${plural(err.issues.length, "config error")}): run \`pipelines validate ${job.pipeline}\` where the worker runs, with its environment (${placesOf(err)})`,
                details: {},
              }
            : {
                kind: "internal" as const,
                message: redactor
                  ? quote((err as Error)?.message ?? String(err), redactor, MESSAGE_CHARS)
                  : "the worker failed",
                details: {},
              };
      return { ...base, ...(result ? counters(result) : {}), error: e };
    }
  }

  /** Why this worker will not run the job, or null. */
  private async refusal(job: UnitJob): Promise<string | null> {
    if (job.version !== VERSION)
      return `worker ${this.id} runs pipelines ${VERSION}, the submitter ${job.version}: every worker must run the submitter's version`;
    const hash = await this.fileHashes.hash(this.project, job.pipeline);
    if (hash === null)
      return `worker ${this.id} has no pipeline \`${job.pipeline}\` in ${this.project.pipelinesDir}`;
    if (hash !== job.fileHash)
      return `worker ${this.id}: its pipeline file \`${job.pipeline}\` differs from the submitter's (sha256 ${hash.slice(0, 12)}… here, ${job.fileHash.slice(0, 12)}… there): deploy the same file to every worker`;
    return null;
  }

  /**
   * Compiles the project's pipelines before the first job, so that the first jobs after a start
   * (a run's burst of partitions) do not wait behind it, one worker after the other. A pipeline
   * that does not load is left to its jobs, which report why. Returns how many were compiled.
   */
  async warm(): Promise<number> {
    let n = 0;
    for (const name of listPipelineNames(this.project)) {
      try {
        const hash = await this.fileHashes.hash(this.project, name);
        if (hash === null) continue;
        this.compile(name, hash);
        n++;
      } catch {
        // Told by its jobs, with the run's own error.
      }
    }
    return n;
  }

  /** How many pipeline versions this worker has compiled (tests: a warmed one is not compiled again). */
  get compiledCount(): number {
    return this.compiled.size;
  }

  private compile(pipeline: string, fileHash: string): Compiled {
    const key = `${pipeline}\n${fileHash}\n${dotenvVersion(this.project)}`;
    let c = this.compiled.get(key);
    if (!c) {
      const loaded = loadPipeline(this.project, pipeline, readEnv(this.project, this.env));
      loaded.redactor.add(this.secrets);
      const plan = compilePlan(loaded);
      const budget = new RedisRateBudget(
        this.budgets.redis,
        `${this.budgets.prefix}:budget:${plan.pipeline}`,
        plan.source.rateLimit,
        plan.source.timeoutMs,
      );
      const tokens = redisTokenShare(
        this.budgets.redis,
        `${this.budgets.prefix}:auth:${plan.pipeline}`,
        plan.auth,
      );
      const session = openSession(plan, loaded.redactor, { budget, tokens: tokens ?? undefined });
      c = {
        plan,
        redactor: loaded.redactor,
        session,
        authStarted: null,
        templates: new Map(),
      };
      this.compiled.set(key, c);
    }
    return c;
  }

  private async pullUnit(
    c: Compiled,
    job: UnitJob,
    result: StreamResult,
    signal?: AbortSignal,
    held?: () => Promise<boolean>,
  ): Promise<Partial<UnitOutcome>> {
    await authReady(c, signal);
    const stream = c.plan.streams.find((s) => s.name === job.stream);
    if (!stream) throw new RunError("queue", `worker ${this.id}: no stream \`${job.stream}\``);
    const opts = { ...streamOptions(c.plan, job, c.session.state), signal };
    const parent = job.unit?.parent ? (parseJson(job.unit.parent) as Row) : undefined;
    const first = applyIncremental(firstRequest(stream, c, job, parent), stream, job.since);
    const shaper = compileShaper(stream, {
      ...recordContext(stream, opts),
      window: job.unit?.window ?? null,
    });
    const staged = new StagedWriter(this.budgets.redis, job.staged, this.id);
    const write = (row: Row) => staged.write(row);
    try {
      const stop = await pull(stream, c.session.executor, opts, first, shaper, write, result, parent);
      await staged.finish();
      // Unsure (Redis unreachable a moment): kept; the key expires if the job was lost.
      if (held && !(await held().catch(() => true)))
        throw new RunError("queue", `worker ${this.id} lost the job: another worker took it over`);
      return { stop, ...counters(result), rows: staged.rows, staged: staged.key };
    } catch (err) {
      await staged.discard().catch(() => {});
      throw err;
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.compiled.values()].map((c) => c.session.client.close()));
  }
}

/** Where the issues of a pipeline that does not load are, and their codes (their texts may quote env values). */
function placesOf(err: ConfigError): string {
  const places = err.issues.map(
    (i) => `${i.file}:${i.line}:${i.column} ${i.code}${i.path ? ` \`${i.path}\`` : ""}`,
  );
  return `${places.slice(0, 3).join("; ")}${places.length > 3 ? "; …" : ""}`;
}

/** A pull's counters, as the submitter adds them to the stream's result (merge-stats.ts). */
function counters(result: StreamResult): Pick<UnitOutcome, "pages" | "filtered" | "requests" | "suspicions"> {
  return {
    pages: result.pages,
    filtered: result.records.filtered,
    requests: result.requests,
    suspicions: result.suspicions,
  };
}

/**
 * The session's credentials are ready (an OAuth2 token fetched once for every job of the
 * pipeline): a start that failed (the token endpoint down a moment) is asked again by the next
 * job, not kept as every later job's error. The job's signal ends its wait at once; the start
 * goes on for the session's next jobs.
 */
function authReady(c: Compiled, signal: AbortSignal | undefined): Promise<void> {
  // A job of a run cancelled before it started (refused at once): no token is asked for it.
  if (signal?.aborted) return Promise.reject(interrupted());
  let started = c.authStarted;
  if (!started) {
    const starting = c.session.auth.start();
    started = c.authStarted = starting;
    starting.catch(() => {
      if (c.authStarted === starting) c.authStarted = null;
    });
  }
  return untilAbort(started, signal);
}

function firstRequest(stream: StreamPlan, c: Compiled, job: UnitJob, parent: Row | undefined): PageRequest {
  if (job.unit) {
    let template = c.templates.get(stream.name);
    if (!template) {
      template = compileRequestTemplate(stream, c.plan.source.baseUrl);
      c.templates.set(stream.name, template);
    }
    return template(parent ?? {}, job.unit.label, job.unit.window);
  }
  const r: RequestPlan = stream.request;
  return { method: r.method, url: r.url, params: r.params, headers: r.headers, body: r.body };
}

function streamOptions(
  plan: ExecutionPlan,
  job: UnitJob,
  state: StreamRunOptions["state"],
): StreamRunOptions {
  return {
    runId: job.runId,
    pipeline: plan.pipeline,
    runStartedAt: job.runStartedAt,
    baseUrl: plan.source.baseUrl,
    origin: plan.source.origin,
    allowedOrigins: plan.source.allowedOrigins,
    concurrency: plan.source.concurrency,
    validation: plan.validation,
    limit: null,
    maxPages: job.maxPages,
    fullRefresh: false,
    // A unit pulls its pages in sequence (as partitions.ts does); a whole stream prefetches.
    prefetch: job.unit ? 1 : plan.source.concurrency,
    state,
    scratchDir: "",
    startedAtMs: Date.parse(job.runStartedAt),
  };
}
