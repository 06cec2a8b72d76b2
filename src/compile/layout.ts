import path from "node:path";
import type { StreamPlan } from "./plan.js";

/**
 * `<output dir>/<stream>.invalid.jsonl`; for sqlite, whose file holds every stream of a pipeline,
 * `<output dir>/<db name>.<stream>.invalid.jsonl` so pipelines sharing a folder do not collide.
 */
export function quarantineFile(stream: StreamPlan): string {
  if (stream.output.quarantine) return stream.output.quarantine;
  const dir = path.dirname(stream.output.path);
  if (stream.output.format === "sqlite") {
    const base = path.basename(stream.output.path).replace(/\.[^.]+$/, "");
    return path.join(dir, `${base}.${stream.name}.invalid.jsonl`);
  }
  return path.join(dir, `${stream.name}.invalid.jsonl`);
}
