import { rename, rm } from "node:fs/promises";
import path from "node:path";
import { previewPath } from "../compile/layout.js";
import type { OutputPlan, StreamPlan } from "../compile/plan.js";
import { DEFAULTS } from "../config/defaults.gen.js";
import type { StopReason } from "../http/paginators/paginator.js";
import { outputHasRecords } from "../outputs/has-records.js";
import type { StreamQuality } from "../records/quality.js";
import type { RecordSink } from "./record-sink.js";
import type { StreamRunOptions } from "./stream-options.js";

export type { GuardOptions } from "./stream-options.js";

import { formatNumber } from "../shared/format.js";
import type { StreamResult, Suspicion } from "./stream-result.js";
import { fieldSuspicions } from "./suspicions.js";

export interface GuardInput {
  output: OutputPlan;
  written: number;
  /** The current output holds at least one record. */
  targetHasRecords: boolean;
  stop: StopReason | null;
  /** The run was made with --limit / --max-pages. */
  limited: { limit: number | null; maxPages: number | null };
  previous: number | null;
  suspicions: Suspicion[];
  commitPartial: boolean;
}

/** commit; or keep the output beside the target (`refuse`: as a failed data-quality check, exit 3). */
export type GuardDecision =
  | { commit: true; suspicions: Suspicion[] }
  | { commit: false; refuse: boolean; why: string; suspicions: Suspicion[] };

/** The output's guard settings, defaults filled in. */
function guardSettings(output: OutputPlan): NonNullable<OutputPlan["guard"]> {
  return (
    output.guard ?? {
      allowEmpty: DEFAULTS.output.allow_empty,
      maxVolumeDrop: DEFAULTS.output.max_volume_drop,
    }
  );
}

/** The run was cut short by --limit / --max-pages. */
function cutShort(g: Pick<GuardInput, "limited" | "stop">): boolean {
  return (
    (g.limited.limit !== null && g.stop?.code === "limit") ||
    (g.limited.maxPages !== null && g.stop?.code === "max_pages")
  );
}

/**
 * The one decision: may this stream's output be committed? Pure. A `replace` run does not
 * replace an output that has records with an empty one (unless `output.allow_empty`), with one
 * cut short by --limit / --max-pages, or with one that dropped by more than `max_volume_drop`
 * against the last committed run; in any mode a suspicion that `decides` refuses. `--commit-partial`
 * commits anyway (the suspicions are still reported).
 */
export function decideCommit(g: GuardInput): GuardDecision {
  const found = [...g.suspicions];
  const settings = guardSettings(g.output);
  const replace = g.output.mode === "replace";
  const cut = cutShort(g);
  if (replace && g.targetHasRecords && g.written === 0 && !settings.allowEmpty) {
    found.push({
      code: "empty_replace",
      decides: true,
      message: `this run wrote no record and would replace an output that has records (set \`output.allow_empty: true\`, or run with --commit-partial, to commit an empty output)`,
    });
  } else if (replace && g.targetHasRecords && cut) {
    const flag =
      g.stop?.code === "limit" ? `--limit ${g.limited.limit}` : `--max-pages ${g.limited.maxPages}`;
    found.push({
      code: "partial_replace",
      decides: false,
      message: `a run made with ${flag} does not replace the full output (run with --commit-partial to replace it)`,
    });
  } else if (
    replace &&
    !(g.written === 0 && settings.allowEmpty) &&
    g.previous !== null &&
    g.previous > 0 &&
    settings.maxVolumeDrop < 1 &&
    g.written < g.previous * (1 - settings.maxVolumeDrop)
  ) {
    const drop = ((1 - g.written / g.previous) * 100).toFixed(1);
    found.push({
      code: "volume_drop",
      decides: true,
      message: `${formatNumber(g.written)} records written, ${drop}% fewer than the ${formatNumber(g.previous)} of the last committed run (more than \`output.max_volume_drop\` ${(settings.maxVolumeDrop * 100).toFixed(0)}%; run with --commit-partial to commit it)`,
    });
  }
  if (g.commitPartial) return { commit: true, suspicions: found };
  const refusing = found.filter((s) => s.decides);
  if (refusing.length) return { commit: false, refuse: true, why: refusing[0].message, suspicions: found };
  const partial = found.find((s) => s.code === "partial_replace");
  if (partial) return { commit: false, refuse: false, why: partial.message, suspicions: found };
  return { commit: true, suspicions: found };
}

/**
 * Called once per stream before its commit: adds the end-of-stream suspicions, decides, and when
 * the output must not be committed keeps it beside as `<name>.preview.<ext>` and says so. True
 * when it kept the output beside (the caller must not commit, nor save the cursor).
 */
export async function guardCommit(
  stream: StreamPlan,
  opts: StreamRunOptions,
  sink: RecordSink,
  quality: StreamQuality,
  result: StreamResult,
): Promise<boolean> {
  const g = opts.guard;
  const limited = { limit: opts.limit ?? null, maxPages: opts.maxPages ?? null };
  const written = result.records.written;
  // The target is looked at only when its rows decide (an empty or a cut `replace`): a look at a
  // database takes a second connection, which a server may refuse (the stream then fails).
  const look =
    stream.output.mode === "replace" &&
    ((written === 0 && !guardSettings(stream.output).allowEmpty) || cutShort({ limited, stop: result.stop }));
  const decision = decideCommit({
    output: stream.output,
    written,
    targetHasRecords: look && (await outputHasRecords(stream.output, stream.name)),
    stop: result.stop,
    limited,
    previous: g?.previousWritten(stream.name) ?? null,
    suspicions: [...result.suspicions, ...fieldSuspicions(stream, quality.fieldStats(), result.records.seen)],
    commitPartial: g?.commitPartial ?? false,
  });
  result.suspicions = decision.suspicions;
  if (decision.commit) return false;
  const kept = await keepBeside(stream, await sink.reject(result.warnings));
  result.preview = kept;
  const where = kept ? `; this run's output is in ${kept}` : "";
  if (decision.refuse) {
    result.status = "rejected";
    result.error = {
      kind: "suspicious",
      message: `not committed: ${decision.why}. The previous output is unchanged${where}.`,
    };
  } else {
    result.status = "ok";
    result.warnings.push(`not committed: ${decision.why}. The previous output is unchanged${where}`);
  }
  return true;
}

/**
 * A file output kept by `keepRejected` is renamed to the preview name (replacing the last one);
 * a database (sqlite, duckdb, postgres) keeps it as a table and names it so.
 */
async function keepBeside(stream: StreamPlan, kept: string | null): Promise<string | null> {
  const database = ["sqlite", "duckdb", "postgres"].includes(stream.output.format);
  if (!kept || database || !kept.startsWith(path.dirname(stream.output.path))) return kept;
  const target = previewPath(stream.output.path);
  await rm(target, { force: true });
  await rename(kept, target);
  return target;
}
