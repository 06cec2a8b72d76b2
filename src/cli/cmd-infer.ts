import { existsSync } from "node:fs";
import path from "node:path";
import { compilePlan } from "../compile/compile-plan.js";
import { SchemaInferrer } from "../records/infer-schema.js";
import { sampleStream } from "../run/sample.js";
import { writeAtomic } from "../shared/atomic-write.js";
import { RunError } from "../shared/errors.js";
import { plural } from "../shared/format.js";
import { load, projectFor } from "./context.js";
import { addSchemaLines, type SchemaTarget, schemaTarget } from "./infer-targets.js";
import { CliError, type CliIO, EXIT } from "./io.js";

/** `pipelines infer <name> [--stream S] [--sample N] [--force]`: a draft schema from real records. */
export async function inferCommand(
  io: CliIO,
  name: string,
  opts: { stream?: string; sample: number; force?: boolean },
): Promise<number> {
  const project = await projectFor(io);
  // The schema files named in the pipeline may not exist yet: drafting them is what infer is for.
  const loaded = load(io, project, name, { missingSchemas: true });
  const plan = compilePlan(loaded);
  const targets = opts.stream ? plan.streams.filter((s) => s.name === opts.stream) : plan.streams;
  if (opts.stream && targets.length === 0) {
    throw new CliError(
      `pipeline \`${name}\` has no stream \`${opts.stream}\`; streams: ${plan.streams.map((s) => s.name).join(", ")}`,
      EXIT.config,
    );
  }
  // Refuse before sending anything when a target exists and --force is not given.
  const inline = targets.filter((s) => schemaTarget(loaded, s.name).inline);
  for (const s of inline)
    io.stderr.write(`${s.name}: its schema is written in the pipeline file; nothing to infer for it\n`);
  const toWrite = targets.filter((s) => !inline.includes(s));
  const schemaTargets = toWrite.map((s) => schemaTarget(loaded, s.name));
  const files = schemaTargets.map((t) => t.file);
  const existing = files.filter((f) => existsSync(f));
  if (existing.length && !opts.force) {
    throw new CliError(
      `${existing.map((f) => path.relative(io.cwd, f)).join(", ")} already exist${existing.length === 1 ? "s" : ""}; use --force to overwrite`,
      EXIT.config,
    );
  }
  let code: number = EXIT.ok;
  const written: SchemaTarget[] = [];
  for (const [i, stream] of toWrite.entries()) {
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
        `${stream.name}: inferred from ${plural(got.records, "record")} (${plural(got.pages, "page")}) → ${path.relative(io.cwd, files[i])}\n`,
      );
      io.stdout.write(`${describeSchema(stream.name, schema)}\n`);
      written.push(schemaTargets[i]);
    } catch (err) {
      if (!(err instanceof RunError)) throw err;
      io.stderr.write(`${stream.name}: ${err.message}\n`);
      code = EXIT.runFailed;
    }
  }
  const changed = await addSchemaLines(loaded, written);
  if (changed)
    io.stderr.write(
      `added ${written
        .filter((t) => t.addLine)
        .map((t) => `\`schema: ${t.name}\` to stream ${t.stream}`)
        .join(", ")} in ${path.relative(io.cwd, changed)}\n`,
    );
  if (written.length) io.stderr.write("review the draft schema before relying on it\n");
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
