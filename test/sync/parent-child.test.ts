// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${parent.…}` templates
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { listFiles, readJsonl, runPipeline, type TempProject, tempProject } from "../run/helpers.js";
import { pageOf, type SeenRequest, type SyncServer, startSyncServer } from "./sync-server.js";

interface Repo {
  id: number | string;
  name: string;
  owner: { login: string };
}

/** The parents, in API order: issue counts differ (0, 1, several pages), names need encoding. */
const REPOS: (Repo & { issues: number })[] = [
  { id: 1, name: "alpha", owner: { login: "ann" }, issues: 7 },
  { id: 2, name: "beta", owner: { login: "bob" }, issues: 0 },
  { id: 3, name: "gamma delta", owner: { login: "cy" }, issues: 3 },
  { id: 4, name: "eps/ilon", owner: { login: "di" }, issues: 12 },
  { id: 5, name: "zeta", owner: { login: "ed" }, issues: 0 },
  { id: 6, name: "eta", owner: { login: "fay" }, issues: 1 },
  { id: 7, name: "theta", owner: { login: "gus" }, issues: 25 },
  { id: 8, name: "iota", owner: { login: "hal" }, issues: 5 },
];

interface Issue {
  number: number;
  title: string;
  repo_name?: string;
}

function issuesOf(repo: string, count: number): Issue[] {
  return Array.from({ length: count }, (_, k) => ({ number: k + 1, title: `${repo} #${k + 1}` }));
}

/** Every child record the pipeline must write, in parent order, with the parent's name copied. */
function groundTruth(repos = REPOS): Issue[] {
  return repos.flatMap((r) => issuesOf(r.name, r.issues).map((i) => ({ ...i, repo_name: r.name })));
}

/** The parent list the API serves (the test may add invalid or failing parents). */
let repos: (Repo & { issues: number })[] = REPOS;
/** Issues requests of these repo names answer 404. */
let missing = new Set<string>();
/** Issues requests of these repo names answer 404 from this page on (a partition failing midway). */
let failFromPage = new Map<string, number>();
/** Milliseconds before a page of this repo's issues is answered (default: by position). */
let pageDelay: ((repo: string) => number) | null = null;
let server: SyncServer;
let project: TempProject;

const ISSUES_PATH = /^\/repos\/([^/]+)\/issues$/;

beforeAll(async () => {
  server = await startSyncServer(async (req) => {
    if (req.rawPath === "/repos") {
      // GitHub style: each parent carries the URL of its children (absolute) and their path.
      return {
        body: repos.map(({ issues: _, ...r }) => ({
          ...r,
          issues_url: `${server.url}/repos/${encodeURIComponent(r.name)}/issues`,
          issues_path: `/repos/${encodeURIComponent(r.name)}/issues`,
        })),
      };
    }
    if (req.rawPath === "/users") return { body: [{ login: "ann" }] };
    // Where `/repos/../issues` would lead if a parent named `..` were not kept in its segment.
    if (req.rawPath === "/issues" || req.rawPath === "/repos/issues") {
      return { body: pageOf([{ number: 999, title: "wrong" }], req.query) };
    }
    const m = ISSUES_PATH.exec(req.rawPath);
    if (m) {
      const name = decodeURIComponent(m[1]);
      const index = repos.findIndex((r) => r.name === name);
      if (index < 0 || missing.has(name)) return { status: 404, body: { message: "Not Found" } };
      if (Number(req.query.page ?? "1") >= (failFromPage.get(name) ?? Number.POSITIVE_INFINITY))
        return { status: 404, body: { message: "Not Found" } };
      // Earlier parents answer later, so arrival order differs from parent order.
      await new Promise((r) => setTimeout(r, pageDelay?.(name) ?? (repos.length - index) * 8));
      return { body: pageOf(issuesOf(name, repos[index].issues), req.query) };
    }
    return { status: 404, body: { message: "no route" } };
  });
});
afterAll(() => server.close());
beforeEach(() => {
  repos = REPOS;
  missing = new Set();
  failFromPage = new Map();
  pageDelay = null;
  server.reset();
  project = tempProject("pipelines-sync-pc-");
  project.pipeline(
    "gh",
    [
      "source:",
      `  base_url: ${server.url}`,
      "  retry: { max_attempts: 1 }",
      "  timeout: 5s",
      "  concurrency: 4",
      "streams:",
      "  repos:",
      "    path: /repos",
      "    primary_key: id",
      "    schema: repo.schema.json",
      "  issues:",
      "    parent: repos",
      "    path: /repos/${parent.name}/issues",
      '    params: { owner: "${parent.owner.login}" }',
      '    headers: { X-Repo-Id: "${parent.id}" }',
      "    paginate: { type: page, size_param: per_page, size: 5 }",
      "    include_parent: { repo_name: name }",
      "  users:",
      "    path: /users",
      "validation:",
      "  max_invalid_ratio: 0.5",
      "",
    ].join("\n"),
  );
  writeSchema();
});
afterEach(() => project.cleanup());

