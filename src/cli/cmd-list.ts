import path from "node:path";
import { listPipelineNames, pipelineFile } from "../config/load-pipeline.js";
import { MAX_BYTES, readTextSync } from "../config/read-bounded.js";
import { YAML_OPTIONS } from "../config/yaml-source.js";
import { parseDocument } from "../vendor/config-libs.js";
import { projectFor } from "./context.js";
import { type CliIO, EXIT } from "./io.js";

/** `pipelines list`: names, descriptions and streams, read without resolving env or validating. */
export async function listCommand(io: CliIO): Promise<number> {
  const project = await projectFor(io);
  const names = listPipelineNames(project);
  if (names.length === 0) {
    io.stderr.write(
      `no pipelines in ${path.relative(io.cwd, project.pipelinesDir) || project.pipelinesDir}\n`,
    );
    return EXIT.ok;
  }
  const width = Math.max(...names.map((n) => n.length));
  for (const name of names) {
    let description = "";
    let streams: string[] = [];
    try {
      // Read quietly: yaml's `parse` would print warnings on the real stderr, not io.stderr.
      const text = readTextSync(pipelineFile(project, name)!, {
        maxBytes: MAX_BYTES.pipeline,
        what: "a pipeline file",
      });
      const parsed = parseDocument(text, {
        ...YAML_OPTIONS,
        logLevel: "silent",
      });
      if (parsed.errors.length) throw parsed.errors[0];
      const doc = parsed.toJS() as { description?: unknown; streams?: unknown } | null;
      description = typeof doc?.description === "string" ? doc.description : "";
      streams = doc?.streams && typeof doc.streams === "object" ? Object.keys(doc.streams) : [];
    } catch {
      description = "(does not parse: run `pipelines validate " + name + "`)";
    }
    io.stdout.write(`${name.padEnd(width)}  ${description}\n`);
    if (streams.length) io.stdout.write(`${" ".repeat(width)}  streams: ${streams.join(", ")}\n`);
  }
  return EXIT.ok;
}
