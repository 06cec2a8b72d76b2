// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${…}` template syntax
import { cpSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { compilePlan } from "../../src/compile/compile-plan.js";
import { formatPlan, redactPlan } from "../../src/compile/show-plan.js";
import { ConfigError } from "../../src/config/errors.js";
import { listPipelineNames, loadPipeline, readEnv } from "../../src/config/load-pipeline.js";
import { loadProject, makeProject } from "../../src/config/project.js";
import { configErrorOf, issuesOf, loadOk, tempDir, tempProject, writeFiles, yaml } from "./helpers.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const EXAMPLE = fileURLToPath(new URL("./fixtures/example/", import.meta.url));

const {
  dir: root,
  project,
  cleanup,
} = tempProject({
  "user.schema.json": JSON.stringify({
    type: "object",
    required: ["id"],
    properties: { id: { type: "integer" } },
  }),
});
afterAll(cleanup);

/** `${env.NAME}` names used in a file. */
function envNames(text: string): string[] {
  return [...text.matchAll(/(?<!\$)\$\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}/g)].map((m) => m[1]);
}

/** A stand-in value for an env variable: a URL for `…_URL` names (a site's base URL), else a word. */
function dummyEnvValue(name: string): string {
  return name.endsWith("_URL")
    ? `https://${name.toLowerCase().replaceAll("_", "-")}.example.com`
    : `dummy-${name.toLowerCase()}`;
}

describe("the complete example of the format", () => {
  const text = readFileSync(path.join(EXAMPLE, "pipelines/github.yaml"), "utf8");

  it("is the example from the format page", () => {
    const doc = readFileSync("/work/shared/pipeline-format.md", "utf8").replaceAll("\r\n", "\n");
    expect(doc).toContain(text.trimEnd());
  });

  it("validates and compiles to the plan it describes", () => {
    const example = makeProject(EXAMPLE, null, {});
    const loaded = loadPipeline(example, "github", { GITHUB_TOKEN: "ghp_example_token" });
    expect(loaded.envUsed).toEqual(["GITHUB_TOKEN"]);
    const plan = compilePlan(loaded);
    expect(plan.pipeline).toBe("github");
    expect(plan.description).toBe("Issues of acme/widgets, updated since the last run");
    expect(plan.auth).toEqual({ type: "bearer", token: "ghp_example_token", scheme: "Bearer" });
    expect(plan.source).toMatchObject({
      baseUrl: "https://api.github.com",
      origin: "https://api.github.com",
      headers: { Accept: "application/vnd.github+json" },
      timeoutMs: 30_000,
      retry: {
        maxAttempts: 5,
        initialDelayMs: 1000,
        maxDelayMs: 60_000,
        onStatus: [408, 425, 429, 500, 502, 503, 504],
      },
      rateLimit: {
        perSecond: 10,
        perMinute: null,
        perHour: null,
        perDay: 5000,
        remainingHeader: "x-ratelimit-remaining",
        resetHeader: "x-ratelimit-reset",
      },
      concurrency: 4,
      maxResponseBytes: 64 * 1024 * 1024,
    });
    expect(plan.streams).toHaveLength(1);
    const s = plan.streams[0];
    expect(s.request).toEqual({
      method: "GET",
      url: "https://api.github.com/repos/acme/widgets/issues",
      params: { state: "all", per_page: "100" },
      headers: { Accept: "application/vnd.github+json" },
      body: null,
      templated: false,
    });
    expect(s.paginator).toEqual({
      type: "link_header",
      rel: "next",
      maxPages: null,
      maxEmptyPages: 3,
      stopOnEmptyPage: false,
    });
    expect(s.records).toBe("$[*]");
    expect(s.fields).toEqual([
      { name: "id", path: "$.id", multi: false },
      { name: "title", path: "$.title", multi: false },
      { name: "author", path: "$.user.login", multi: false },
      { name: "labels", path: "$.labels[*].name", multi: true },
      { name: "updated_at", path: "$.updated_at", multi: false },
    ]);
    expect(s.schema?.file).toBe(path.join(EXAMPLE, "schemas", "github-issue.schema.json"));
    expect(s.schema?.schema.required).toEqual(["id", "title", "updated_at"]);
    expect(s.primaryKey).toEqual(["id"]);
    expect(s.incremental).toEqual({
      cursorField: "updated_at",
      param: "since",
      in: "query",
      initial: "2024-01-01T00:00:00Z",
      lookbackMs: 0,
    });
    expect(s.output).toEqual({
      format: "sqlite",
      mode: "merge",
      path: path.join(EXAMPLE, "out", "github.db"),
      guard: { allowEmpty: false, maxVolumeDrop: 0.9 },
      // sqlite keeps the incremental state with the rows (_pipelines_state), under the pipeline's name.
      stateKey: "github",
    });
    expect(plan.validation).toEqual({ invalidRecords: "skip", maxInvalidRatio: 0.05, drift: "warn" });
    // The plan is plain data.
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
  });

  it("names GITHUB_TOKEN when it is not set", () => {
    const example = makeProject(EXAMPLE, null, {});
    const err = configErrorOf(() => loadPipeline(example, "github", {}));
    expect(err.issues.map((i) => [i.code, i.line, i.column])).toEqual([["missing_env", 10, 12]]);
  });
});

