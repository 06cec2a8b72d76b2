import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../cli/helpers.js";
import { closeServer, listenLocal, listFiles, readJsonl, sourceBlock } from "../run/helpers.js";

/**
 * Attack class: paths and files read from the state folder (and other files read from disk).
 *
 * Everything read from `.pipelines/` is input, like an API's bytes: its shape is checked, and a
 * value read from a file never names a path outside the folder it belongs to. Names that become
 * path components (pipeline and stream names) never traverse. Files read at load are bounded.
 * Every test here failed on the code before the fix (the hardening issue) unless it says it
 * guards a rule that already held.
 */
const ITEMS = [{ id: 1 }, { id: 2 }];
let server: Server;
let url: string;
const sent: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    sent.push(req.url ?? "");
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data: ITEMS }));
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

/** The project sits one level down in its own temp folder, so "outside" is still ours to check. */
let parent: string;
let root: string;
const file = (rel: string) => path.join(root, rel);
const put = (rel: string, text = "x") => {
  mkdirSync(path.dirname(file(rel)), { recursive: true });
  writeFileSync(file(rel), text);
};
const age = (rel: string, ms: number) => {
  const then = new Date(Date.now() - ms);
  utimesSync(file(rel), then, then);
};
const FIVE_MINUTES = 5 * 60_000;

beforeEach(() => {
  parent = mkdtempSync(path.join(tmpdir(), "pipelines-sec-"));
  root = path.join(parent, "project");
  mkdirSync(path.join(root, "pipelines"), { recursive: true });
  sent.length = 0;
});
afterEach(() => rmSync(parent, { recursive: true, force: true }));

const pipeline = (name = "sp", streams = "  s: { path: /s, records: $.data }", extra = "") =>
  put(`pipelines/${name}.yaml`, `${sourceBlock(url)}\nstreams:\n${streams}\n${extra}`);

const incremental = () =>
  pipeline(
    "sp",
    '  s: { path: /s, records: $.data, incremental: { cursor_field: id, param: since, initial: "0" } }',
  );

const cli = (...argv: string[]) => runCli(argv, root);

