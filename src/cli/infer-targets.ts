import { readFile } from "node:fs/promises";
import path from "node:path";
import type { LoadedPipeline } from "../config/load-pipeline.js";
import { pipelineFile } from "../config/load-pipeline.js";
import { writeAtomic } from "../shared/atomic-write.js";
import { isMap, isSeq, parseDocument } from "../vendor/config-libs.js";

/** Where `infer` writes a stream's schema, and whether the stream's `schema:` line is to be added. */
export interface SchemaTarget {
  stream: string;
  /** The name in the schemas folder. */
  name: string;
  file: string;
  /** The stream has no `schema:` line: infer adds `schema: <name>` after writing the file. */
  addLine: boolean;
  /** The stream's schema is written inline: nothing is written for it. */
  inline: boolean;
}

/** The default name of a stream's schema file, as `init` comments it and `infer` writes it. */
export function defaultSchemaName(pipeline: string, stream: string): string {
  return `${pipeline}.${stream}.schema.json`;
}

/** One path: the file a stream's `schema:` names, else `<pipeline>.<stream>.schema.json`. */
export function schemaTarget(loaded: LoadedPipeline, stream: string): SchemaTarget {
  const streams = (loaded.config.streams ?? {}) as Record<string, { schema?: unknown }>;
  const written = streams[stream]?.schema;
  const named = typeof written === "string" ? written : null;
  const name = named ?? defaultSchemaName(loaded.name, stream);
  return {
    stream,
    name,
    file: path.join(loaded.project.schemasDir, name),
    addLine: written === undefined || written === null,
    inline: !!written && typeof written === "object",
  };
}

/**
 * Adds `schema: <name>` to each target stream of the pipeline file, keeping its comments and
 * layout (a flow map stays one). Returns the file changed, or null when nothing was to add.
 */
export async function addSchemaLines(
  loaded: LoadedPipeline,
  targets: SchemaTarget[],
): Promise<string | null> {
  const adding = targets.filter((t) => t.addLine);
  const file = pipelineFile(loaded.project, loaded.name);
  if (!adding.length || !file) return null;
  const doc = parseDocument(await readFile(file, "utf8"), { keepSourceTokens: false });
  const streams = doc.get("streams", true);
  for (const t of adding) {
    if (isMap(streams)) doc.setIn(["streams", t.stream, "schema"], t.name);
    else if (isSeq(streams)) {
      const i = streams.items.findIndex((item) => isMap(item) && item.get("name") === t.stream);
      if (i >= 0) doc.setIn(["streams", i, "schema"], t.name);
    }
  }
  await writeAtomic(file, doc.toString({ lineWidth: 0 }), 0o644);
  return file;
}
