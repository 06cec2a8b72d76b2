// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${…}` template syntax
/**
 * Issue 19, "the analyst's first hour": each describe block is one point of the issue, each test
 * failed on the code before the change it covers.
 */
import { cpSync, existsSync, readFileSync } from "node:fs";
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

describe("2. one schema path: infer writes what the pipeline names", () => {
  const pokemon = (base: string, schema = "    schema: pokemon.schema.json\n") =>
    `# my pokemon\nsource: { base_url: "${base}" }\nstreams:\n  pokemon:\n    path: /items   # the list\n    records: $.data\n${schema}`;
  const data = () => ({
    data: [
      { id: 1, name: "bulbasaur" },
      { id: 2, name: "ivysaur" },
    ],
  });

  it("a missing schema file's error says to run `pipelines infer <name>`", async () => {
    writeFiles(dir, { "pipelines/pokemon.yaml": pokemon("https://api.example.test") });
    const r = await runCli(["validate", "pokemon"], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("schema file `pokemon.schema.json` not found");
    expect(r.stderr).toContain("`pipelines infer pokemon`");
  });

  it("infer writes the file the `schema:` line names, though it does not exist yet", async () => {
    const server = await api({ "/items": data });
    try {
      writeFiles(dir, { "pipelines/pokemon.yaml": pokemon(server.url) });
      const r = await runCli(["infer", "pokemon"], dir);
      expect(r.stderr).toContain(`→ ${path.join("schemas", "pokemon.schema.json")}`);
      expect(r.stderr).toContain("inferred from 2 records (1 page)");
      expect(r.code).toBe(0);
      expect((await runCli(["validate", "pokemon"], dir)).code).toBe(0);
    } finally {
      await server.close();
    }
  });

  it("without a `schema:` line, infer writes <pipeline>.<stream>.schema.json and adds the line (comments kept)", async () => {
    const server = await api({ "/items": data });
    try {
      writeFiles(dir, { "pipelines/pokemon.yaml": pokemon(server.url, "") });
      const r = await runCli(["infer", "pokemon"], dir);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("added `schema: pokemon.pokemon.schema.json` to stream pokemon");
      const text = readFileSync(path.join(dir, "pipelines/pokemon.yaml"), "utf8");
      expect(text).toContain("# my pokemon");
      expect(text).toContain("path: /items # the list");
      expect(text).toMatch(/\n {4}schema: pokemon\.pokemon\.schema\.json\n/);
      expect(existsSync(path.join(dir, "schemas/pokemon.pokemon.schema.json"))).toBe(true);
      expect((await runCli(["validate", "pokemon"], dir)).code).toBe(0);
      // A second infer finds the file the line names, and refuses to overwrite it.
      const again = await runCli(["infer", "pokemon"], dir);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain(`${path.join("schemas", "pokemon.pokemon.schema.json")} already exists`);
    } finally {
      await server.close();
    }
  });

  it("init's commented `schema:` line names the file infer writes", async () => {
    const r = await runCli(["init", "people"], dir);
    expect(r.code).toBe(0);
    const text = readFileSync(path.join(dir, "pipelines/people.yaml"), "utf8");
    const stream = /^streams:\n {2}([a-z_]+):/m.exec(text)?.[1];
    expect(text).toContain(`# schema: people.${stream}.schema.json`);
  });
});

describe("3. init with credentials, more pagination shapes, the stream's name", () => {
  it("--bearer-env and --header send credentials with the probe; the file reads them from the env, holding no secret", async () => {
    const server = await api({
      "/api/v2/tickets.json": (r) =>
        r.headers.authorization === "Bearer tok-SECRET-1" && r.headers["x-api-key"] === "key-SECRET-2"
          ? { tickets: [{ id: 1 }, { id: 2 }] }
          : 401,
    });
    try {
      const env = { ZD_TOKEN: "tok-SECRET-1" };
      const r = await runCli(
        [
          "init",
          "zendesk",
          "--from-url",
          `${server.url}/api/v2/tickets.json`,
          "--bearer-env",
          "ZD_TOKEN",
          "--header",
          "X-Api-Key: key-SECRET-2",
          "--header",
          "Accept: application/json",
        ],
        dir,
        env,
      );
      expect(r.stderr).toContain("2 records at `$.tickets`");
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("set X_API_KEY");
      const text = readFileSync(path.join(dir, "pipelines/zendesk.yaml"), "utf8");
      expect(text).not.toContain("SECRET");
      expect(text).toContain('auth: { type: bearer, token: "${env.ZD_TOKEN}" }');
      expect(text).toContain('headers: { "X-Api-Key": "${env.X_API_KEY}", "Accept": "application/json" }');
      // Named after the last path segment, not the pipeline.
      expect(text).toMatch(/^streams:\n {2}tickets:\n/m);
      const v = await runCli(["validate", "zendesk"], dir, { ...env, X_API_KEY: "key-SECRET-2" });
      expect(v.stderr).toBe("");
      const run = await runCli(["run", "zendesk"], dir, { ...env, X_API_KEY: "key-SECRET-2" });
      expect(run.code).toBe(0);
    } finally {
      await server.close();
    }
  });

  it("an unset --bearer-env variable is a usage error and nothing is sent", async () => {
    const server = await api({ "/items": () => ({ data: [] }) });
    try {
      const r = await runCli(["init", "x", "--from-url", `${server.url}/items`, "--bearer-env", "NOPE"], dir);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("`NOPE` is not set");
      expect(server.seen).toHaveLength(0);
    } finally {
      await server.close();
    }
  });

  const shapes: [string, unknown, Record<string, unknown>][] = [
    [
      "after_url + end_of_stream",
      { tickets: [{ id: 1 }], after_url: "https://x.test/t?cursor=abc", end_of_stream: false },
      { type: "next_url", next: "$.after_url", done: "$.end_of_stream" },
    ],
    [
      "after_cursor",
      { tickets: [{ id: 1 }], after_cursor: "abc", end_of_stream: false },
      { type: "cursor", cursor: "$.after_cursor", param: "cursor", done: "$.end_of_stream" },
    ],
    [
      "paging.next.after",
      { results: [{ id: 1 }], paging: { next: { after: "27", link: "x" } } },
      { type: "cursor", cursor: "$.paging.next.after", param: "after" },
    ],
    [
      "@odata.nextLink",
      { value: [{ id: 1 }], "@odata.nextLink": "https://x.test/t?$skiptoken=9" },
      { type: "next_url", next: "$['@odata.nextLink']" },
    ],
    [
      "nextPageToken",
      { files: [{ id: 1 }], nextPageToken: "tok9" },
      { type: "cursor", cursor: "$.nextPageToken", param: "pageToken" },
    ],
    [
      "links.next",
      { data: [{ id: 1 }], links: { next: "https://x.test/t?page[number]=2" } },
      { type: "next_url", next: "$.links.next" },
    ],
  ];
  it.each(shapes)("recognises %s", async (_label, body, paginate) => {
    const server = await api({ "/things": () => body });
    try {
      const r = await runCli(["init", "x", "--from-url", `${server.url}/things`], dir);
      expect(r.code).toBe(0);
      const { parse } = await import("yaml");
      const doc = parse(readFileSync(path.join(dir, "pipelines/x.yaml"), "utf8"));
      expect(doc.streams.things.paginate).toEqual(paginate);
    } finally {
      await server.close();
    }
  });

  it("a cursor sent back again: the loop error names the parameter it was sent as", async () => {
    // The API reads `after`, the pipeline sends `cursor`: the API answers the first page again.
    const server = await api({ "/things": () => ({ data: [{ id: 1 }], next_cursor: "c1" }) });
    try {
      writeFiles(dir, {
        "pipelines/x.yaml": yaml`
          source: { base_url: "${server.url}" }
          streams:
            things: { path: /things, records: $.data, paginate: { type: cursor, cursor: $.next_cursor, param: cursor } }
        `,
      });
      const r = await runCli(["run", "x"], dir);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("pagination loop");
      expect(r.stderr).toContain("sent as query parameter `cursor`");
    } finally {
      await server.close();
    }
  });
});

describe("4. plan with unset env vars; an empty one where a value is needed", () => {
  const file = yaml`
    source:
      base_url: "\${env.API_URL}/v2"
      auth: { type: bearer, token: "\${env.API_TOKEN}" }
    streams:
      items: { path: /items, records: $.data, params: { team: "\${env.TEAM}", q: fixed } }
  `;

  it("plan runs with variables unset, showing them as <unset>", async () => {
    writeFiles(dir, { "pipelines/p.yaml": file });
    const r = await runCli(["plan", "p"], dir);
    expect(r.stderr).toContain("not set or empty: API_TOKEN, API_URL, TEAM (shown as <unset>)");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("source      <unset>/v2");
    expect(r.stdout).toContain("GET <unset>/v2/items?team=<unset>&q=fixed");
    // The values that are set are still masked where secret.
    const set = await runCli(["plan", "p"], dir, { API_TOKEN: "tok-123456", TEAM: "team-secret-9" });
    expect(set.stdout).not.toContain("tok-123456");
    expect(set.stdout).not.toContain("team-secret-9");
    expect(set.stderr).toContain("not set or empty: API_URL");
    // run still refuses, naming them all.
    const run = await runCli(["run", "p"], dir);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("environment variable `API_TOKEN` is not set");
  });

  it("a token or URL variable set to the empty string is an error, as a missing one is", async () => {
    writeFiles(dir, { "pipelines/p.yaml": file });
    const r = await runCli(["validate", "p"], dir, { API_URL: "https://x.test", API_TOKEN: "", TEAM: "" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "environment variable `API_TOKEN` is set to the empty string; `source.auth.token` needs a value",
    );
    // An empty query parameter is a value.
    expect(r.stderr).not.toContain("`TEAM`");
    const url = await runCli(["validate", "p"], dir, { API_URL: "", API_TOKEN: "t", TEAM: "" });
    expect(url.code).toBe(2);
    expect(url.stderr).toContain("`API_URL` is set to the empty string; `source.base_url` needs a value");
  });
});

describe("5. YAML mistakes: one line that says what to do, at the line to fix", () => {
  const cases: [string, string, string, string][] = [
    [
      "one extra space of indent",
      "source:\n  base_url: https://x.test\nstreams:\n  items:\n    path: /items\n     records: $.data\n    paginate: { type: none }\n",
      path.join("pipelines", "p.yaml") + ":6:6",
      "the indent of line 6 is off by one: 5 spaces where the lines around it use 4",
    ],
    [
      "one space too few",
      "source:\n  base_url: https://x.test\nstreams:\n  items:\n    path: /items\n   records: $.data\n",
      "pipelines/p.yaml:6:4",
      "the indent of line 6 is off by one: 3 spaces where the lines around it use 4",
    ],
    [
      "an unquoted template inside { }",
      "source:\n  base_url: https://x.test\n  auth: { type: bearer, token: ${env.TOKEN} }\nstreams:\n  items: { path: /items }\n",
      "pipelines/p.yaml:3:32",
      'quote the template on line 3: write "${env.TOKEN}"',
    ],
    [
      "a tab indent",
      "source:\n\tbase_url: https://x.test\nstreams:\n  items: { path: /items }\n",
      "pipelines/p.yaml:2:1",
      "line 2 is indented with a tab: YAML indents with spaces only",
    ],
  ];
  it.each(cases)("%s", async (_label, text, at, hint) => {
    writeFiles(dir, { "pipelines/p.yaml": text });
    const r = await runCli(["validate", "p"], dir, { TOKEN: "t" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${at}: error[yaml_syntax]`);
    expect(r.stderr).toContain(hint);
    expect(r.stderr).toContain("1 of 1 pipeline invalid (1 error)");
  });
});

describe("6. small things that cost trust", () => {
  it("the summary fits 80 columns: a long stop reason goes below the table, not wrapped mid-word", async () => {
    const server = await api({ "/items": () => ({ data: [{ id: 1 }], total: 1 }) });
    try {
      writeFiles(dir, {
        "pipelines/p.yaml": ITEMS(server.url, ", paginate: { type: offset, limit: 100, total: $.total }"),
      });
      const r = await runCli(["run", "p"], dir);
      expect(r.code).toBe(0);
      const summary = r.stderr.slice(r.stderr.indexOf("p: ok"));
      for (const line of summary.split("\n").filter((l) => !l.includes("report:")))
        expect(line.length, line).toBeLessThanOrEqual(80);
      expect(summary).toContain("items: stopped because all 1 record of $.total");
      // "1 record", not "1 records", in the progress line too.
      expect(r.stderr).not.toMatch(/\b1 records\b/);
    } finally {
      await server.close();
    }
  });

  it("Ctrl-C: the headline says interrupted and what was committed, the report's exit code is 130", async () => {
    const { run } = await import("../../src/cli/main.js");
    const controller = new AbortController();
    const server = await api({
      "/fast": () => ({ data: [{ id: 1 }] }),
      // The slow stream's first page is where the user presses Ctrl-C.
      "/slow": () => {
        controller.abort(new Error("interrupted by SIGINT"));
        return { data: [{ id: 2 }], next: "/slow?page=2" };
      },
    });
    try {
      writeFiles(dir, {
        "pipelines/p.yaml": yaml`
          source: { base_url: "${server.url}" }
          streams:
            fast: { path: /fast, records: $.data }
            slow:
              parent: fast
              path: /slow
              params: { id: "\${parent.id}" }
              records: $.data
              paginate: { type: next_url, next: $.next }
        `,
      });
      let stderr = "";
      const code = await run(["run", "p"], {
        stdout: { write: () => true },
        stderr: {
          write: (s: string) => {
            stderr += s;
            return true;
          },
        },
        cwd: dir,
        env: {},
        signal: controller.signal,
      });
      expect(code).toBe(1);
      expect(stderr).toContain(
        "p: INTERRUPTED (1 of 2 streams committed; the others keep their previous output)",
      );
      expect(stderr).not.toContain("p: FAILED");
      const report = JSON.parse(readFileSync(path.join(dir, "reports/p/latest.json"), "utf8"));
      expect(report.exit_code).toBe(130);
    } finally {
      await server.close();
    }
  });

  it("the demo's paths are relative to where it was started, and its closing hint works as printed", async () => {
    const { DEMO_DIR } = await import("../../src/cli/cmd-demo.js");
    for (const sub of ["pipelines", "schemas"])
      cpSync(path.join(DEMO_DIR, sub), path.join(dir, "demo", sub), { recursive: true });
    const r = await runCli(["demo", "--dir", "demo"], dir);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`wrote ${path.join("demo", "out")}`);
    const hint = /try {7}pipelines (plan shop --project \S+)/.exec(r.stderr)?.[1];
    expect(hint).toBeDefined();
    const plan = await runCli(hint!.split(" "), dir);
    expect(plan.stderr).toContain("not set or empty: DEMO_API, DEMO_TOKEN");
    expect(plan.code).toBe(0);
  }, 60_000);
});
