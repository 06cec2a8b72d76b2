import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // A throwaway PostgreSQL cluster for the postgres output tests (fails loudly when missing).
    // A throwaway redis-server for the queue tests (fails loudly when missing).
    globalSetup: ["test/pg/global-setup.ts", "test/queue/global-setup.ts"],
  },
});
