// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these pipelines use `${parent.…}` and `${window.…}` templates
/**
 * Singer STATE carries every position a run saves, so that a target's `--state` resumes the run:
 * a parent's cursor (saved once its children are done), a child stream's per-parent positions,
 * a windowed stream's last committed window. Before, the STATE held only cursors passed to a
 * stream's commit: a parent with children, a windowed or a child stream had no bookmark, and the
 * next `--state` run fetched everything again.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../cli/helpers.js";
import { runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "../sync/sync-server.js";

let server: SyncServer;
let project: TempProject;

const USERS = [1, 2, 3].map((n) => ({ id: n, updated_at: `2024-01-0${n}T00:00:00Z` }));
const after = (rows: { [k: string]: unknown }[], field: string, since: string | undefined) =>
  rows.filter((r) => !since || String(r[field]) > since);

beforeAll(async () => {
  server = await startSyncServer((req) => {
    const p = req.rawPath.split("?")[0];
    if (p === "/users") return { body: after(USERS, "updated_at", req.query.since) };
    const m = /^\/users\/(\d+)\/posts$/.exec(p);
    if (m) {
      const posts = [1, 2].map((k) => ({ id: `${m[1]}-${k}`, ts: `2024-02-0${k}T00:00:00Z` }));
      return { body: after(posts, "ts", req.query.since) };
    }
    if (p === "/day") return { body: [{ day: req.query.day }] };
    return { status: 404, body: {} };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject("pipelines-singer-state-");
  server.reset();
});

const FAMILY = (output: string) => `
source: { base_url: ${server.url}, concurrency: 1, retry: { max_attempts: 1 } }
streams:
  users:
    path: /users
    primary_key: id
    incremental: { cursor_field: updated_at, param: since, initial: "2023-12-01T00:00:00Z" }
  posts:
    parent: users
    path: /users/\${parent.id}/posts
    primary_key: id
    incremental: { cursor_field: ts, param: since, initial: "2024-01-01T00:00:00Z" }
output: ${output}
`;

const WINDOWED = () => `
source: { base_url: ${server.url}, retry: { max_attempts: 1 } }
streams:
  days:
    path: /day
    params: { day: "\${window.start}" }
    windows: { step: 1d, start: 2024-01-01, end: 2024-01-04, format: date }
output: { format: jsonl, mode: append }
`;

/** `pipelines …` in-process; stdout and stderr apart. */
const cli = (args: string[]) => runCli(args, project.dir);

type Message = { type: string; stream?: string; value?: { bookmarks: Record<string, unknown> } };
const messages = (text: string): Message[] =>
  text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
const lastState = (text: string) => {
  const all = messages(text);
  const last = all[all.length - 1];
  expect(last.type).toBe("STATE");
  return last.value!.bookmarks;
};

const FAMILY_BOOKMARKS = {
  users: { updated_at: "2024-01-03T00:00:00Z" },
  posts: {
    updated_at: undefined,
    partitions: { 1: "2024-02-02T00:00:00Z", 2: "2024-02-02T00:00:00Z", 3: "2024-02-02T00:00:00Z" },
  },
};

describe("Singer STATE holds every position of the run", () => {
  it("run --singer: a parent's cursor and its child's per-parent positions; --state resumes from them", async () => {
    project.pipeline("fam", FAMILY("{ format: jsonl, mode: append }"));
    const first = await cli(["run", "fam", "--singer"]);
    expect(first.code, first.stderr).toBe(0);
    const bookmarks = lastState(first.stdout);
    expect(bookmarks.users).toEqual(FAMILY_BOOKMARKS.users);
    expect((bookmarks.posts as { partitions: unknown }).partitions).toEqual(
      FAMILY_BOOKMARKS.posts.partitions,
    );

    writeFileSync(project.file("state.json"), JSON.stringify({ bookmarks }));
    server.reset();
    const second = await cli(["run", "fam", "--singer", "--state", "state.json"]);
    expect(second.code, second.stderr).toBe(0);
    expect(messages(second.stdout).filter((m) => m.type === "RECORD")).toEqual([]);
    const users = server.requests.filter((r) => r.rawPath === "/users");
    expect(users.map((r) => r.query.since)).toEqual(["2024-01-03T00:00:00Z"]);
    expect(lastState(second.stdout)).toEqual(bookmarks);
  });

  it("format: singer with a path: the file's last STATE holds the parent's cursor saved after its children", async () => {
    project.pipeline("fam", FAMILY("{ format: singer, path: out/fam.singer.jsonl, mode: append }"));
    const r = await runPipeline(project.dir, "fam");
    expect(r.code, r.stderr).toBe(0);
    const bookmarks = lastState(readFileSync(project.file("out/fam.singer.jsonl"), "utf8"));
    expect(bookmarks.users).toEqual(FAMILY_BOOKMARKS.users);
    expect((bookmarks.posts as { partitions: unknown }).partitions).toEqual(
      FAMILY_BOOKMARKS.posts.partitions,
    );
  });

  it("a windowed stream's STATE holds its last committed window, and --state starts after it", async () => {
    project.pipeline("win", WINDOWED());
    const first = await cli(["run", "win", "--singer"]);
    expect(first.code, first.stderr).toBe(0);
    expect(messages(first.stdout).filter((m) => m.type === "RECORD")).toHaveLength(3);
    const bookmarks = lastState(first.stdout);
    expect(bookmarks).toEqual({ days: { cursor: "2024-01-04T00:00:00Z" } });
    // Each committed window sent a STATE after its records (a target may stop at any of them).
    const states = messages(first.stdout).filter((m) => m.type === "STATE");
    expect(states.map((m) => (m.value!.bookmarks.days as { cursor?: string } | undefined)?.cursor)).toContain(
      "2024-01-02T00:00:00Z",
    );

    writeFileSync(project.file("state.json"), JSON.stringify({ bookmarks }));
    server.reset();
    const second = await cli(["run", "win", "--singer", "--state", "state.json"]);
    expect(second.code, second.stderr).toBe(0);
    expect(server.requests).toEqual([]);
    expect(lastState(second.stdout)).toEqual(bookmarks);
  });
});
