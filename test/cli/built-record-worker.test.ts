/**
 * The built CLI (dist/app/pipelines.cjs) starts its record worker from its own bundle,
 * dist/app/record-worker.cjs (scripts/bundle.mjs): a JSONL export of unknown size with
 * `workers: 2` goes through it, and gives the output of `workers: 1` byte for byte.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { BIN, ensureBuilt, REPO } from "../built.js";
import { closeServer, listenLocal, tempProject } from "../run/helpers.js";

const exec = promisify(execFile);
const lines: string[] = [];
for (let i = 0; i < 40_000; i++)
  lines.push(
    `{"id":${i},"big":1234567890123456789${i % 10},"text":"é ${"x".repeat(i % 50)}"${i % 7 ? "" : ',"__proto__":{"a":1}'}}`,
  );
const body = Buffer.from(`${lines.join("\n")}\n`);
// Chunked (no Content-Length): an export of unknown size goes to the worker.
const server = createServer((_req, res) => {
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  res.end(body);
});
let base = "";
const project = tempProject("pipelines-built-worker-");
beforeAll(async () => {
  await ensureBuilt();
  base = await listenLocal(server);
}, 300_000);
afterAll(async () => {
  await closeServer(server);
  project.cleanup();
});

async function runBuilt(workers: number): Promise<string> {
  project.pipeline(
    "ev",
    `source: { base_url: "${base}", workers: ${workers} }
streams:
  events: { path: /export, response: { format: jsonl }, schema: ev.json }
`,
  );
  const { stdout } = await exec(process.execPath, [BIN, "run", "ev", "--json"], {
    cwd: project.dir,
    env: { ...process.env, CI: "1" },
  });
  const summary = JSON.parse(stdout);
  expect(summary.streams[0].records.written).toBe(40_000);
  const out = readFileSync(project.file("out/ev/events.jsonl"), "utf8");
  rmSync(project.file("out"), { recursive: true, force: true });
  return out;
}

it("the bundled CLI runs a streamed export on dist/app/record-worker.cjs, identical to the main thread's", async () => {
  expect(existsSync(path.join(REPO, "dist/app/record-worker.cjs"))).toBe(true);
  writeFileSync(
    project.file("schemas/ev.json"),
    JSON.stringify({ type: "object", properties: { id: { type: "integer" } } }),
  );
  const one = await runBuilt(1);
  const two = await runBuilt(2);
  expect(one).toContain('"big":12345678901234567890');
  expect(one).toContain('"__proto__":{"a":1}');
  expect(two).toBe(one);
});

it("the built record worker has only the product's kinds: the pool's test kind is not in the bundle", () => {
  const bundle = readFileSync(path.join(REPO, "dist/app/record-worker.cjs"), "utf8");
  expect(bundle).toContain("streamedKind");
  expect(bundle).not.toContain("echoKind");
});