describe("the pipelines of the repository", () => {
  const repo = makeProject(REPO, null, {});
  const names = listPipelineNames(repo);

  it("has some", () => {
    expect(names.length).toBeGreaterThan(0);
  });

  it.each(names)("%s validates and compiles", (name) => {
    const file = readdirSync(repo.pipelinesDir).find((f) => f === `${name}.yaml` || f === `${name}.yml`)!;
    const text = readFileSync(path.join(repo.pipelinesDir, file), "utf8");
    const env = Object.fromEntries(envNames(text).map((n) => [n, dummyEnvValue(n)]));
    const loaded = loadPipeline(repo, name, env);
    const plan = compilePlan(loaded);
    expect(plan.streams.length).toBeGreaterThan(0);
    for (const s of plan.streams) expect(s.output.path.startsWith(REPO)).toBe(true);
    // An example is documented: its header comment names every env variable it needs, and every
    // stream's records are checked against a schema file of the repository.
    const header = text.slice(0, text.search(/^[^#\n]/m));
    for (const n of envNames(text)) expect(header, `${name}: header comment names ${n}`).toContain(n);
    for (const s of plan.streams) expect(s.schema?.file, `${name}.${s.name} has a schema file`).toBeTruthy();
  });
});

const base = (streamYaml: string, sourceExtra = "") =>
  `source:\n  base_url: https://x.test/v1\n${sourceExtra}streams:\n  s:\n    path: /items\n${streamYaml}`;

describe("one small pipeline per paginate type", () => {
  const cases: [string, string, Record<string, unknown>][] = [
    ["none", "    paginate: { type: none }\n", { type: "none" }],
    [
      "cursor (body path)",
      "    paginate: { type: cursor, cursor: $.next_cursor, param: after, has_more: $.has_more }\n",
      {
        type: "cursor",
        cursorPath: "$.next_cursor",
        cursorHeader: null,
        param: "after",
        in: "query",
        hasMore: "$.has_more",
        done: null,
      },
    ],
    [
      "cursor (header)",
      "    method: POST\n    paginate: { type: cursor, cursor_header: X-Next-Cursor, in: body, done: $.done }\n",
      {
        type: "cursor",
        cursorPath: null,
        cursorHeader: "x-next-cursor",
        param: "cursor",
        in: "body",
        done: "$.done",
      },
    ],
    [
      "offset",
      "    paginate: { type: offset, total: $.meta.total }\n",
      {
        type: "offset",
        offsetParam: "offset",
        limitParam: "limit",
        limit: 100,
        start: 0,
        total: "$.meta.total",
      },
    ],
    [
      "page",
      "    paginate: { type: page, size_param: per_page, size: 50, total_pages: $.pages }\n",
      { type: "page", pageParam: "page", start: 1, sizeParam: "per_page", size: 50, totalPages: "$.pages" },
    ],
    ["link_header", "    paginate: { type: link_header }\n", { type: "link_header", rel: "next" }],
    [
      "next_url",
      "    paginate: { type: next_url, next: \"$['@odata.nextLink']\", max_pages: 10, stop_on_empty_page: true }\n",
      {
        type: "next_url",
        next: "$['@odata.nextLink']",
        hasMore: null,
        done: null,
        maxPages: 10,
        stopOnEmptyPage: true,
      },
    ],
  ];

  it.each(cases)("%s", (_name, stream, expected) => {
    const plan = compilePlan(loadOk(project, base(stream)));
    expect(plan.streams[0].paginator).toMatchObject(expected);
  });

  it("covers every paginate type of the schema", async () => {
    const { typeNames } = await import("../../src/config/format-schema.js");
    const covered = new Set(cases.map((c) => c[2].type));
    expect([...covered].sort()).toEqual([...typeNames("paginate")].sort());
  });

  it("fills paginator defaults", () => {
    const plan = compilePlan(loadOk(project, base("")));
    expect(plan.streams[0].paginator).toEqual({
      type: "none",
      maxPages: null,
      maxEmptyPages: 3,
      stopOnEmptyPage: false,
    });
    const offset = compilePlan(loadOk(project, base("    paginate: { type: offset }\n"))).streams[0]
      .paginator;
    expect(offset).toEqual({
      type: "offset",
      offsetParam: "offset",
      limitParam: "limit",
      limit: 100,
      start: 0,
      total: null,
      in: "query",
      maxPages: null,
      maxEmptyPages: 3,
      stopOnEmptyPage: false,
    });
    const page = compilePlan(loadOk(project, base("    paginate: { type: page }\n"))).streams[0].paginator;
    expect(page).toMatchObject({
      pageParam: "page",
      start: 1,
      sizeParam: null,
      size: null,
      totalPages: null,
    });
    const cursor = compilePlan(loadOk(project, base("    paginate: { type: cursor, cursor: $.c }\n")))
      .streams[0];
    expect(cursor.paginator).toMatchObject({ param: "cursor", in: "query", hasMore: null, done: null });
  });
});

describe("one small pipeline per auth type", () => {
  const env = { TOKEN: "t0ken-value", PASSWORD: "pa55word", KEY: "k3y-value", SECRET: "s3cret-value" };
  const cases: [string, string, Record<string, unknown>][] = [
    ["none", "  auth: { type: none }\n", { type: "none" }],
    [
      "bearer",
      '  auth: { type: bearer, token: "${env.TOKEN}", scheme: token }\n',
      { type: "bearer", token: "t0ken-value", scheme: "token" },
    ],
    [
      "basic",
      '  auth: { type: basic, username: me, password: "${env.PASSWORD}" }\n',
      { type: "basic", username: "me", password: "pa55word" },
    ],
    [
      "basic with no password",
      "  auth: { type: basic, username: sk_test_abc }\n",
      { type: "basic", username: "sk_test_abc", password: "" },
    ],
    [
      "api_key",
      '  auth: { type: api_key, name: api_key, value: "${env.KEY}", in: query }\n',
      { type: "api_key", name: "api_key", value: "k3y-value", in: "query" },
    ],
    [
      "oauth2 client credentials",
      '  auth:\n    type: oauth2\n    token_url: https://x.test/oauth/token\n    grant_type: client_credentials\n    client_id: my-client\n    client_secret: "${env.SECRET}"\n    scope: read\n',
      {
        type: "oauth2",
        tokenUrl: "https://x.test/oauth/token",
        grantType: "client_credentials",
        clientId: "my-client",
        clientSecret: "s3cret-value",
        refreshToken: null,
        scope: "read",
        clientAuth: "body",
        refreshBeforeMs: 60_000,
      },
    ],
    [
      "oauth2 refresh token",
      '  auth:\n    type: oauth2\n    token_url: https://x.test/oauth/token\n    grant_type: refresh_token\n    refresh_token: "${env.SECRET}"\n    client_auth: basic\n    refresh_before: 2m\n',
      {
        type: "oauth2",
        grantType: "refresh_token",
        refreshToken: "s3cret-value",
        clientAuth: "basic",
        refreshBeforeMs: 120_000,
      },
    ],
  ];

  it.each(cases)("%s", (_name, auth, expected) => {
    const plan = compilePlan(loadOk(project, base("", auth), env));
    expect(plan.auth).toMatchObject(expected);
  });

  it("defaults to none and covers every auth type of the schema", async () => {
    expect(compilePlan(loadOk(project, base(""))).auth).toEqual({ type: "none" });
    const { typeNames } = await import("../../src/config/format-schema.js");
    expect([...new Set(cases.map((c) => c[2].type))].sort()).toEqual([...typeNames("auth")].sort());
  });
});

describe("plan content", () => {
  it("joins path to base_url keeping the base path, with or without a leading /", () => {
    const text = yaml`
      source:
        base_url: https://x.test/v1
      streams:
        a: { path: /users }
        b: { path: users }
        c: { path: https://other.test/abs }
        d: { path: "/users?active=true" }
    `;
    const plan = compilePlan(loadOk(project, text));
    expect(plan.streams.map((s) => s.request.url)).toEqual([
      "https://x.test/v1/users",
      "https://x.test/v1/users",
      "https://other.test/abs",
      "https://x.test/v1/users?active=true",
    ]);
    const slash = compilePlan(loadOk(project, text.replace("https://x.test/v1", "https://x.test/v1/")));
    expect(slash.streams[0].request.url).toBe("https://x.test/v1/users");
    expect(slash.streams[1].request.url).toBe("https://x.test/v1/users");
    // A query string in base_url is kept, after the path's own.
    const query = compilePlan(
      loadOk(project, text.replace("https://x.test/v1", "https://x.test/v1?api-version=2")),
    );
    expect(query.streams.map((s) => s.request.url)).toEqual([
      "https://x.test/v1/users?api-version=2",
      "https://x.test/v1/users?api-version=2",
      "https://other.test/abs",
      "https://x.test/v1/users?active=true&api-version=2",
    ]);
  });

  it("an env template alone where the format wants a number or boolean takes that type", () => {
    const text = yaml`
      source:
        base_url: https://x.test
        concurrency: \${env.CONC}
        rate_limit: { requests_per_second: "\${env.RPS}" }
        headers: { X-Api-Version: "\${env.VERSION}" }
      streams:
        a:
          path: /a
          paginate: { type: offset, limit: "\${env.LIMIT}", stop_on_empty_page: "\${env.STOP}" }
    `;
    const env = { CONC: "8", RPS: "0.5", VERSION: "2024-01", LIMIT: "250", STOP: " true " };
    const loaded = loadOk(project, text, env);
    const plan = compilePlan(loaded);
    // Numbers and booleans are settings, not secrets: "250" is not masked in messages; a string
    // env value still is.
    expect(loaded.redactor.text("limit 250, version 2024-01")).toBe("limit 250, version ***");
    expect(plan.source.concurrency).toBe(8);
    expect(plan.source.rateLimit?.perSecond).toBe(0.5);
    expect(plan.streams[0].paginator).toMatchObject({ type: "offset", limit: 250, stopOnEmptyPage: true });
    // Where the format takes strings, the value stays the text it was.
    expect(plan.source.headers["X-Api-Version"]).toBe("2024-01");
    // Text around the template: a string, as written.
    const mixed = issuesOf(
      project,
      text.replace("concurrency: ${env.CONC}", "concurrency: x${env.CONC}"),
      env,
    );
    expect(mixed.map((i) => [i.code, i.path])).toEqual([["wrong_type", "source.concurrency"]]);
  });

  it("reads YAML merge keys: shared settings once, keys written beside the merge win", () => {
    const text = yaml`
      source:
        base_url: https://x.test
      streams:
        a:
          <<: &page
            records: $.data
            paginate: { type: cursor, cursor: $.next }
            params: { per_page: 100 }
          path: /a
        b:
          <<: *page
          path: /b
          records: $.items
        c:
          <<: [*page, { headers: { X-Team: core } }]
          path: /c
    `;
    const plan = compilePlan(loadOk(project, text));
    expect(plan.streams.map((s) => [s.name, s.request.url, s.records, s.paginator.type])).toEqual([
      ["a", "https://x.test/a", "$.data", "cursor"],
      ["b", "https://x.test/b", "$.items", "cursor"],
      ["c", "https://x.test/c", "$.data", "cursor"],
    ]);
    expect(plan.streams.map((s) => s.request.params)).toEqual([
      { per_page: "100" },
      { per_page: "100" },
      { per_page: "100" },
    ]);
    expect(plan.streams[2].request.headers).toEqual({ "X-Team": "core" });
  });

  it("merges params over the source's and headers case-insensitively", () => {
    const plan = compilePlan(
      loadOk(
        project,
        yaml`
          source:
            base_url: https://x.test
            params: { per_page: 100, state: open, tags: [a, b] }
            headers: { Accept: application/json, X-Shared: yes, X-Api-Version: 2, X-Debug: false }
          streams:
            a:
              path: /a
              params: { state: all, flag: true }
              headers: { accept: text/csv, X-Own: "1" }
        `,
      ),
    );
    const r = plan.streams[0].request;
    expect(r.params).toEqual({ per_page: "100", state: "all", tags: ["a", "b"], flag: "true" });
    // Numbers and booleans are sent as written.
    expect(r.headers).toEqual({
      "X-Shared": "yes",
      "X-Api-Version": "2",
      "X-Debug": "false",
      accept: "text/csv",
      "X-Own": "1",
    });
    expect(plan.source.headers).toEqual({
      Accept: "application/json",
      "X-Shared": "yes",
      "X-Api-Version": "2",
      "X-Debug": "false",
    });
  });

  it("gives default output paths per format, and sqlite one file", () => {
    const streams = "streams:\n  users: { path: /u }\n  teams: { path: /t }\n";
    const src = "source:\n  base_url: https://x.test\n";
    const jsonl = compilePlan(loadOk(project, src + streams, {}, "crm"));
    expect(jsonl.streams.map((s) => s.output)).toEqual([
      {
        format: "jsonl",
        mode: "replace",
        path: path.join(root, "out", "crm", "users.jsonl"),
        guard: { allowEmpty: false, maxVolumeDrop: 0.9 },
      },
      {
        format: "jsonl",
        mode: "replace",
        path: path.join(root, "out", "crm", "teams.jsonl"),
        guard: { allowEmpty: false, maxVolumeDrop: 0.9 },
      },
    ]);
    const csv = compilePlan(
      loadOk(project, `${src + streams}output: { format: csv, mode: append }\n`, {}, "crm"),
    );
    expect(csv.streams[1].output).toEqual({
      format: "csv",
      mode: "append",
      path: path.join(root, "out", "crm", "teams.csv"),
      guard: { allowEmpty: false, maxVolumeDrop: 0.9 },
      csv: { escapeFormulas: false },
    });
    const json = compilePlan(loadOk(project, `${src + streams}output: { format: json }\n`, {}, "crm"));
    expect(json.streams[0].output.path).toBe(path.join(root, "out", "crm", "users.json"));
    const sqlite = compilePlan(loadOk(project, `${src + streams}output: { format: sqlite }\n`, {}, "crm"));
    expect(sqlite.streams.map((s) => s.output.path)).toEqual([
      path.join(root, "out", "crm.db"),
      path.join(root, "out", "crm.db"),
    ]);
  });

  it("fills ${stream} and ${pipeline} in output.path (relative to the project root)", () => {
    const text = yaml`
      source:
        base_url: https://x.test
      streams:
        users: { path: /u }
        teams: { path: /t }
      output:
        format: csv
        path: exports/\${pipeline}/\${stream}-latest.csv
    `;
    const plan = compilePlan(loadOk(project, text, {}, "crm"));
    expect(plan.streams.map((s) => s.output.path)).toEqual([
      path.join(root, "exports", "crm", "users-latest.csv"),
      path.join(root, "exports", "crm", "teams-latest.csv"),
    ]);
  });

  it("parses durations and sizes", () => {
    const text = yaml`
      source:
        base_url: https://x.test
        timeout: 1.5m
        retry: { initial_delay: 500ms, max_delay: 2 }
        max_response_size: 512KiB
      streams:
        a:
          path: /a
          fields: { t: $.t }
          incremental: { cursor_field: t, param: since, lookback: 1d }
    `;
    const plan = compilePlan(loadOk(project, text));
    expect(plan.source.timeoutMs).toBe(90_000);
    expect(plan.source.retry).toMatchObject({ initialDelayMs: 500, maxDelayMs: 2000 });
    expect(plan.source.maxResponseBytes).toBe(512 * 1024);
    expect(plan.streams[0].incremental?.lookbackMs).toBe(86_400_000);
    const other = compilePlan(
      loadOk(
        project,
        "source:\n  base_url: https://x.test\n  timeout: 1h\n  max_response_size: 2MB\nstreams:\n  a: { path: /a }\n",
      ),
    );
    expect(other.source.timeoutMs).toBe(3_600_000);
    expect(other.source.maxResponseBytes).toBe(2_000_000);
  });

  it("puts parents before their children, otherwise file order", () => {
    const text = yaml`
      source:
        base_url: https://x.test/api
      streams:
        comments:
          path: /issues/\${parent.number}/comments
          parent: issues
          include_parent: { issue_number: number }
        issues:
          path: /repos/\${parent.name}/issues
          parent: repos
        repos: { path: /repos }
        users: { path: /users }
    `;
    const plan = compilePlan(loadOk(project, text));
    expect(plan.streams.map((s) => [s.name, s.parent])).toEqual([
      ["repos", null],
      ["issues", "repos"],
      ["comments", "issues"],
      ["users", null],
    ]);
    // Child requests keep their templates, joined to the base URL.
    expect(plan.streams[1].request).toMatchObject({
      url: "https://x.test/api/repos/${parent.name}/issues",
      templated: true,
    });
    expect(plan.streams[2].includeParent).toEqual([{ field: "issue_number", from: ["number"] }]);
  });

  it("keeps $${ as a literal: unescaped in plain streams, escaped in child templates", () => {
    const text = yaml`
      source:
        base_url: https://x.test
        params: { shared: "a$\${b}" }
      streams:
        parent: { path: "/p/$\${raw}" }
        child:
          parent: parent
          path: /c/\${parent.id}
          params: { q: "$\${lit}-\${parent.id}" }
    `;
    const plan = compilePlan(loadOk(project, text));
    const [p, c] = plan.streams;
    expect(p.request.url).toBe("https://x.test/p/${raw}");
    expect(p.request.params.shared).toBe("a${b}");
    expect(c.request.params).toEqual({ shared: "a$${b}", q: "$${lit}-${parent.id}" });
  });

  it("accepts the JSONPaths of the format (and names that are not ASCII)", () => {
    const paths: [string, boolean][] = [
      ["$.data", false],
      ["$.paging.next.after", false],
      ["$['@odata.nextLink']", false],
      ["$.data[-1:].id", true],
      ["$.items[?(@.active)]", true],
      ["$.items[?(@.price < 10 && @.active)].id", true],
      ["$..id", true],
      ["$.labels[*].name", true],
      ["$.a['b c']", false],
      ["$.données.prénom", false],
      ["$.1x", false],
      ["$.a-b", false],
    ];
    const fields = paths.map(([p], i) => `      f${i}: ${JSON.stringify(p)}\n`).join("");
    const text = `source:\n  base_url: https://x.test\nstreams:\n  a:\n    path: /a\n    fields:\n${fields}`;
    const plan = compilePlan(loadOk(project, text));
    expect(plan.streams[0].fields?.map((f) => [f.path, f.multi])).toEqual(paths);
  });

  it("compiles a stream schema given inline or by file", () => {
    const text = yaml`
      source:
        base_url: https://x.test
      streams:
        a: { path: /a, schema: user.schema.json }
        b:
          path: /b
          schema:
            $schema: https://json-schema.org/draft/2020-12/schema
            type: object
            properties: { id: { type: integer } }
    `;
    const plan = compilePlan(loadOk(project, text));
    expect(plan.streams[0].schema).toEqual({
      file: path.join(root, "schemas", "user.schema.json"),
      schema: { type: "object", required: ["id"], properties: { id: { type: "integer" } } },
    });
    expect(plan.streams[1].schema?.file).toBeNull();
    expect(plan.streams[1].schema?.schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
  });

  it("formats a readable plan", () => {
    const text = yaml`
      description: Users and their repos
      source:
        base_url: https://x.test/v1
        rate_limit: { requests_per_minute: 60 }
      streams:
        users:
          path: /users
          paginate: { type: page, size_param: per_page, size: 50 }
          primary_key: id
      output: { mode: merge }
    `;
    const plan = compilePlan(loadOk(project, text, {}, "people"));
    const shown = formatPlan(redactPlan(plan, loadOk(project, text, {}, "people").redactor));
    expect(shown).toContain("Pipeline people — Users and their repos");
    expect(shown).toContain("GET https://x.test/v1/users");
    expect(shown).toContain("page `page` from 1, `per_page`=50");
    expect(shown).toContain("rate limit  60/min");
    expect(shown).toContain("jsonl out/people/users.jsonl (merge by id)");
  });
});

describe("project config and .env", () => {
  it("merges cosmiconfig defaults under the pipeline and applies the dirs", async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFiles(dir, {
        "pipelines.config.yaml": yaml`
          outDir: data
          schemasDir: json-schemas
          defaults:
            source:
              timeout: 5s
              headers: { Accept: application/json, User-Agent: pipelines-test }
            output: { format: csv }
            validation: { drift: fail }
        `,
        "json-schemas/thing.schema.json": JSON.stringify({ type: "object" }),
        "pipelines/things.yaml": yaml`
          source:
            base_url: https://x.test
            headers: { accept: text/plain }
          streams:
            things: { path: /things, schema: thing.schema.json }
        `,
        "pipelines/slow.yaml": yaml`
          source:
            base_url: https://x.test
            timeout: 2m
          streams:
            things: { path: /things }
          output: { format: jsonl }
        `,
      });
      // Found from a subfolder too: the config's folder is the project root.
      const sub = path.join(dir, "pipelines");
      const project = await loadProject(sub);
      expect(project.root).toBe(dir);
      expect(project.configFile).toBe(path.join(dir, "pipelines.config.yaml"));
      expect(project.outDir).toBe(path.join(dir, "data"));
      expect(project.schemasDir).toBe(path.join(dir, "json-schemas"));
      expect(project.pipelinesDir).toBe(path.join(dir, "pipelines"));
      expect(project.stateDir).toBe(path.join(dir, ".pipelines", "state"));

      const things = compilePlan(loadPipeline(project, "things", {}));
      expect(things.source.timeoutMs).toBe(5000);
      // Defaults' `Accept` and the file's `accept` are one header; the file wins.
      expect(things.source.headers).toEqual({ "User-Agent": "pipelines-test", accept: "text/plain" });
      expect(things.streams[0].request.headers).toEqual({
        "User-Agent": "pipelines-test",
        accept: "text/plain",
      });
      expect(things.streams[0].output).toEqual({
        format: "csv",
        mode: "replace",
        path: path.join(dir, "data", "things", "things.csv"),
        guard: { allowEmpty: false, maxVolumeDrop: 0.9 },
        csv: { escapeFormulas: false },
      });
      expect(things.streams[0].schema?.file).toBe(path.join(dir, "json-schemas", "thing.schema.json"));
      expect(things.validation.drift).toBe("fail");
      expect(things.dirs.out).toBe(path.join(dir, "data"));

      // The pipeline's own values win over the defaults.
      const slow = compilePlan(loadPipeline(project, "slow", {}));
      expect(slow.source.timeoutMs).toBe(120_000);
      expect(slow.streams[0].output.path).toBe(path.join(dir, "data", "slow", "things.jsonl"));
    } finally {
      cleanup();
    }
  });

  it("reports a bad default in the project config file", async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFiles(dir, {
        "pipelines.config.json": JSON.stringify({ defaults: { source: { timeout: "soon" } } }),
        "pipelines/p.yaml": "source:\n  base_url: https://x.test\nstreams:\n  a: { path: /a }\n",
      });
      const project = await loadProject(dir);
      const err = configErrorOf(() => loadPipeline(project, "p", {}));
      const [issue] = err.issues;
      expect(issue).toMatchObject({
        code: "bad_duration",
        path: "source.timeout",
        // Relative to where the command runs, like pipeline files.
        file: "pipelines.config.json",
      });
      expect(issue.hint).toContain("project config");
    } finally {
      cleanup();
    }
  });

  it("checks env variables in project defaults (a missing one is an error, not an empty value)", async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFiles(dir, {
        "pipelines.config.yaml":
          'defaults:\n  source:\n    headers: { Authorization: "Bearer ${env.DEFAULT_TOKEN}" }\n',
        "pipelines/p.yaml": "source:\n  base_url: https://x.test\nstreams:\n  a: { path: /a }\n",
      });
      const project = await loadProject(dir);
      const err = configErrorOf(() => loadPipeline(project, "p", {}));
      expect(err.issues).toMatchObject([
        {
          code: "missing_env",
          file: "pipelines.config.yaml",
          path: "defaults.source.headers.Authorization",
        },
      ]);
      expect(err.message).toContain("`DEFAULT_TOKEN`");
      const loaded = loadPipeline(project, "p", { DEFAULT_TOKEN: "from-defaults-123" });
      expect(loaded.envUsed).toEqual(["DEFAULT_TOKEN"]);
      expect(compilePlan(loaded).source.headers).toEqual({ Authorization: "Bearer from-defaults-123" });
      expect(JSON.stringify(redactPlan(compilePlan(loaded), loaded.redactor))).not.toContain(
        "from-defaults-123",
      );
    } finally {
      cleanup();
    }
  });

  it("project defaults: env values are secrets, output.path may use ${stream} and ${pipeline}", () => {
    const { dir, cleanup } = tempDir();
    try {
      const project = makeProject(dir, path.join(dir, "pipelines.config.yaml"), {
        defaults: {
          source: { params: { api_key: "${env.DEFAULT_KEY}" } },
          output: { format: "csv", path: "exports/${pipeline}/${stream}.csv" },
        },
      });
      const text =
        "source:\n  base_url: https://x.test\nstreams:\n  users: { path: /u }\n  teams: { path: /t }\n";
      const loaded = loadOk(project, text, { DEFAULT_KEY: "defaults-secret-999" }, "crm");
      const plan = compilePlan(loaded);
      expect(plan.source.params).toEqual({ api_key: "defaults-secret-999" });
      expect(plan.streams.map((s) => s.output.path)).toEqual([
        path.join(dir, "exports", "crm", "users.csv"),
        path.join(dir, "exports", "crm", "teams.csv"),
      ]);
      const shown = JSON.stringify(redactPlan(plan, loaded.redactor));
      expect(shown).not.toContain("defaults-secret-999");
      expect(shown).toContain('"api_key":"***"');
      // `${stream}` elsewhere in the defaults is an error in the config file.
      const bad = makeProject(
        dir,
        path.join(dir, "pipelines.config.yaml"),
        { defaults: { source: { headers: { "X-Stream": "${stream}" } } } },
        dir,
      );
      expect(issuesOf(bad, text)).toMatchObject([
        {
          code: "bad_template",
          file: "pipelines.config.yaml",
          path: "defaults.source.headers.X-Stream",
        },
      ]);
    } finally {
      cleanup();
    }
  });

  it("rejects unknown project settings", async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFiles(dir, { "pipelines.config.json": JSON.stringify({ outdir: "x" }) });
      await expect(loadProject(dir)).rejects.toThrow(ConfigError);
    } finally {
      cleanup();
    }
  });

  it("without a config, the working directory is the project root", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const project = await loadProject(dir);
      expect(project).toMatchObject({ root: dir, configFile: null, outDir: path.join(dir, "out") });
    } finally {
      cleanup();
    }
  });

  it("reads .env in the project root; the real environment wins", () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFiles(dir, {
        ".env": yaml`
          # comment
          FROM_FILE=file-value
          export QUOTED="two words"
          SINGLE='it''s'
          BOTH=from-file
          WITH_COMMENT=value # trailing
        `,
        "pipelines/p.yaml": yaml`
          source:
            base_url: https://x.test
            headers: { X-A: "\${env.FROM_FILE}", X-B: "\${env.BOTH}", X-C: "\${env.QUOTED}", X-D: "\${env.WITH_COMMENT}" }
          streams:
            a: { path: /a }
        `,
      });
      const project = makeProject(dir, null, {});
      const env = readEnv(project, { BOTH: "from-env" });
      expect(env).toMatchObject({
        FROM_FILE: "file-value",
        QUOTED: "two words",
        BOTH: "from-env",
        WITH_COMMENT: "value",
      });
      const plan = compilePlan(loadPipeline(project, "p", env));
      expect(plan.source.headers).toEqual({
        "X-A": "file-value",
        "X-B": "from-env",
        "X-C": "two words",
        "X-D": "value",
      });
      // Without .env values, the same file names what is missing.
      expect(() => loadPipeline(project, "p", { BOTH: "x" })).toThrow(/FROM_FILE/);
    } finally {
      cleanup();
    }
  });
});

