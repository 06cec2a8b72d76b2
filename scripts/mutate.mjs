#!/usr/bin/env node
// Mutation testing of the safety core: `npm run mutate [-- <group>...] [--incremental] [--changed]`.
//   <group>        only these groups (scripts/mutate-groups.mjs); default: all
//   --incremental  Stryker's incremental mode: mutants whose code and tests did not change keep
//                  their last result (reports/mutation/<group>.incremental.json)
//   --changed      only the groups with a module changed against `main` (or MUTATE_BASE), incremental
//   --file <path>  only this module (of the groups named, or of the group that holds it), with the
//                  group's tests; its report is reports/mutation/<group>.<module>.json
//   --tests <glob,...>  run only these test files instead of the group's (with --file)
// Prints the score per module and writes reports/mutation/<group>.json (Stryker's JSON report).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { groups } from "./mutate-groups.mjs";

const args = process.argv.slice(2);
const changed = args.includes("--changed");
const incremental = changed || args.includes("--incremental");
const option = (flag) => {
  const i = args.indexOf(flag);
  if (i < 0) return undefined;
  const value = args[i + 1];
  if (!value || value.startsWith("--")) throw new Error(`${flag} needs a value`);
  args.splice(i, 2);
  return value;
};
const file = option("--file");
const tests = option("--tests");
if (tests && !file) throw new Error("--tests goes with --file");
let names = args.filter((a) => !a.startsWith("--"));
for (const n of names) if (!groups[n]) throw new Error(`no group ${n}: ${Object.keys(groups).join(", ")}`);
if (!names.length) names = Object.keys(groups);
if (file) {
  const inGroup = (n) => groups[n].mutate.some((g) => globMatches(g, file));
  names = names.filter(inGroup);
  if (!names.length) throw new Error(`${file} is in no safety-core group`);
  names = names.slice(0, 1);
}

function globMatches(glob, f) {
  return new RegExp(`^${glob.replaceAll(".", "\\.").replaceAll("*", "[^/]*")}$`).test(f);
}

if (changed) {
  const base = process.env.MUTATE_BASE ?? "main";
  const diff = (a) => execFileSync("git", ["diff", "--name-only", ...a], { encoding: "utf8" }).split("\n");
  const files = new Set([...diff([`${base}...HEAD`]), ...diff(["HEAD"])].filter(Boolean));
  names = names.filter((n) =>
    [...groups[n].mutate, ...groups[n].tests].some((g) => [...files].some((f) => globMatches(g, f))),
  );
  console.log(names.length ? `changed groups: ${names.join(", ")}` : "no safety-core module changed");
}

const rows = [];
for (const name of names) {
  const stryker = path.join("node_modules", ".bin", "stryker");
  const r = spawnSync(stryker, ["run", "stryker.config.mjs", ...(incremental ? ["--incremental"] : [])], {
    stdio: "inherit",
    env: {
      ...process.env,
      MUTATE_GROUP: name,
      ...(file ? { MUTATE_FILE: file } : {}),
      ...(tests ? { MUTATE_ONLY_TESTS: tests } : {}),
    },
  });
  if (r.status !== 0) process.exitCode = 1;
  const report = `reports/mutation/${reportName(name, file)}.json`;
  if (existsSync(report)) rows.push(...scores(JSON.parse(readFileSync(report, "utf8"))));
}

/** The report's name: the group's, or `<group>.<module>` for one module (as in stryker.config.mjs). */
function reportName(group, module) {
  return module ? `${group}.${path.basename(module, ".ts")}` : group;
}

/** Killed (and timed out) mutants over those that ran or were not covered, per file. */
function scores(report) {
  return Object.entries(report.files).map(([file, { mutants }]) => {
    const n = (s) => mutants.filter((m) => m.status === s).length;
    const killed = n("Killed") + n("Timeout");
    const survived = n("Survived") + n("NoCoverage");
    const score = killed + survived ? (100 * killed) / (killed + survived) : 100;
    return { file, killed, survived, score: score.toFixed(1) };
  });
}

if (rows.length) {
  console.log("\nmodule | killed | survived | score %");
  for (const r of rows) console.log(`${r.file} | ${r.killed} | ${r.survived} | ${r.score}`);
}
