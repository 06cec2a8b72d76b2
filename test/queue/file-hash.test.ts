/**
 * A worker checks its pipeline file against the submitter's before every job
 * (PipelineFileHashes): it reads the file again only when the file changed, and any change is
 * seen, even one that keeps the size.
 */
import { utimesSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, expect, it, vi } from "vitest";
import { makeProject } from "../../src/config/project.js";
import { PipelineFileHashes, pipelineFileHash } from "../../src/queue/file-hash.js";
import { type TempProject, tempProject } from "../run/helpers.js";

// readFile counted: the cache must spare the read of a file that did not change.
vi.mock("node:fs/promises", async (original) => {
  const fs = await original<typeof import("node:fs/promises")>();
  return { ...fs, readFile: vi.fn(fs.readFile) };
});
const reads = () => vi.mocked(readFile).mock.calls.length;

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
  const before0 = reads();
  expect(await hashes.hash(project, "p")).toBe(first);
  expect(reads()).toBe(before0); // unchanged: not read again
  // Same size, and the modification time put back: the change time still differs.
  const before = new Date(Date.now() - 60_000);
  utimesSync(file, before, before);
  const kept = await hashes.hash(project, "p");
  expect(kept).toBe(first);
  writeFileSync(file, "source: { base_url: 'http://b.test' }\n");
  utimesSync(file, before, before);
  const read = reads();
  const edited = await hashes.hash(project, "p");
  expect(reads()).toBe(read + 1); // changed: read again
  expect(edited).not.toBe(first);
  expect(edited).toBe(await pipelineFileHash(project, "p"));
  expect(await hashes.hash(project, "missing")).toBeNull();
});
