/**
 * Nothing commits after Ctrl-C/SIGTERM. A child stream's partition loop stops at the signal
 * without an error of its own (no request was in flight to fail): the stream must still commit
 * nothing — not a child output holding only the partitions fetched before the signal.
 * (The signal itself, through the built CLI: test/sync/signals.test.ts.)
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { createServer } from "node:http";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";
import { compilePlan } from "../../src/compile/compile-plan.js";
import { loadPipelineText } from "../../src/config/load-pipeline.js";
import { makeProject } from "../../src/config/project.js";
import { openSession } from "../../src/run/run-pipeline.js";
import { runStream } from "../../src/run/run-stream.js";
import { newStreamResult } from "../../src/run/stream-result.js";
import {
  closeServer,
  listenLocal,
  listFiles,
  sourceBlock,
  streamRunOptions,
  type TempProject,
  tempProject,
} from "./helpers.js";

let server: Server;
let url: string;
let requests = 0;
beforeAll(async () => {
  server = createServer((_req, res) => {
    requests++;
    res.writeHead(200, { "content-type": "application/json" }).end('{"data":[{"n":1}]}');
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

let p: TempProject;
beforeEach(() => {
  p = tempProject("pipelines-interrupt-");
  requests = 0;
});
afterEach(() => p.cleanup());

it("a child stream stopped by the signal between partitions commits nothing", async () => {
  const text = `${sourceBlock(url)}
streams:
  parents: { path: /parents, records: $.data, primary_key: id }
  children:
    parent: parents
    path: /parents/\${parent.id}/children
    records: $.data
`;
  const loaded = loadPipelineText(makeProject(p.dir, null, {}), "p", "pipelines/p.yaml", text, {});
  const plan = compilePlan(loaded);
  const child = plan.streams.find((s) => s.name === "children")!;
  const parents = path.join(p.dir, "parents.jsonl");
  writeFileSync(parents, '{"id":1}\n{"id":2}\n');
  mkdirSync(plan.dirs.state, { recursive: true });
  const controller = new AbortController();
  controller.abort(new Error("interrupted by SIGINT"));
  const { client, state, executor } = openSession(plan, loaded.redactor, { signal: controller.signal });
  const result = newStreamResult("children");
  try {
    await runStream(
      child,
      executor,
      streamRunOptions(plan, state, { signal: controller.signal }),
      { parentRecords: parents, keepRecordsAt: null, parentKey: ["id"] },
      result,
    );
  } finally {
    await client.close();
  }
  expect(requests).toBe(0);
  expect(result.status).toBe("failed");
  expect(result.error?.kind).toBe("aborted");
  expect(result.output).toBeNull();
  expect(existsSync(child.output.path)).toBe(false);
  // No temporary file left beside where the output would be.
  expect(listFiles(path.dirname(child.output.path))).toEqual([]);
});