function writeSchema(): void {
  const schema = {
    type: "object",
    required: ["id", "name", "owner"],
    properties: {
      id: { type: "integer" },
      name: { type: "string", minLength: 1 },
      owner: { type: "object", properties: { login: { type: "string" } } },
    },
  };
  writeFileSync(project.file("schemas/repo.schema.json"), JSON.stringify(schema));
}

const OUT = (stream: string) => project.file(`out/gh/${stream}.jsonl`);
const issueRequests = () => server.requests.filter((r) => ISSUES_PATH.test(r.rawPath));
const nameOf = (r: SeenRequest) => decodeURIComponent(ISSUES_PATH.exec(r.rawPath)![1]);

/** Rewrites the pipeline with `keys` (YAML lines, each ending in \n) added to the child stream. */
function childKeys(keys: string): void {
  project.pipeline(
    "gh",
    readFileSync(project.file("pipelines/gh.yaml"), "utf8").replace(
      "    include_parent: { repo_name: name }\n",
      `    include_parent: { repo_name: name }\n${keys}`,
    ),
  );
}

describe("parent–child streams", () => {
  it("collects every child record exactly once, in parent order, with include_parent copied", async () => {
    const r = await runPipeline(project.dir, "gh");
    expect(r.code, r.stderr).toBe(0);
    const issues = readJsonl(OUT("issues")) as Issue[];
    expect(issues).toEqual(groundTruth());
    expect(issues.length).toBe(53);
    expect(r.stream("issues").records.written).toBe(53);
    // Each parent was asked for each page once: its ceil(n/5) pages with records, then at least
    // the empty page that ends a `page` paginator (pages asked ahead of it are allowed).
    const keys = issueRequests().map((q) => `${nameOf(q)}?${q.query.page}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const repo of REPOS) {
      const last = Math.ceil(repo.issues / 5) + 1;
      for (let page = 1; page <= last; page++) expect(keys).toContain(`${repo.name}?${page}`);
    }
    // The scratch copy of the parent records is gone.
    expect(listFiles(project.file(".pipelines/state")).filter((f) => f.includes(".partitions"))).toEqual([]);
  });

  it("percent-encodes parent values in the path; fills ${parent.…} in params and headers unencoded", async () => {
    const r = await runPipeline(project.dir, "gh");
    expect(r.code, r.stderr).toBe(0);
    const paths = new Set(issueRequests().map((q) => q.rawPath));
    expect(paths).toContain("/repos/gamma%20delta/issues");
    expect(paths).toContain("/repos/eps%2Filon/issues");
    expect(paths).not.toContain("/repos/eps/ilon/issues");
    for (const q of issueRequests()) {
      const repo = REPOS.find((x) => x.name === nameOf(q))!;
      expect(q.query.owner).toBe(repo.owner.login);
      expect(q.headers["x-repo-id"]).toBe(String(repo.id));
    }
    const slashed = (readJsonl(OUT("issues")) as Issue[]).filter((i) => i.repo_name === "eps/ilon");
    expect(slashed.length).toBe(12);
  });

  it.each(["issues_url", "issues_path"])(
    "`path: ${parent.%s}` uses the parent's URL as is",
    async (field) => {
      project.pipeline(
        "gh",
        readFileSync(project.file("pipelines/gh.yaml"), "utf8").replace(
          "    path: /repos/${parent.name}/issues\n",
          `    path: \${parent.${field}}\n`,
        ),
      );
      const r = await runPipeline(project.dir, "gh");
      expect(r.code, r.stderr).toBe(0);
      expect(new Set(issueRequests().map((q) => q.rawPath))).toContain("/repos/eps%2Filon/issues");
      expect(readJsonl(OUT("issues"))).toEqual(groundTruth());
    },
  );

  it("a 404 partition fails the stream by default (exit 1) and names the parent key", async () => {
    missing = new Set(["eta"]);
    const r = await runPipeline(project.dir, "gh");
    expect(r.code).toBe(1);
    const issues = r.stream("issues");
    expect(issues.status).toBe("failed");
    expect(issues.error?.message).toContain("repos:id=6");
    expect(issues.error?.message).toContain("404");
    expect(r.stderr).toContain("repos:id=6");
    expect(existsSync(OUT("issues"))).toBe(false);
    // The parent itself succeeded and was committed.
    expect(r.stream("repos").status).toBe("ok");
    expect(readJsonl(OUT("repos")).length).toBe(REPOS.length);
  });

  it("on_partition_error: skip completes the stream, lists the failed parent key, writes the others", async () => {
    childKeys("    on_partition_error: skip\n");
    missing = new Set(["eta"]);
    const r = await runPipeline(project.dir, "gh");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("issues").status).toBe("ok");
    const summaryPartitions = (r.stream("issues") as unknown as { partitions: Partitions }).partitions;
    expect(summaryPartitions.failed.map((f) => f.parent_key)).toEqual(["repos:id=6"]);
    expect(summaryPartitions.total).toBe(8);
    const report = JSON.parse(readFileSync(project.file("reports/gh/latest.json"), "utf8")) as {
      streams: { name: string; partitions: Partitions | null }[];
    };
    const p = report.streams.find((s) => s.name === "issues")!.partitions!;
    expect(p.failed).toHaveLength(1);
    expect(p.failed[0].parent_key).toBe("repos:id=6");
    expect(p.failed[0].error).toContain("404");
    expect(r.stderr).toContain("repos:id=6");
    expect(readJsonl(OUT("issues"))).toEqual(groundTruth(REPOS.filter((x) => x.name !== "eta")));
  });

  it("on_partition_error: skip drops a partition that fails on its 2nd page whole (no half partition)", async () => {
    childKeys("    on_partition_error: skip\n");
    failFromPage = new Map([["theta", 2]]); // 25 issues: page 1 arrives, page 2 fails
    const r = await runPipeline(project.dir, "gh");
    expect(r.code, r.stderr).toBe(0);
    expect(issueRequests().filter((q) => q.rawPath.includes("theta")).length).toBeGreaterThanOrEqual(2);
    const failed = (r.stream("issues") as unknown as { partitions: Partitions }).partitions.failed;
    expect(failed.map((f) => f.parent_key)).toEqual(["repos:id=7"]);
    expect(failed[0].error).not.toContain("are kept");
    expect(readJsonl(OUT("issues"))).toEqual(groundTruth(REPOS.filter((x) => x.name !== "theta")));
  });

  it("a skipped partition keeps the child's incremental cursor where it was", async () => {
    childKeys(
      "    on_partition_error: skip\n    incremental: { cursor_field: number, param: since_number, initial: 0 }\n",
    );
    const state = project.file(".pipelines/state/gh.json");
    missing = new Set(["theta"]);
    const skipped = await runPipeline(project.dir, "gh");
    expect(skipped.code, skipped.stderr).toBe(0);
    // Format 1.1: one position per partition. theta (25 issues) was skipped: it keeps none (its
    // issues are fetched again from `initial`); the others keep their own.
    const partitions = () =>
      existsSync(state) ? (JSON.parse(readFileSync(state, "utf8")).streams?.issues?.partitions ?? {}) : {};
    expect(Object.keys(partitions()).some((k) => k.includes("theta"))).toBe(false);
    expect(Object.values(partitions())).toContain(12);
    expect(new Set(issueRequests().map((q) => q.query.since_number))).toEqual(new Set(["0"]));

    missing = new Set();
    server.reset();
    const ok = await runPipeline(project.dir, "gh");
    expect(ok.code, ok.stderr).toBe(0);
    const theta = Object.entries(partitions()).find(([k]) => k.includes("theta"));
    expect(theta?.[1]).toBe(25);
    // Each partition sent its own value: theta from `initial`, iota (5 issues) from 5.
    const sent = issueRequests().map((q) => q.query.since_number);
    expect(sent).toContain("0");
    expect(sent).toContain("5");
  });

  it("a parent value `.` or `..` is never resolved as a path segment: that partition fails", async () => {
    childKeys("    on_partition_error: skip\n");
    repos = [
      ...REPOS,
      { id: 9, name: "..", owner: { login: "x" }, issues: 0 },
      { id: 10, name: ".", owner: { login: "y" }, issues: 0 },
    ];
    const r = await runPipeline(project.dir, "gh");
    expect(r.code, r.stderr).toBe(0);
    expect(server.requests.map((q) => q.rawPath)).not.toContain("/issues");
    expect(server.requests.map((q) => q.rawPath)).not.toContain("/repos/issues");
    const failed = (r.stream("issues") as unknown as { partitions: Partitions }).partitions.failed;
    expect(failed.map((f) => f.parent_key)).toEqual(["repos:id=9", "repos:id=10"]);
    expect(readJsonl(OUT("issues"))).toEqual(groundTruth());
  });

  it("invalid_records: fail in a partition waiting in the ordered sink stops launching partitions", async () => {
    project.pipeline(
      "gh",
      readFileSync(project.file("pipelines/gh.yaml"), "utf8")
        .replace("concurrency: 4", "concurrency: 2")
        .replace(
          "    include_parent: { repo_name: name }\n",
          '    include_parent: { repo_name: name }\n    schema: { type: object, properties: { title: { not: { const: "gamma delta #2" } } } }\n',
        )
        .replace("validation:\n", "validation:\n  invalid_records: fail\n"),
    );
    // alpha (1st) holds one slot for 3 slow pages; the other slot runs beta, then gamma delta
    // (3rd), whose invalid record waits in the ordered sink until alpha ends and flushes it. That
    // failure must stop the stream from starting more partitions: the other slot would only reach
    // theta after beta, gamma delta, eps/ilon (4 pages), zeta and eta: ~560 ms against alpha's ~300.
    pageDelay = (repo) => (repo === "alpha" ? 100 : repo === "eps/ilon" ? 80 : 40);
    const r = await runPipeline(project.dir, "gh");
    expect(r.code).toBe(3);
    expect(r.stream("issues").status).toBe("failed");
    expect(r.stream("issues").error?.message).toContain("is invalid (invalid_records: fail)");
    expect(existsSync(OUT("issues"))).toBe(false);
    const asked = new Set(issueRequests().map(nameOf));
    const t0 = server.requests[0].at;
    const timeline = issueRequests()
      .map((q) => `${q.at - t0}ms ${nameOf(q)} page ${q.query.page}`)
      .join(", ");
    expect(asked).toContain("gamma delta");
    expect(asked, timeline).not.toContain("theta");
    expect(asked, timeline).not.toContain("iota");
  });

  it("invalid parent records (failing the parent's schema) get no child request", async () => {
    repos = [
      ...REPOS.slice(0, 2),
      { id: "x9", name: "ghost", owner: { login: "zed" }, issues: 4 },
      { id: 10, name: "", owner: { login: "nobody" }, issues: 2 },
      ...REPOS.slice(2),
    ];
    const r = await runPipeline(project.dir, "gh");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream("repos").records.invalid).toBe(2);
    expect(issueRequests().map(nameOf)).not.toContain("ghost");
    expect(issueRequests().some((q) => q.rawPath === "/repos//issues")).toBe(false);
    expect(readJsonl(OUT("issues"))).toEqual(groundTruth());
    expect(r.stream("issues").records.written).toBe(53);
  });

  it("--stream issues runs the parent too, and nothing else", async () => {
    const r = await runPipeline(project.dir, "gh", ["--stream", "issues"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.summary.streams.map((s) => s.name).sort()).toEqual(["issues", "repos"]);
    expect(server.requests.some((q) => q.rawPath === "/users")).toBe(false);
    expect(existsSync(OUT("users"))).toBe(false);
    expect(readJsonl(OUT("repos")).length).toBe(REPOS.length);
    expect(readJsonl(OUT("issues"))).toEqual(groundTruth());
  });

  it("runs partitions concurrently (at most source.concurrency) yet writes them in a deterministic order", async () => {
    const first = await runPipeline(project.dir, "gh", ["--stream", "issues"]);
    expect(first.code, first.stderr).toBe(0);
    const inFlight = server.maxInFlight();
    expect(inFlight).toBeGreaterThan(1);
    expect(inFlight).toBeLessThanOrEqual(4);
    const bytes = readFileSync(OUT("issues"));
    // Parents answered in reverse order of their position, yet the output is in parent order.
    const order = (readJsonl(OUT("issues")) as Issue[]).map((i) => i.repo_name);
    expect([...new Set(order)]).toEqual(REPOS.filter((x) => x.issues > 0).map((x) => x.name));

    const second = await runPipeline(project.dir, "gh", ["--stream", "issues"]);
    expect(second.code, second.stderr).toBe(0);
    expect(readFileSync(OUT("issues")).equals(bytes)).toBe(true);
  });
});

interface Partitions {
  total: number;
  done: number;
  failed: { parent_key: string; error: string }[];
}