function mkfifo(rel: string): void {
  mkdirSync(path.dirname(file(rel)), { recursive: true });
  const r = spawnSync("mkfifo", [file(rel)]);
  if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr}`);
}

describe("the lock file is input", () => {
  it("a stale lock whose run_id climbs out of the project removes nothing outside it", async () => {
    pipeline();
    put("../victim/keep.txt", "precious");
    put(
      ".pipelines/state/sp.lock",
      JSON.stringify({ pid: 1, host: "other", run_id: "../../../../../victim", started_at: "x" }),
    );
    age(".pipelines/state/sp.lock", FIVE_MINUTES);
    const r = await cli("run", "sp");
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(path.join(parent, "victim/keep.txt"), "utf8")).toBe("precious");
    expect(r.stderr).not.toContain("removed what an interrupted run left");
    expect(readJsonl(file("out/sp/s.jsonl"))).toEqual(ITEMS);
    expect(existsSync(file(".pipelines/state/sp.lock"))).toBe(false);
  });

  it("an old lock of any other shape is stale: taken over, never used to build a path", async () => {
    pipeline();
    put("out/sp/keep.txt");
    const shapes = [
      "[]",
      '"x"',
      "null",
      "{}",
      '{"pid":"1","host":"h","run_id":"20260101T000000Z-aaaaaa","started_at":"x"}',
      '{"pid":1,"host":"h","run_id":5,"started_at":"x"}',
      '{"pid":1,"host":"h","run_id":".","started_at":"x"}',
      '{"pid":1,"host":"h","run_id":"20260101T000000Z-aaaaaa/../..","started_at":"x"}',
      '{"pid":1,"host":"h\\u001b[2J","run_id":"20260101T000000Z-aaaaaa","started_at":"x"}',
      '{"pid":-1,"host":"h","run_id":"20260101T000000Z-aaaaaa","started_at":"x"}',
    ];
    for (const shape of shapes) {
      put(".pipelines/state/sp.lock", shape);
      age(".pipelines/state/sp.lock", FIVE_MINUTES);
      const r = await cli("run", "sp");
      expect(r.code, `${shape}: ${r.stderr}`).toBe(0);
      expect(r.stderr, shape).not.toContain("internal error");
      expect(r.stderr, shape).not.toContain("removed what an interrupted run left");
      expect(existsSync(file(".pipelines/state/sp.lock")), shape).toBe(false);
    }
    expect(existsSync(file("out/sp/keep.txt"))).toBe(true);
  });

  it("a lock that is not a regular file (a folder, a FIFO) is a clear error, nothing sent, no hang", async () => {
    pipeline();
    mkdirSync(file(".pipelines/state/sp.lock/inside"), { recursive: true });
    age(".pipelines/state/sp.lock", FIVE_MINUTES);
    let r = await cli("run", "sp");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `error: ${path.join(".pipelines", "state", "sp.lock")} is not a lock file (a folder)`,
    );
    expect(r.stderr).not.toContain("internal error");
    expect(existsSync(file(".pipelines/state/sp.lock/inside"))).toBe(true);

    rmSync(file(".pipelines/state/sp.lock"), { recursive: true });
    mkfifo(".pipelines/state/sp.lock");
    age(".pipelines/state/sp.lock", FIVE_MINUTES);
    r = await cli("run", "sp");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("sp.lock is not a lock file (not a regular file)");
    expect(sent).toEqual([]);
  });

  it("a takeover marker that is a folder is a clear error, not an internal one", async () => {
    pipeline();
    put(".pipelines/state/sp.lock", "{}");
    age(".pipelines/state/sp.lock", FIVE_MINUTES);
    mkdirSync(file(".pipelines/state/sp.lock.takeover"));
    age(".pipelines/state/sp.lock.takeover", FIVE_MINUTES);
    const r = await cli("run", "sp");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("sp.lock.takeover is not a lock file (a folder)");
    expect(r.stderr).not.toContain("internal error");
    expect(sent).toEqual([]);
  });
});

describe("the state file is input", () => {
  const STATE = path.join(".pipelines", "state", "sp.json");

  async function refused(text: string, says: string) {
    put(".pipelines/state/sp.json", text);
    const r = await cli("run", "sp");
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`error: state file ${STATE} `);
    expect(r.stderr).toContain(says);
    expect(r.stderr).not.toContain("internal error");
    expect(r.stderr).not.toContain("    at ");
    // Not discarded: a reset cursor would be a silent full reload.
    expect(readFileSync(file(".pipelines/state/sp.json"), "utf8")).toBe(text);
    expect(sent).toEqual([]);
    expect(existsSync(file(".pipelines/state/sp.lock"))).toBe(false);
  }

  it("a state file that is not JSON: exit 2 naming it, nothing sent, the file kept", async () => {
    incremental();
    await refused('{"version":1,"streams":{"s":{"cursor":', "is not valid JSON");
  });

  it("a state file of the wrong shape: exit 2 naming the file and the key, never sent as a cursor", async () => {
    incremental();
    await refused(
      '{"version":1,"streams":{"s":{"cursor":{"$gt":""},"updated_at":"x"}}}',
      "`streams.s.cursor`: expected a string or a number",
    );
    await refused("[]", "expected a map");
    await refused('{"version":1,"streams":[]}', "`streams`: expected a map");
    await refused('{"version":1,"auth":{"refresh_token":5}}', "`auth.refresh_token`: expected a string");
    await refused('{"version":7}', "`version`: expected 1");
  });

  it("a state file that is a FIFO or a symlink out of the folder is refused, without a hang", async () => {
    incremental();
    mkfifo(".pipelines/state/sp.json");
    let r = await cli("run", "sp");
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`error: state file ${STATE} is not a regular file`);
    rmSync(file(".pipelines/state/sp.json"));

    writeFileSync(path.join(parent, "elsewhere.json"), '{"version":1,"streams":{"s":{"cursor":"9"}}}');
    symlinkSync(path.join(parent, "elsewhere.json"), file(".pipelines/state/sp.json"));
    r = await cli("run", "sp");
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`error: state file ${STATE} is a symbolic link`);
    expect(sent).toEqual([]);
  });

  it("a valid state file still works (guard: the checks accept what we write)", async () => {
    incremental();
    expect((await cli("run", "sp")).code).toBe(0);
    const saved = JSON.parse(readFileSync(file(".pipelines/state/sp.json"), "utf8"));
    expect(saved.streams.s.cursor).toBe(2);
    sent.length = 0;
    expect((await cli("run", "sp")).code).toBe(0);
    expect(sent).toEqual(["/s?since=2"]);
  });
});

describe("names that become path components never traverse", () => {
  it("stream names `.` and `..` are config errors (exit 2, positioned), nothing written", async () => {
    for (const name of [".", ".."]) {
      pipeline("sp", `  ok: { path: /s, records: $.data }\n  "${name}": { path: /s, records: $.data }`);
      const r = await cli("validate", "sp");
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(
        `sp.yaml:7:3: error[bad_value] \`streams["${name}"]\`: \`${name}\` is not a stream name: a stream name is part of file names (\`<stream>.jsonl\`), so it cannot be \`.\` or \`..\``,
      );
      const run = await cli("run", "sp");
      expect(run.code).toBe(2);
    }
    expect(sent).toEqual([]);
    expect(listFiles(parent).filter((f) => !f.startsWith(path.join("project", "pipelines")))).toEqual([]);
  });

  it("a stream name next to a dot in a path template cannot make `..` (`out/.{stream}/x.jsonl`)", async () => {
    pipeline("sp", '  ".": { path: /s, records: $.data }', `output: { path: "out/.\${stream}/x.jsonl" }\n`);
    const r = await cli("run", "sp");
    expect(r.code).toBe(2);
    expect(existsSync(file("x.jsonl"))).toBe(false);
    expect(sent).toEqual([]);
  });

  it("guard: a path written literally in the pipeline file may point outside the project", async () => {
    pipeline("sp", undefined, `output: { path: "../shared/\${pipeline}-\${stream}.jsonl" }\n`);
    const r = await cli("run", "sp");
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(path.join(parent, "shared/sp-s.jsonl"))).toEqual(ITEMS);
  });

  it("guard: pipeline names from the command line are file names (run, report, init, infer)", async () => {
    for (const argv of [
      ["run", ".."],
      ["report", "../x"],
      ["init", "../x"],
      ["infer", "a/b"],
    ]) {
      const r = await cli(...argv);
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.stderr).toContain("is not a file name");
    }
  });
});

