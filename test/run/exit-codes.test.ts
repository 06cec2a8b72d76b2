/**
 * The exit code of a run with several streams (README, "Exit codes"): a failed stream (1) outranks
 * a data-quality rejection (3) of another stream, the other streams still finish and commit, and
 * a rejection alone is 3.
 */
import { existsSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";
import {
  closeServer,
  listenLocal,
  readJsonl,
  runPipeline,
  sourceBlock,
  type TempProject,
  tempProject,
} from "./helpers.js";

let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === "/broken") return void res.writeHead(500).end("{}");
    // /bad: every record fails the schema (id must be an integer).
    const data = req.url === "/bad" ? [{ id: "x" }, { id: "y" }] : [{ id: 1 }, { id: 2 }];
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data }));
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

let p: TempProject;
beforeEach(() => {
  p = tempProject("pipelines-exit-");
  writeFileSync(p.file("schemas/item.json"), '{"type":"object","properties":{"id":{"type":"integer"}}}');
});
afterEach(() => p.cleanup());

const pipeline = (streams: string[]) =>
  p.pipeline("p", `${sourceBlock(url)}\nstreams:\n${streams.map((s) => `  ${s}`).join("\n")}\n`);
const GOOD = "good: { path: /good, records: $.data, schema: item.json }";
const BAD = "bad: { path: /bad, records: $.data, schema: item.json }";
const BROKEN = "broken: { path: /broken, records: $.data }";

it("a failed stream and a rejected one: exit 1; the good stream still commits", async () => {
  pipeline([GOOD, BAD, BROKEN]);
  const r = await runPipeline(p.dir, "p");
  expect(r.code, r.stderr).toBe(1);
  expect(r.stream("broken").status).toBe("failed");
  expect(r.stream("bad").status).toBe("rejected");
  expect(r.stream("good").status).toBe("ok");
  expect(readJsonl(p.file("out/p/good.jsonl"))).toEqual([{ id: 1 }, { id: 2 }]);
  expect(existsSync(p.file("out/p/bad.jsonl"))).toBe(false);
  expect(existsSync(p.file("out/p/broken.jsonl"))).toBe(false);
});

it("a rejected stream alone: exit 3; the good stream commits", async () => {
  pipeline([GOOD, BAD]);
  const r = await runPipeline(p.dir, "p");
  expect(r.code, r.stderr).toBe(3);
  expect(r.stream("good").status).toBe("ok");
  expect(existsSync(p.file("out/p/good.jsonl"))).toBe(true);
});
