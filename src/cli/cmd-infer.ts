import { existsSync } from "node:fs";
import path from "node:path";
import { compilePlan } from "../compile/compile-plan.js";
import { SchemaInferrer } from "../records/infer-schema.js";
import { sampleStream } from "../run/sample.js";
import { writeAtomic } from "../shared/atomic-write.js";
import { RunError } from "../shared/errors.js";
import { plural } from "../shared/format.js";
import { load, projectFor } from "./context.js";
import { CliError, type CliIO, EXIT } from "./io.js";

/** `pipelines infer <name> [--stream S] [--sample N] [--force]`: a draft schema from real records. */
export async function inferCommand(
  io: CliIO,
  name: string,
  opts: { stream?: string; sample: number; force?: boolean },
): Promise<number> {
  const project = await projectFor(io);
  const loaded = load(io, project, name);
  const plan = compilePlan(loaded);
  const targets = opts.stream ? plan.streams.filter((s) => s.name === opts.stream) : plan.streams;
  if (opts.stream && targets.length === 0) {
    throw new CliError(
      `pipeline \`${name}\` has no stream \`${opts.stream}\`; streams: ${plan.streams.map((s) => s.name).join(", ")}`,
      EXIT.config,
    );
  }
  // Refuse before sending anything when a target exists and --force is not given.
  const files = targets.map((s) => path.join(project.schemasDir, `${name}.${s.name}.schema.json`));
  const existing = files.filter((f) => existsSync(f));
  if (existing.length && !opts.force) {
    throw new CliError(
      `${existing.map((f) => path.relative(io.cwd, f)).join(", ")} already exist${existing.length === 1 ? "s" : ""}; use --force to overwrite`,
      EXIT.config,
    );
  }
  let code: number = EXIT.ok;
  for (const [i, stream] of targets.entries()) {
    const inferrer = new SchemaInferrer();
    try {
      const got = await sampleStream(
        plan,
        loaded.redactor,
        stream.name,
        opts.sample,
        (row) => inferrer.add(row),
        io.signal,
      );
      if (got.records === 0) {
        // A schema of nothing would accept anything, and look like a result.
        io.stderr.write(
          `${stream.name}: no records to infer from: ${plural(got.pages, "page")} fetched, none with records at \`${stream.records}\` (check the records path against a real response); nothing written\n`,
        );
        code = EXIT.runFailed;
        continue;
      }
      const schema = inferrer.schema(`${name} ${stream.name} record`);
      await writeAtomic(files[i], `${JSON.stringify(schema, null, 2)}\n`, 0o644);
      io.stderr.write(
        `${stream.name}: inferred from ${got.records} records (${got.pages} pages) → ${path.relative(io.cwd, files[i])}\n`,
      );
      io.stdout.write(`${describeSchema(stream.name, schema)}\n`);
      io.stderr.write(
        `  use it with \`schema: ${path.basename(files[i])}\` in the stream, after reviewing it\n`,
      );
    } catch (err) {
      if (!(err instanceof RunError)) throw err;
      io.stderr.write(`${stream.name}: ${err.message}\n`);
      code = EXIT.runFailed;
    }
  }
  return code;
}

interface InferredProperty {
  type?: string | string[];
  format?: string;
}

function describeSchema(
  stream: string,
  schema: { required?: string[]; properties?: Record<string, InferredProperty> },
): string {
  const required = new Set<string>(schema.required ?? []);
  const lines = [`${stream}:`];
  for (const [k, v] of Object.entries(schema.properties ?? {})) {
    const type = Array.isArray(v.type) ? v.type.join(" | ") : (v.type ?? "any");
    lines.push(
      `  ${k.padEnd(24)} ${type}${v.format ? ` (${v.format})` : ""}${required.has(k) ? "" : "  optional"}`,
    );
  }
  return lines.join("\n");
}