describe("files read at load are bounded", () => {
  it("a pipeline file over 1 MiB (300,000 keys) is a clear config error, not minutes of parsing", async () => {
    const keys = Array.from({ length: 300_000 }, (_, i) => `  k${i}: 1`).join("\n");
    put("pipelines/big.yaml", `${sourceBlock(url)}\nstreams:\n  s: { path: /s }\nx:\n${keys}\n`);
    for (const cmd of ["validate", "run", "plan"]) {
      const r = await cli(cmd, "big");
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(
        `${path.join("pipelines", "big.yaml")}:1:1: error[file_too_large] the file is`,
      );
      expect(r.stderr).toContain("a pipeline file may be at most 1 MiB");
    }
    // `list` reads it without parsing it.
    const list = await cli("list");
    expect(list.stdout).toContain("big  (does not parse");
    expect(sent).toEqual([]);
  });

  it("a large map under the limit parses in linear time (duplicate keys found without comparing every pair)", async () => {
    // Just under 1 MiB: 110,000 keys in one map, the last one a duplicate of the first. yaml's
    // own `uniqueKeys` compares every pair (about a minute at this size, past the test timeout);
    // ours is one pass (about a second).
    const keys = Array.from({ length: 110_000 }, (_, i) => `  k${i.toString(36)}:`).join("\n");
    put("pipelines/wide.yaml", `${sourceBlock(url)}\nstreams:\n  s: { path: /s }\nx:\n${keys}\n  k0: 2\n`);
    expect(readFileSync(file("pipelines/wide.yaml")).length).toBeLessThan(1024 * 1024);
    const r = await cli("validate", "wide");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "wide.yaml:110008:3: error[duplicate_key] `x.k0`: duplicate key `k0`: it is already set at line 8",
    );
  });

  it("a project config, a record schema or a .env over the limit is a clear config error", async () => {
    pipeline("sp", "  s: { path: /s, records: $.data, schema: s.json }");
    put("schemas/s.json", `{"type":"object","description":"${"x".repeat(5 * 1024 * 1024)}"}`);
    let r = await cli("validate", "sp");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("schema file `s.json` is");
    expect(r.stderr).toContain("a record schema may be at most 4 MiB");

    put("schemas/s.json", '{"type":"object"}');
    put(".env", `A=${"x".repeat(2 * 1024 * 1024)}\n`);
    r = await cli("validate", "sp");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(".env:1:1: error[file_too_large]");

    rmSync(file(".env"));
    put("pipelines.config.yaml", `outDir: out\n# ${"x".repeat(2 * 1024 * 1024)}\n`);
    r = await cli("validate", "sp");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("pipelines.config.yaml:1:1: error[project_config]");
    expect(r.stderr).toContain("a project config may be at most 1 MiB");
  });
});

describe("other files read back from disk", () => {
  it("`report` with a latest.json that is not a report (or a FIFO): a clear error, no stack, no hang", async () => {
    const LATEST = path.join("reports", "sp", "latest.json");
    put("reports/sp/latest.json", '{"pipeline":"sp","streams":');
    let r = await cli("report", "sp");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: report file ${LATEST} is not a run report this version can read`);
    expect(r.stderr).not.toContain("internal error");
    put("reports/sp/latest.json", "{}");
    r = await cli("report", "sp");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: report file ${LATEST} is not a run report this version can read`);
    rmSync(file("reports/sp/latest.json"));
    mkfifo("reports/sp/latest.json");
    r = await cli("report", "sp");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: report file ${LATEST} is not a regular file`);
  });
});

describe("report paths come from names, not from masked text", () => {
  it("a secret equal to the pipeline name does not move the report to `reports/***/`", async () => {
    put(
      "pipelines/acme.yaml",
      `${sourceBlock(url, `auth: { type: bearer, token: "\${env.TOKEN}" }`)}\nstreams:\n  s: { path: /s, records: $.data }\n`,
    );
    const r = await runCli(["run", "acme"], root, { TOKEN: "acme" });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(file("reports/acme/latest.json"))).toBe(true);
    expect(existsSync(file("reports/***"))).toBe(false);
    expect((await runCli(["report", "acme"], root, { TOKEN: "acme" })).code).toBe(0);
  });
});
