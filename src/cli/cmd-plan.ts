import { compilePlan } from "../compile/compile-plan.js";
import { formatPlan, redactPlan } from "../compile/show-plan.js";
import { projectFor } from "./context.js";
import { type CliIO, EXIT } from "./io.js";
import { loadForPlan, showUnset, UNSET } from "./plan-unset.js";

/** `pipelines plan <name>`: the compiled plan, secrets masked. */
export async function planCommand(io: CliIO, name: string, opts: { json?: boolean }): Promise<number> {
  const project = await projectFor(io);
  const { loaded, unset } = loadForPlan(io, project, name);
  const plan = redactPlan(showUnset(compilePlan(loaded)), loaded.redactor);
  if (unset.length)
    io.stderr.write(
      `not set or empty: ${unset.join(", ")} (shown as ${UNSET}); \`pipelines run ${name}\` needs ${unset.length === 1 ? "it" : "them"}\n`,
    );
  const { previewPlan } = await import("../run/plan-preview.js");
  const previews = previewPlan(plan, Date.now());
  const json = () => ({ ...plan, streams: plan.streams.map((s) => ({ ...s, preview: previews[s.name] })) });
  io.stdout.write(opts.json ? `${JSON.stringify(json(), null, 2)}\n` : `${formatPlan(plan, previews)}\n`);
  return EXIT.ok;
}
