/**
 * A worker checks its pipeline file against the submitter's before every job
 * (PipelineFileHashes): it reads the file again only when the file changed, and any change is
 * seen, even one that keeps the size.
 */
import { utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import { makeProject } from "../../src/config/project.js";
import { PipelineFileHashes, pipelineFileHash } from "../../src/queue/file-hash.js";
import { type TempProject, tempProject } from "../run/helpers.js";

let p: TempProject | null = null;
afterEach(() => p?.cleanup());

it("the hash follows the file: a same-size edit (even with the old times put back) and a new file", async () => {
  p = tempProject("pipelines-file-hash-");
  const project = makeProject(p.dir, null, {});
  const file = path.join(p.dir, "pipelines", "p.yaml");
  p.pipeline("p", "source: { base_url: 'http://a.test' }\n");
  const hashes = new PipelineFileHashes();
  const first = await hashes.hash(project, "p");
  expect(first).toBe(await pipelineFileHash(project, "p"));
  expect(await hashes.hash(project, "p")).toBe(first);
  // Same size, and the modification time put back: the change time still differs.
  const before = new Date(Date.now() - 60_000);
  utimesSync(file, before, before);
  const kept = await hashes.hash(project, "p");
  expect(kept).toBe(first);
  writeFileSync(file, "source: { base_url: 'http://b.test' }\n");
  utimesSync(file, before, before);
  const edited = await hashes.hash(project, "p");
  expect(edited).not.toBe(first);
  expect(edited).toBe(await pipelineFileHash(project, "p"));
  expect(await hashes.hash(project, "missing")).toBeNull();
});
