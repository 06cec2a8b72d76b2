import { defineConfig } from "vitest/config";

// The tests of one mutation group (stryker.config.mjs sets MUTATE_TESTS); every test otherwise.
const include = process.env.MUTATE_TESTS?.split(",") ?? ["test/**/*.test.ts"];

export default defineConfig({
  test: {
    include,
    // The throwaway PostgreSQL cluster, for a group whose tests include test/pg/ ones.
    globalSetup: include.some((t) => t.startsWith("test/pg/")) ? ["test/pg/global-setup.ts"] : [],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
