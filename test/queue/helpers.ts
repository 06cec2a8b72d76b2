// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files and project configs use `${…}` templates
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import type { RequestListener } from "node:http";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, inject } from "vitest";
import type { Project } from "../../src/config/project.js";
import { pipelineFileHash } from "../../src/queue/file-hash.js";
import type { UnitJob } from "../../src/queue/jobs.js";
import { stagedKey } from "../../src/queue/staging.js";
import { VERSION } from "../../src/shared/version.js";
import { BIN } from "../built.js";
import { useLocalServer } from "../run/helpers.js";

/** The throwaway redis-server of this test run (test/queue/global-setup.ts). */
export const redisUrl = (): string => inject("redisUrl");

/**
 * What a test of a UnitRunner needs, started before the file's tests and stopped after them: a
 * loopback API answering with `handler`, and a connection to the run's redis-server.
 */
export function useApiAndRedis(handler: RequestListener): { readonly base: string; readonly redis: Redis } {
  const api = useLocalServer(handler);
  let redis: Redis | null = null;
  beforeAll(() => {
    redis = new Redis(redisUrl());
  });
  afterAll(() => redis?.disconnect());
  return {
    get base() {
      return api.url;
    },
    get redis() {
      if (!redis) throw new Error("useApiAndRedis: no test is running");
      return redis;
    },
  };
}

/**
 * The job of a whole stream (no window or partition) of pipeline `p` in run `r1`, number `n`, as
 * the submitter makes it: `jobOf(n)` for a UnitRunner under key prefix `prefix`.
 */
export async function streamJobs(
  project: Project,
  stream: string,
  prefix: string,
  pipeline = "p",
): Promise<(n: number) => UnitJob> {
  const fileHash = String(await pipelineFileHash(project, pipeline));
  return (n) => ({
    pipeline,
    fileHash,
    version: VERSION,
    runId: "r1",
    runStartedAt: new Date().toISOString(),
    stream,
    unit: null,
    since: null,
    maxPages: null,
    staged: stagedKey(prefix, "r1", n),
  });
}

/** `pipelines.config.yaml` with a queue under its own key prefix (one per test file). */
export function writeQueueConfig(dir: string, prefix: string): void {
  writeFileSync(
    path.join(dir, "pipelines.config.yaml"),
    ["queue:", "  redis: ${env.REDIS_URL}", `  prefix: ${prefix}`, ""].join("\n"),
  );
}

export interface WorkerProcess {
  child: ChildProcess;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** A real `pipelines worker` (the built CLI) in `dir`; resolves once it takes jobs. */
export async function startWorker(
  dir: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [BIN, "worker", ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", NO_COLOR: "1", REDIS_URL: redisUrl(), ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
      if (stderr.includes("taking jobs")) resolve();
    });
    exited.then((e) =>
      reject(new Error(`worker exited (${e.code ?? e.signal}) before taking jobs:\n${stderr}`)),
    );
  });
  await ready;
  return {
    child,
    stderr: () => stderr,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** `n` workers, started one after the other (startWorker); if one fails to start, the others are stopped. */
export async function startWorkers(
  n: number,
  dir: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<WorkerProcess[]> {
  const workers: WorkerProcess[] = [];
  try {
    for (let i = 0; i < n; i++) workers.push(await startWorker(dir, args, env));
  } catch (err) {
    await Promise.all(workers.map((w) => w.stop()));
    throw err;
  }
  return workers;
}
