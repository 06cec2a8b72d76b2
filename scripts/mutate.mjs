#!/usr/bin/env node
// Mutation testing of the safety core: `npm run mutate [-- <group>...] [--incremental] [--changed]`.
//   <group>        only these groups (scripts/mutate-groups.mjs); default: all
//   --incremental  Stryker's incremental mode: mutants whose code and tests did not change keep
//                  their last result (reports/mutation/<group>.incremental.json)
//   --changed      only the groups with a module changed against `main` (or MUTATE_BASE), incremental
// Prints the score per module and writes reports/mutation/<group>.json (Stryker's JSON report).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { groups } from "./mutate-groups.mjs";

const args = process.argv.slice(2);
const changed = args.includes("--changed");
const incremental = changed || args.includes("--incremental");
let names = args.filter((a) => !a.startsWith("--"));
for (const n of names) if (!groups[n]) throw new Error(`no group ${n}: ${Object.keys(groups).join(", ")}`);
if (!names.length) names = Object.keys(groups);

if (changed) {
  const base = process.env.MUTATE_BASE ?? "main";
  const diff = (a) => execFileSync("git", ["diff", "--name-only", ...a], { encoding: "utf8" }).split("\n");
  const files = new Set([...diff([`${base}...HEAD`]), ...diff(["HEAD"])].filter(Boolean));
  const matches = (glob, f) =>
    new RegExp(`^${glob.replaceAll(".", "\\.").replaceAll("*", "[^/]*")}$`).test(f);
  names = names.filter((n) =>
    [...groups[n].mutate, ...groups[n].tests].some((g) => [...files].some((f) => matches(g, f))),
  );
  console.log(names.length ? `changed groups: ${names.join(", ")}` : "no safety-core module changed");
}

const rows = [];
for (const name of names) {
  const stryker = path.join("node_modules", ".bin", "stryker");
  const r = spawnSync(stryker, ["run", "stryker.config.mjs", ...(incremental ? ["--incremental"] : [])], {
    stdio: "inherit",
    env: { ...process.env, MUTATE_GROUP: name },
  });
  if (r.status !== 0) process.exitCode = 1;
  const report = `reports/mutation/${name}.json`;
  if (existsSync(report)) rows.push(...scores(JSON.parse(readFileSync(report, "utf8"))));
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
