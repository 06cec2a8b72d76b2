// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these pipelines use `${parent.…}` templates
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/** Users changed since `since`; each user's repos; `broken` users' repos answer 500. */
const USERS = [
  { login: "ann", updated_at: "2024-01-01T00:00:00Z" },
  { login: "bob", updated_at: "2024-01-02T00:00:00Z" },
  { login: "cy", updated_at: "2024-01-03T00:00:00Z" },
];
let broken = new Set<string>();
let server: SyncServer;
let project: TempProject;

beforeAll(async () => {
  server = await startSyncServer((req) => {
    if (req.rawPath === "/users") {
      const since = req.query.since ?? "";
      return { body: USERS.filter((u) => u.updated_at > since) };
    }
    const m = /^\/users\/([^/]+)\/repos$/.exec(req.rawPath);
    if (m && broken.has(m[1])) return { status: 500, body: { message: "boom" } };
    if (m) return { body: [{ id: `${m[1]}-1` }] };
    return { status: 404, body: {} };
  });
  project = tempProject();
});
afterAll(async () => {
  await server.close();
  project.cleanup();
});
beforeEach(() => {
  broken = new Set();
  server.reset();
});

const pipeline = (onError: string) => `
source:
  base_url: ${server.url}
  retry: { max_attempts: 1 }
streams:
  users:
    path: /users
    primary_key: login
    incremental: { cursor_field: updated_at, param: since }
  repos:
    parent: users
    path: /users/\${parent.login}/repos
    primary_key: id
    on_partition_error: ${onError}
output:
  mode: merge
`;

const state = (name = "test") => {
  const file = project.file(`.pipelines/state/${name}.json`);
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : { streams: {} };
};

describe("a parent's position waits for its children", () => {
  it("is not saved when a child partition failed; the next run fetches those parents again", async () => {
    project.pipeline("test", pipeline("fail"));
    broken = new Set(["bob"]);
    const first = await runPipeline(project.dir, "test");
    expect(first.code).toBe(1);
    expect(state().streams.users?.cursor).toBeUndefined();
    const users = first.summary.streams.find((s) => s.name === "users")!;
    expect(users.warnings.join("\n")).toContain("incremental cursor not saved: `repos` did not commit");

    broken = new Set();
    server.reset();
    const second = await runPipeline(project.dir, "test");
    expect(second.code, second.stderr).toBe(0);
    expect(server.requests.find((r) => r.rawPath === "/users")?.query.since).toBeUndefined();
    expect(readJsonl(project.file("out/test/repos.jsonl"))).toEqual([
      { id: "ann-1" },
      { id: "bob-1" },
      { id: "cy-1" },
    ]);
    expect(state().streams.users.cursor).toBe("2024-01-03T00:00:00Z");
  });

  it("is not saved when a partition was skipped (on_partition_error: skip)", async () => {
    project.pipeline("skipping", pipeline("skip"));
    broken = new Set(["cy"]);
    const run = await runPipeline(project.dir, "skipping");
    expect(run.code, run.stderr).toBe(0);
    expect(state("skipping").streams.users?.cursor).toBeUndefined();
    // Nothing left out: the next run sends no `since` and gets cy's repos.
    broken = new Set();
    server.reset();
    expect((await runPipeline(project.dir, "skipping")).code).toBe(0);
    expect(server.requests.find((r) => r.rawPath === "/users")?.query.since).toBeUndefined();
    expect(readJsonl(project.file("out/skipping/repos.jsonl"))).toHaveLength(3);
    expect(state("skipping").streams.users.cursor).toBe("2024-01-03T00:00:00Z");
  });
});
