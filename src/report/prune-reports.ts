import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import { RUN_ID } from "../run/run-id.js";

/**
 * Retention (`reports.keep`): keeps the reports of the newest `keep` runs in a pipeline's report
 * folder and removes older `<run-id>.json` / `.html` pairs. Run ids start with their UTC time, so
 * their order is the runs' order. Only files named by a run id are touched: `latest.*` and
 * anything else in the folder stay. Returns the removed file names.
 */
export async function pruneReports(dir: string, keep: number): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const byRun = new Map<string, string[]>();
  for (const name of names) {
    const m = /^(.+)\.(json|html)$/.exec(name);
    if (!m || !RUN_ID.test(m[1])) continue;
    byRun.set(m[1], [...(byRun.get(m[1]) ?? []), name]);
  }
  const old = [...byRun.keys()].sort().slice(0, Math.max(0, byRun.size - keep));
  const removed = old.flatMap((id) => byRun.get(id)!);
  await Promise.all(removed.map((n) => rm(path.join(dir, n), { force: true })));
  return removed;
}
