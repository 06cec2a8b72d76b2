import type { StreamPlan } from "../compile/plan.js";
import type { StreamResult } from "./stream-result.js";

/**
 * A parent stream's incremental cursor moves past its records only once every child partition of
 * those records is committed: every stream below it succeeded, no partition failed (even one
 * skipped by `on_partition_error: skip`) and none was cut short. Otherwise the next run fetches
 * the same parent records again, so the children's missing partitions are not lost.
 */
export async function saveParentCursors(
  deferred: Map<string, () => Promise<void>>,
  streams: StreamPlan[],
  results: StreamResult[],
): Promise<void> {
  const byName = new Map(results.map((r) => [r.name, r]));
  for (const [parent, save] of deferred) {
    const unfinished = descendants(parent, streams)
      .map((name) => byName.get(name))
      .filter((r): r is StreamResult => r !== undefined && !committedAll(r));
    if (!unfinished.length) {
      await save();
      continue;
    }
    byName
      .get(parent)
      ?.warnings.push(
        `incremental cursor not saved: ${unfinished.map((r) => `\`${r.name}\``).join(", ")} did not commit every partition of this run's records; the next run fetches them again`,
      );
  }
}

function committedAll(r: StreamResult): boolean {
  if (r.status !== "ok") return false;
  if (r.partitions?.failed.length) return false;
  return !r.units?.incomplete;
}

function descendants(name: string, streams: StreamPlan[]): string[] {
  const out: string[] = [];
  for (const s of streams) if (s.parent === name) out.push(s.name, ...descendants(s.name, streams));
  return out;
}
