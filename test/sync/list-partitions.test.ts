// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${parent.…}` templates
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { type SyncServer, startSyncServer } from "./sync-server.js";

/** Issues per repository, `since` honoured; the repository `gone` answers 404. */
const ISSUES: Record<string, { id: number; updated_at: string }[]> = {
  "acme/widgets": [
    { id: 1, updated_at: "2024-01-02T00:00:00Z" },
    { id: 2, updated_at: "2024-01-05T00:00:00Z" },
  ],
  "acme/gears": [{ id: 3, updated_at: "2024-02-01T00:00:00Z" }],
};
/** A GraphQL API: `query` in the body, the cursor in `variables.after`. */
const NODES = Array.from({ length: 7 }, (_, i) => ({ id: `n${i}` }));

let server: SyncServer;
let project: TempProject;

beforeAll(async () => {
  server = await startSyncServer((req) => {
    const m = /^\/repos\/([^/]+)\/([^/]+)\/issues$/.exec(req.rawPath);
    if (m) {
      const list = ISSUES[`${m[1]}/${m[2]}`];
      if (!list) return { status: 404, body: { message: "Not Found" } };
      const since = req.query.since;
      return { body: list.filter((i) => !since || i.updated_at > since) };
    }
    if (req.rawPath === "/graphql" && req.method === "POST") {
      const body = req.json as { query: string; variables: { first: number; after?: string } };
      const at = body.variables.after ? Number(body.variables.after) : 0;
      const nodes = NODES.slice(at, at + body.variables.first);
      const end = at + nodes.length;
      return {
        body: {
          data: { items: { nodes, pageInfo: { endCursor: String(end), hasNextPage: end < NODES.length } } },
        },
      };
    }
    return { status: 404, body: {} };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  project?.cleanup();
  project = tempProject();
  server.reset();
});

function reposPipeline(values: string, onError = "skip"): string {
  return `
source:
  base_url: ${server.url}
  retry: { max_attempts: 1 }
streams:
  repos:
    values: ${values}
    write: false
  issues:
    parent: repos
    path: /repos/\${parent.owner}/\${parent.repo}/issues
    include_parent: { repo: repo }
    on_partition_error: ${onError}
    incremental: { cursor_field: updated_at, param: since, initial: "2024-01-01T00:00:00Z" }
output:
  mode: append
`;
}

const LIST = "[{ owner: acme, repo: widgets }, { owner: acme, repo: gone }, { owner: acme, repo: gears }]";

describe("values streams and per-partition state", () => {
  it("loops over a list (write: false), skips the gone repository, keeps one position per partition", async () => {
    project.pipeline("test", reposPipeline(LIST));
    const run = await runPipeline(project.dir, "test");
    expect(run.code, run.stderr).toBe(0);
    expect(readJsonl(project.file("out/test/issues.jsonl"))).toEqual([
      { id: 1, updated_at: "2024-01-02T00:00:00Z", repo: "widgets" },
      { id: 2, updated_at: "2024-01-05T00:00:00Z", repo: "widgets" },
      { id: 3, updated_at: "2024-02-01T00:00:00Z", repo: "gears" },
    ]);
    // write: false: no file for the list, and nothing counted as written.
    expect(() => readFileSync(project.file("out/test/repos.jsonl"))).toThrow();
    const repos = run.summary.streams.find((s) => s.name === "repos")!;
    expect(repos.records).toMatchObject({ seen: 3, valid: 3, written: 0 });
    expect(run.summary.streams.find((s) => s.name === "issues")!.records.written).toBe(3);
    const state = JSON.parse(readFileSync(project.file(".pipelines/state/test.json"), "utf8"));
    expect(state.streams.issues.partitions).toEqual({
      '["acme","widgets"]': "2024-01-05T00:00:00Z",
      '["acme","gears"]': "2024-02-01T00:00:00Z",
    });
    // The next run sends each partition its own value; the gone one starts at `initial`.
    server.reset();
    expect((await runPipeline(project.dir, "test")).code).toBe(0);
    const sent = Object.fromEntries(server.requests.map((r) => [r.rawPath, r.query.since]));
    expect(sent).toEqual({
      "/repos/acme/widgets/issues": "2024-01-05T00:00:00Z",
      "/repos/acme/gone/issues": "2024-01-01T00:00:00Z",
      "/repos/acme/gears/issues": "2024-02-01T00:00:00Z",
    });
  });

  it("a v1 state file (one cursor for the stream) seeds every partition", async () => {
    project.pipeline("test", reposPipeline(LIST));
    mkdirSync(project.file(".pipelines/state"), { recursive: true });
    writeFileSync(
      project.file(".pipelines/state/test.json"),
      JSON.stringify({
        version: 1,
        streams: { issues: { cursor: "2024-01-03T00:00:00Z", updated_at: "x" } },
      }),
    );
    expect((await runPipeline(project.dir, "test")).code).toBe(0);
    expect(new Set(server.requests.map((r) => r.query.since))).toEqual(new Set(["2024-01-03T00:00:00Z"]));
    expect(readJsonl(project.file("out/test/issues.jsonl")).map((r) => (r as { id: number }).id)).toEqual([
      2, 3,
    ]);
  });

  it("a comma-separated env list; an empty one is a success with nothing fetched", async () => {
    project.pipeline(
      "test",
      reposPipeline('"${env.REPOS}"')
        .replace("/repos/${parent.owner}/${parent.repo}/issues", "/repos/acme/${parent.value}/issues")
        .replace("include_parent: { repo: repo }", "include_parent: { repo: value }"),
    );
    const run = await runPipeline(project.dir, "test", [], { REPOS: " widgets, gears ,," });
    expect(run.code, run.stderr).toBe(0);
    expect(server.requests.map((r) => r.rawPath)).toEqual([
      "/repos/acme/widgets/issues",
      "/repos/acme/gears/issues",
    ]);
    server.reset();
    const empty = await runPipeline(project.dir, "test", ["--full-refresh"], { REPOS: "" });
    expect(empty.code, empty.stderr).toBe(0);
    expect(server.requests).toHaveLength(0);
    expect(empty.stream("repos").warnings.join(" ")).toContain("the `values` list is empty");
  });
});

describe("GraphQL: the cursor in variables.after", () => {
  it("pages through a POST body with a dotted cursor path", async () => {
    project.pipeline(
      "test",
      `
source: { base_url: ${server.url} }
streams:
  items:
    path: /graphql
    method: POST
    body: { query: "query($first: Int, $after: String) { items(first: $first, after: $after) { nodes { id } } }", variables: { first: 3 } }
    records: $.data.items.nodes
    paginate: { type: cursor, cursor: $.data.items.pageInfo.endCursor, has_more: $.data.items.pageInfo.hasNextPage, in: body, param: variables.after }
`,
    );
    const run = await runPipeline(project.dir, "test");
    expect(run.code, run.stderr).toBe(0);
    expect(readJsonl(project.file("out/test/items.jsonl"))).toEqual(NODES);
    expect(server.requests.map((r) => (r.json as { variables: unknown }).variables)).toEqual([
      { first: 3 },
      { first: 3, after: "3" },
      { first: 3, after: "6" },
    ]);
  });
});
