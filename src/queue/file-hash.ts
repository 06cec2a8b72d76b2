import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { pipelineFile } from "../config/load-pipeline.js";
import type { Project } from "../config/project.js";

/** sha256 of a pipeline file's text: submitter and workers must run the same file. */
export async function pipelineFileHash(project: Project, name: string): Promise<string | null> {
  const file = pipelineFile(project, name);
  if (!file) return null;
  return sha256(await readFile(file));
}

/**
 * pipelineFileHash for a worker, which checks the file before every job: the file is read and
 * hashed again only when its inode, size, modification or change time differ from the last
 * read. The file's status is taken before it is read, so a change during the read is seen at
 * the next job.
 */
export class PipelineFileHashes {
  private readonly known = new Map<string, { key: string; hash: string }>();

  async hash(project: Project, name: string): Promise<string | null> {
    const file = pipelineFile(project, name);
    if (!file) return null;
    // A synchronous stat of one small local file: less work per job than a trip to the thread pool.
    const s = statSync(file);
    const key = `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
    const known = this.known.get(file);
    if (known?.key === key) return known.hash;
    const hash = sha256(await readFile(file));
    this.known.set(file, { key, hash });
    return hash;
  }
}

function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Which `.env` of the project a worker sees now (its inode, size, modification and change
 * times; "" without one): a pipeline compiled with another one is compiled again, so a token
 * rotated in `.env` is used from the next job on, as a local run reads it at each run.
 */
export function dotenvVersion(project: Project): string {
  const s = statSync(path.join(project.root, ".env"), { throwIfNoEntry: false });
  return s ? `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}` : "";
}
