import type { Redis } from "ioredis";
import type { ExecutionPlan } from "../compile/plan.js";
import type { LoadedPipeline } from "../config/load-pipeline.js";
import { readEnv } from "../config/load-pipeline.js";
import type { Project } from "../config/project.js";
import type { TokenShare } from "../http/auth/token-share.js";
import {
  checkReachable,
  connect,
  lostAfterMs,
  type QueueConfig,
  QueueConfigError,
  queueConfig,
  shownRedis,
} from "../queue/connection.js";
import { pipelineFileHash } from "../queue/file-hash.js";
import { lockInRedis, QueueLockedError } from "../queue/redis-lock.js";
import { RedisStateStore } from "../queue/redis-state.js";
import { redisTokenShare } from "../queue/redis-tokens.js";
import { QueueSubmitter } from "../queue/submit.js";
import { PipelineLockedError, type RunLock } from "../run/run-lock.js";
import { databaseUrlSecrets } from "../shared/secrets.js";
import type { StateStore } from "../state/state-store.js";
import { CliError, type CliIO, EXIT } from "./io.js";

/**
 * A project with `queue` keeps its run locks and saved state in Redis, for local runs too, so
 * every machine (a submitter, a scheduled run on any worker) sees one lock and one state.
 */
export interface QueueProject {
  cfg: QueueConfig;
  /** Takes the pipeline's lock in Redis beside the local one (refused like a local lock). */
  lock(plan: ExecutionPlan, runId: string, local: RunLock): Promise<RunLock>;
  /** The pipeline's saved state, in Redis. */
  state(plan: ExecutionPlan): StateStore;
  /** The OAuth2 token the workers share (null without an OAuth2 secret to seal it with). */
  tokens(plan: ExecutionPlan): TokenShare | null;
  close(): void;
}

/** The project's queue, Redis reachable, or null without one (a setting that cannot be used: exit 2). */
export async function openQueueProject(io: CliIO, project: Project): Promise<QueueProject | null> {
  let cfg: QueueConfig | null;
  try {
    cfg = queueConfig(project, readEnv(project, io.env));
  } catch (err) {
    if (err instanceof QueueConfigError) throw new CliError(err.message, EXIT.config);
    throw err;
  }
  if (!cfg) return null;
  await reachable(cfg);
  const qc = cfg;
  const redis = connect(qc, { commandTimeoutMs: lostAfterMs() });
  redis.on("error", () => {});
  return {
    cfg: qc,
    lock: (plan, runId, local) => withQueueLock(redis, qc, plan, runId, local),
    state: (plan) => new RedisStateStore(plan.dirs.state, plan.pipeline, redis, qc.prefix),
    tokens: (plan) => redisTokenShare(redis, `${qc.prefix}:auth:${plan.pipeline}`, plan.auth),
    close: () => redis.disconnect(),
  };
}

/** A `run --queue` command's queue, and the hash of each pipeline file as it was loaded. */
export interface QueueRunSetup {
  cfg: QueueConfig;
  fileHashes: Map<string, string>;
}

/**
 * What `run --queue` refuses; checked before anything is sent. The files are hashed now, as
 * compiled: one edited while an earlier pipeline of the command runs is refused by the workers.
 */
export async function checkQueueRun(
  queue: QueueProject | null,
  loaded: LoadedPipeline[],
): Promise<QueueRunSetup> {
  if (!queue)
    throw new CliError(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own `${env.…}` syntax, shown to the user
      "--queue needs a queue in the project config: `queue: { redis: ${env.REDIS_URL} }` in pipelines.config.yaml",
      EXIT.config,
    );
  for (const l of loaded) l.redactor.add(databaseUrlSecrets(queue.cfg.url));
  const hashes = await Promise.all(loaded.map((l) => pipelineFileHash(l.project, l.name)));
  return { cfg: queue.cfg, fileHashes: new Map(loaded.map((l, i) => [l.name, hashes[i] ?? ""])) };
}

/** Redis answers, or the command ends with exit 1 (its URL masked in the message). */
async function reachable(cfg: QueueConfig): Promise<void> {
  try {
    await checkReachable(cfg);
  } catch (err) {
    if (err instanceof QueueConfigError) throw new CliError(err.message, EXIT.runFailed);
    throw err;
  }
}

/**
 * The project's queue for `pipelines worker` and `status`, Redis reachable: a project without one
 * ends with `missing` (exit 2); a queue setting that cannot be used or a Redis that does not
 * answer ends with exit 1.
 */
export async function projectQueue(io: CliIO, project: Project, missing: string): Promise<QueueConfig> {
  let cfg: QueueConfig | null;
  try {
    cfg = queueConfig(project, readEnv(project, io.env));
  } catch (err) {
    if (err instanceof QueueConfigError) throw new CliError(err.message, EXIT.runFailed);
    throw err;
  }
  if (!cfg) throw new CliError(missing, EXIT.config);
  await reachable(cfg);
  return cfg;
}

/**
 * The submitter of one pipeline's queue run (close it when the run is done). With no worker
 * taking jobs, the run waits for one: said at once, not left to look stuck.
 */
export async function openSubmitter(
  setup: QueueRunSetup,
  plan: ExecutionPlan,
  loaded: LoadedPipeline,
  runId: string,
  io: Pick<CliIO, "signal" | "stderr">,
): Promise<QueueSubmitter> {
  const fileHash = setup.fileHashes.get(loaded.name) ?? "";
  const s = new QueueSubmitter(setup.cfg, plan, { runId, fileHash }, io.signal);
  await s.ready();
  if (!(await s.hasWorkers()))
    io.stderr.write(
      `${plan.pipeline}: no \`pipelines worker\` takes jobs from the queue's ${shownRedis(setup.cfg)} now: the run waits until one starts (Ctrl-C to stop)\n`,
    );
  return s;
}

/**
 * With a queue, every run also holds the pipeline's lock in Redis, so two machines never run one
 * pipeline at once (`run` and `run --queue` alike); refused like a local lock (exit 1).
 */
async function withQueueLock(
  redis: Redis,
  cfg: QueueConfig,
  plan: ExecutionPlan,
  runId: string,
  local: RunLock,
): Promise<RunLock> {
  try {
    const held = await lockInRedis(redis, cfg.prefix, plan.pipeline, runId);
    return {
      removed: local.removed,
      async release() {
        await held.release();
        await local.release();
      },
    };
  } catch (err) {
    await local.release();
    if (err instanceof QueueLockedError) throw new PipelineLockedError(err.message, true);
    // Redis answers but refuses the write (full under maxmemory: OOM, a read-only replica) or
    // does not answer in time: said with its reason, not as an internal error.
    const reason = cfg.redactor.text(((err as Error)?.message ?? String(err)).replace(/\.$/, ""));
    throw new CliError(
      `the queue's ${shownRedis(cfg)} refused the run lock: ${reason}. Nothing was sent`,
      EXIT.runFailed,
    );
  }
}
