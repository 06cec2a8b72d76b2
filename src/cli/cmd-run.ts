import { compilePlan } from "../compile/compile-plan.js";
import { startPipelineRun } from "../run/run-pipeline.js";
import { showProgress } from "../run/progress.js";
import { formatSummary, summaryJson } from "../run/summary.js";
import { load, projectFor } from "./context.js";
import { CliError, type CliIO, EXIT } from "./io.js";

export interface RunCommandOptions {
  stream?: string[];
  limit?: number;
  maxPages?: number;
  json?: boolean;
}

/** `pipelines run <name…>`: every pipeline is loaded and checked before anything is sent. */
export async function runCommand(io: CliIO, names: string[], opts: RunCommandOptions): Promise<number> {
  const project = await projectFor(io);
  const loaded = names.map((n) => load(io, project, n));
  const plans = loaded.map((l) => compilePlan(l));
  for (const plan of plans) {
    for (const s of opts.stream ?? []) {
      if (!plan.streams.some((x) => x.name === s)) {
        throw new CliError(`pipeline \`${plan.pipeline}\` has no stream \`${s}\`; streams: ${plan.streams.map((x) => x.name).join(", ")}`, EXIT.config);
      }
    }
  }
  let code: number = EXIT.ok;
  const summaries: Record<string, unknown>[] = [];
  for (let i = 0; i < plans.length; i++) {
    const plan = plans[i];
    const run = startPipelineRun(plan, loaded[i].redactor, {
      streams: opts.stream,
      limit: opts.limit ?? null,
      maxPages: opts.maxPages ?? null,
      signal: io.signal,
    });
    const view = await showProgress(plan.pipeline, run.results, run.done, io);
    const result = await run.done;
    await view.stop();
    io.stderr.write(`\n${formatSummary(result, project.root)}\n`);
    summaries.push(summaryJson(result));
    if (result.status !== "ok") code = Math.max(code, EXIT.runFailed);
    if (io.signal?.aborted) break;
  }
  if (opts.json) io.stdout.write(`${JSON.stringify(summaries.length === 1 ? summaries[0] : summaries, null, 2)}\n`);
  return code;
}
