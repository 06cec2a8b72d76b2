// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these pipelines use `${parent.…}` templates
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { closeServer, listenLocal, runPipeline, type TempProject, tempProject } from "../run/helpers.js";

/**
 * Parents whose ids are integers beyond 2^53 (Discord, Twitter snowflakes: kept exact, as BigInt,
 * by the JSON reader) name their partitions in the state with every digit; the run does not fail
 * on them ("Do not know how to serialize a BigInt").
 */
const BIG = "12345678901234567890123";
const since: Record<string, string | null> = {};
const server = createServer((req, res) => {
  const u = new URL(req.url ?? "/", "http://x");
  res.writeHead(200, { "content-type": "application/json" });
  if (u.pathname === "/guilds") return void res.end(`[{"id": ${BIG}}, {"id": 7}]`);
  since[u.pathname] = u.searchParams.get("since");
  res.end('[{"n": 1, "updated_at": "2024-02-01T00:00:00Z"}]');
});
let url = "";
let project: TempProject;
beforeAll(async () => {
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
});

describe("partitions of parents with big integer ids", () => {
  it("keep one position each, named with every digit", async () => {
    project.pipeline(
      "test",
      `
source: { base_url: ${url} }
streams:
  guilds:
    path: /guilds
  channels:
    parent: guilds
    path: /g/\${parent.id}/channels
    incremental: { cursor_field: updated_at, param: since, initial: "2024-01-01T00:00:00Z" }
output: { mode: append }
`,
    );
    const run = await runPipeline(project.dir, "test");
    expect(run.code, run.stderr).toBe(0);
    const state = JSON.parse(readFileSync(project.file(".pipelines/state/test.json"), "utf8"));
    expect(state.streams.channels.partitions).toEqual({
      [BIG]: "2024-02-01T00:00:00Z",
      "7": "2024-02-01T00:00:00Z",
    });
    const again = await runPipeline(project.dir, "test");
    expect(again.code, again.stderr).toBe(0);
    expect(since).toEqual({
      [`/g/${BIG}/channels`]: "2024-02-01T00:00:00Z",
      "/g/7/channels": "2024-02-01T00:00:00Z",
    });
  });
});
