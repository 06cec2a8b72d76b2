import type { TestProject } from "vitest/node";
import { startRedis } from "./redis-server.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

/**
 * Once per test run: a throwaway redis-server (test/queue/redis-server.mjs) for the queue tests;
 * each test file uses its own key prefix (test/queue/helpers.ts). Fails the run with a message
 * when redis-server is not installed: those tests are never skipped silently.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = await startRedis();
  project.provide("redisUrl", redis.url);
  return () => redis.stop();
}