describe("loading by name", () => {
  it("reads .yml too, and names the nearest pipeline when one is not found", () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFiles(dir, {
        "pipelines/github.yml": "source:\n  base_url: https://x.test\nstreams:\n  a: { path: /a }\n",
        "pipelines/stripe.yaml": "source:\n  base_url: https://x.test\nstreams:\n  a: { path: /a }\n",
        "pipelines/stripe.yml": "this is ignored: [",
        "pipelines/notes.txt": "not a pipeline",
      });
      const project = makeProject(dir, null, {}, dir);
      expect(listPipelineNames(project)).toEqual(["github", "stripe"]);
      expect(loadPipeline(project, "github", {}).file).toBe(path.join("pipelines", "github.yml"));
      expect(loadPipeline(project, "stripe", {}).file).toBe(path.join("pipelines", "stripe.yaml"));
      expect(() => loadPipeline(project, "githb", {})).toThrow(
        /no pipeline `githb` \(did you mean `github`\?\)/,
      );
    } finally {
      cleanup();
    }
  });

  it("shows file names relative to the project's working directory", () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFiles(dir, {
        "pipelines/bad.yaml":
          "source:\n  base_url: https://x.test\n  timeout: fast\nstreams:\n  a: { path: /a }\n",
      });
      const project = makeProject(dir, null, {}, dir);
      expect(() => loadPipeline(project, "bad", {})).toThrow(`${path.join("pipelines", "bad.yaml")}:3:12`);
    } finally {
      cleanup();
    }
  });

  it("a copied example project validates from its own folder", () => {
    const { dir, cleanup } = tempDir();
    try {
      cpSync(EXAMPLE, dir, { recursive: true });
      const project = makeProject(dir, null, {}, dir);
      expect(
        issuesOf(project, readFileSync(path.join(dir, "pipelines/github.yaml"), "utf8"), {
          GITHUB_TOKEN: "x",
        }),
      ).toEqual([]);
    } finally {
      cleanup();
    }
  });
});
