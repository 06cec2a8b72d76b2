import path from "node:path";
import { compilePlan } from "../compile/compile-plan.js";
import { ConfigError } from "../config/errors.js";
import { listPipelineNames } from "../config/load-pipeline.js";
import { plural } from "../shared/format.js";
import { load, projectFor } from "./context.js";
import { type CliIO, EXIT } from "./io.js";

/** `pipelines validate [name…]`: every check short of the network, for each pipeline. */
export async function validateCommand(io: CliIO, names: string[]): Promise<number> {
  const project = await projectFor(io);
  const targets = names.length ? names : listPipelineNames(project);
  if (targets.length === 0) {
    io.stderr.write(
      `no pipeline files in ${path.relative(io.cwd, project.pipelinesDir) || project.pipelinesDir}\n`,
    );
    return EXIT.config;
  }
  let failed = 0;
  let errors = 0;
  for (const name of targets) {
    try {
      const loaded = load(io, project, name);
      const plan = compilePlan(loaded);
      io.stdout.write(
        `ok   ${name} (${plural(plan.streams.length, "stream")}: ${plan.streams.map((s) => s.name).join(", ")})\n`,
      );
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      failed++;
      errors += err.issues.length;
      io.stdout.write(`FAIL ${name}\n`);
      io.stderr.write(`${err.message}\n`);
    }
  }
  if (failed) {
    io.stderr.write(
      `${failed} of ${plural(targets.length, "pipeline")} invalid (${plural(errors, "error")}); nothing was sent.\n`,
    );
    return EXIT.config;
  }
  return EXIT.ok;
}
