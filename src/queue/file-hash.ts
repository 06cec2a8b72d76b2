import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { pipelineFile } from "../config/load-pipeline.js";
import type { Project } from "../config/project.js";

/** sha256 of a pipeline file's text: submitter and workers must run the same file. */
export async function pipelineFileHash(project: Project, name: string): Promise<string | null> {
  const file = pipelineFile(project, name);
  if (!file) return null;
  return createHash("sha256")
    .update(await readFile(file))
    .digest("hex");
}
