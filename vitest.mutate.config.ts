import { defineConfig } from "vitest/config";

// The tests of one mutation group (stryker.config.mjs sets MUTATE_TESTS); every test otherwise.
const include = process.env.MUTATE_TESTS?.split(",") ?? ["test/**/*.test.ts"];

export default defineConfig({
  test: {
    include,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
