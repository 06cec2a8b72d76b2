import type { TestProject } from "vitest/node";
import { startCluster } from "./pg-cluster.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgPasswordUrl: string;
  }
}

/**
 * Once per test run: a throwaway PostgreSQL cluster (test/pg/pg-cluster.mjs) for the postgres
 * output tests; each test file creates its own database (test/pg/helpers.ts). Fails the run with
 * a message when PostgreSQL is not installed: those tests are never skipped silently.
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const cluster = await startCluster();
  project.provide("pgAdminUrl", cluster.adminUrl);
  project.provide("pgPasswordUrl", cluster.pwUrl);
  return () => cluster.stop();
}
