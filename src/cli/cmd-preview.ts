import type { ExecutionPlan } from "../compile/plan.js";
import type { LoadedPipeline } from "../config/load-pipeline.js";
import type { Row } from "../records/shape.js";
import { sampleStream } from "../run/sample.js";
import { RunError } from "../shared/errors.js";
import { plural } from "../shared/format.js";
import { CliError, type CliIO, EXIT } from "./io.js";
import { recordTable } from "./record-table.js";

export const PREVIEW_DEFAULT = 20;

/**
 * `pipelines run <name> --preview [N]`: the first N records of each stream as they would be
 * written (after fields / flatten / include_parent), printed as a table on stdout (`--json`: as
 * JSON). Nothing is validated, written or committed; no cursor moves; no lock is taken.
 */
export async function previewRun(
  io: CliIO,
  plans: ExecutionPlan[],
  loaded: LoadedPipeline[],
  n: number,
  streams: string[] | undefined,
  json: boolean,
): Promise<number> {
  const out: Record<string, Record<string, Row[]>> = {};
  for (const [i, plan] of plans.entries()) {
    out[plan.pipeline] = {};
    for (const stream of plan.streams) {
      if (streams?.length && !streams.includes(stream.name)) continue;
      const rows: Row[] = [];
      try {
        const got = await sampleStream(
          plan,
          loaded[i].redactor,
          stream.name,
          n,
          (r) => rows.push(r),
          io.signal,
        );
        out[plan.pipeline][stream.name] = rows;
        if (!json) {
          io.stdout.write(
            `${plan.pipeline}.${stream.name}: first ${plural(rows.length, "record")} (${plural(got.pages, "page")}, ${plural(got.requests, "request")}; nothing written)\n${recordTable(rows)}\n\n`,
          );
        }
      } catch (err) {
        if (err instanceof RunError)
          throw new CliError(`${plan.pipeline}.${stream.name}: ${err.message}`, EXIT.runFailed);
        throw err;
      }
    }
  }
  if (json)
    io.stdout.write(`${JSON.stringify(plans.length === 1 ? out[plans[0].pipeline] : out, null, 2)}\n`);
  return EXIT.ok;
}
