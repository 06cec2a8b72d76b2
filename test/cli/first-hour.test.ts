// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${…}` template syntax
/**
 * Issue 19, "the analyst's first hour": each describe block is one point of the issue, each test
 * failed on the code before the change it covers.
 */
import { createServer, type Server } from "node:http";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tempDir, writeFiles, yaml } from "../config/helpers.js";
import { closeServer, listenLocal } from "../run/helpers.js";
import { runCli } from "./helpers.js";

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir("pipelines-first-hour-"));
});
afterEach(() => cleanup());

/** A local API answering `routes[path]` (JSON) and recording what it was sent. */
async function api(
  routes: Record<string, (req: { url: string; headers: Record<string, unknown> }) => unknown>,
) {
  const seen: { url: string; headers: Record<string, unknown> }[] = [];
  const server: Server = createServer((req, res) => {
    const r = { url: req.url ?? "", headers: req.headers as Record<string, unknown> };
    seen.push(r);
    const route = routes[new URL(r.url, "http://x").pathname];
    if (!route) {
      res.writeHead(404).end("{}");
      return;
    }
    const body = route(r);
    if (typeof body === "number") {
      res.writeHead(body, { "content-type": "application/json" }).end('{"error":"no"}');
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  const url = await listenLocal(server);
  return { url, seen, close: () => closeServer(server) };
}

const ITEMS = (base: string, extra = "") => yaml`
  source: { base_url: "${base}" }
  streams:
    items: { path: /items, records: $.data${extra} }
`;

describe("1. --project <dir>", () => {
  it("runs a command on another folder's project; messages name files relative to where it started", async () => {
    writeFiles(dir, { "proj/pipelines/a.yaml": ITEMS("https://api.example.test") });
    // Started in an unrelated folder: without --project there is no pipeline here.
    writeFiles(dir, { "elsewhere/.keep": "" });
    const from = path.join(dir, "elsewhere");
    const before = await runCli(["validate"], from);
    expect(before.code).toBe(2);
    const after = await runCli(["validate", "--project", "../proj"], from);
    expect(after.stderr).toBe("");
    expect(after.stdout).toContain("ok   a (1 stream: items)");
    expect(after.code).toBe(0);
    const first = await runCli(["--project", path.join(dir, "proj"), "plan", "a"], from);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`file        ${path.join("..", "proj", "pipelines", "a.yaml")}`);
  });
});
