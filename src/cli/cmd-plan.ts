import { compilePlan } from "../compile/compile-plan.js";
import { formatPlan, redactPlan } from "../compile/show-plan.js";
import { load, projectFor } from "./context.js";
import { type CliIO, EXIT } from "./io.js";

/** `pipelines plan <name>`: the compiled plan, secrets masked. */
export async function planCommand(io: CliIO, name: string, opts: { json?: boolean }): Promise<number> {
  const project = await projectFor(io);
  const loaded = load(io, project, name);
  const plan = redactPlan(compilePlan(loaded), loaded.redactor);
  const { previewPlan } = await import("../run/plan-preview.js");
  const previews = previewPlan(plan, Date.now());
  const json = () => ({ ...plan, streams: plan.streams.map((s) => ({ ...s, preview: previews[s.name] })) });
  io.stdout.write(opts.json ? `${JSON.stringify(json(), null, 2)}\n` : `${formatPlan(plan, previews)}\n`);
  return EXIT.ok;
}
