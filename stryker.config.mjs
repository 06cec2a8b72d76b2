// Mutation testing of the safety core (`npm run mutate`; not part of `npm test`).
// scripts/mutate.mjs runs Stryker once per group below, with MUTATE_GROUP set; a group mutates
// its modules and runs only the tests that aim at them (vitest.mutate.config.ts reads
// MUTATE_TESTS). Scores and surviving mutants: docs/mutation.md.
import { groups } from "./scripts/mutate-groups.mjs";

const name = process.env.MUTATE_GROUP;
const group = groups[name];
if (!group) throw new Error(`MUTATE_GROUP must be one of ${Object.keys(groups).join(", ")}`);
// One module of the group (`npm run mutate -- --file src/x.ts`), optionally with fewer tests.
const file = process.env.MUTATE_FILE;
if (file && !group.mutate.some((g) => new RegExp(`^${g.replaceAll(".", "\\.").replaceAll("*", "[^/]*")}$`).test(file)))
  throw new Error(`${file} is not a module of group ${name}`);
process.env.MUTATE_TESTS = process.env.MUTATE_ONLY_TESTS ?? group.tests.join(",");
const report = file ? `${name}.${file.split("/").pop().replace(/\.ts$/, "")}` : name;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutate.config.ts", related: false },
  checkers: ["typescript"],
  tsconfigFile: "tsconfig.mutate.json",
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  mutate: file ? [file] : group.mutate,
  // "all", not "perTest": many tests do their runs in beforeAll, which perTest attributes to no
  // test, so it would run the wrong tests and report survivors that the suite kills.
  coverageAnalysis: "all",
  concurrency: Number(process.env.MUTATE_CONCURRENCY ?? 1),
  incrementalFile: `reports/mutation/${report}.incremental.json`,
  reporters: ["clear-text", "progress", "json"],
  jsonReporter: { fileName: `reports/mutation/${report}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  ignorePatterns: ["dist", "out", "reports", "demo/out", "demo/reports", ".pipelines", "test-artifacts", "bench"],
  tempDirName: ".stryker-tmp",
  cleanTempDir: true,
  timeoutMS: 20_000,
  thresholds: { high: 90, low: 85, break: null },
};
