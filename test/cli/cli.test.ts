// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${…}` template syntax
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ExecutionPlan } from "../../src/compile/plan.js";
import { ensureBuilt } from "../built.js";
import { tempDir, writeFiles, yaml } from "../config/helpers.js";
import { runCli } from "./helpers.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const VERSION = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")).version as string;
const TOKEN = "ghp_SuperSecret123";

const GITHUB = yaml`
  description: Issues of acme/widgets
  source:
    base_url: https://api.github.test/v3
    auth: { type: bearer, token: "\${env.GITHUB_TOKEN}" }
  streams:
    issues:
      path: /repos/acme/widgets/issues
      paginate: { type: link_header }
      schema: issue.schema.json
    comments:
      parent: issues
      path: /repos/acme/widgets/issues/\${parent.number}/comments
`;

const PETS = yaml`
  description: Pets from the pet store
  source:
    base_url: https://pets.test
  streams:
    pets: { path: /pets }
`;

const BAD = yaml`
  source:
    base_url: https://x.test
    timeout: fast
  streams:
    a:
      path: /a
      pagnate: { type: none }
`;

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir("pipelines-cli-"));
  writeFiles(dir, {
    "pipelines/github.yaml": GITHUB,
    "pipelines/pets.yml": PETS,
    "schemas/issue.schema.json": JSON.stringify({
      type: "object",
      properties: { number: { type: "integer" } },
    }),
  });
});
afterEach(() => cleanup());

const ENV = { GITHUB_TOKEN: TOKEN };

/** The lines of `text` that start with `prefix` (a `file:line:column` must start its line). */
function linesStarting(text: string, prefix: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(prefix));
}

describe("pipelines list", () => {
  it("lists names, descriptions and streams", async () => {
    const r = await runCli(["list"], dir, ENV);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        "github  Issues of acme/widgets",
        "        streams: issues, comments",
        "pets    Pets from the pet store",
        "        streams: pets",
        "",
      ].join("\n"),
    );
  });

  it("lists a file that does not parse, without failing", async () => {
    writeFiles(dir, { "pipelines/broken.yaml": "source: [unclosed\n" });
    const r = await runCli(["list"], dir, {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("broken  (does not parse: run `pipelines validate broken`)");
    expect(r.stdout).toContain("github  Issues of acme/widgets");
  });

  it("says so when there are no pipelines", async () => {
    const { dir: empty, cleanup: done } = tempDir();
    try {
      const r = await runCli(["list"], empty, {});
      expect(r.code).toBe(0);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain("no pipelines in pipelines");
    } finally {
      done();
    }
  });
});

describe("pipelines validate", () => {
  it("validates every pipeline: exit 0", async () => {
    const r = await runCli(["validate"], dir, ENV);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("ok   github (2 streams: issues, comments)\nok   pets (1 stream: pets)\n");
  });

  it("validates the named pipelines only", async () => {
    writeFiles(dir, { "pipelines/bad.yaml": BAD });
    const r = await runCli(["validate", "pets"], dir, {});
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("ok   pets (1 stream: pets)\n");
  });

  it("exits 2 with file:line:column on stderr when a file is invalid", async () => {
    writeFiles(dir, { "pipelines/bad.yaml": BAD });
    const r = await runCli(["validate"], dir, ENV);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain("FAIL bad\n");
    expect(r.stdout).toContain("ok   github");
    const file = path.join("pipelines", "bad.yaml");
    expect(r.stderr).toContain(
      `${file}:3:12: error[bad_duration] \`source.timeout\`: expected a duration like \`30s\``,
    );
    expect(r.stderr).toContain(
      `${file}:7:5: error[unknown_key] \`streams.a.pagnate\`: unknown key \`pagnate\``,
    );
    expect(r.stderr).toContain("hint: did you mean `paginate`?");
    // The caret excerpt.
    expect(r.stderr).toContain("   3 |   timeout: fast\n     |            ^");
    expect(r.stderr).toContain("1 of 3 pipelines invalid (2 errors); nothing was sent.");
  });

  it("exits 2 naming the missing env variable", async () => {
    const r = await runCli(["validate", "github"], dir, {});
    expect(r.code).toBe(2);
    expect(
      linesStarting(r.stderr, `${path.join("pipelines", "github.yaml")}:4:33: error[missing_env]`),
    ).toHaveLength(1);
    expect(r.stderr).toContain("GITHUB_TOKEN");
  });

  it("reads .env in the project root; the real environment wins", async () => {
    writeFiles(dir, { ".env": "GITHUB_TOKEN=from-dotenv\n" });
    expect((await runCli(["validate", "github"], dir, {})).code).toBe(0);
    const plan = JSON.parse((await runCli(["plan", "github", "--json"], dir, {})).stdout) as ExecutionPlan;
    expect(plan.auth).toMatchObject({ type: "bearer", token: "***" });
  });

  it("refuses a pipeline name that is a path: exit 2, bad_name", async () => {
    for (const name of ["../x", "a/b", "..", "x y"]) {
      const r = await runCli(["validate", name], dir, ENV);
      expect(r.code, name).toBe(2);
      expect(r.stderr).toContain("error[bad_name]");
      expect(r.stderr).not.toContain("not_found");
    }
  });

  it("exits 2 for a pipeline that does not exist, naming the nearest", async () => {
    const r = await runCli(["validate", "githb"], dir, ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no pipeline `githb` (did you mean `github`?)");
  });

  it("exits 2 when the project has no pipelines", async () => {
    const { dir: empty, cleanup: done } = tempDir();
    try {
      const r = await runCli(["validate"], empty, {});
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("no pipeline files");
    } finally {
      done();
    }
  });

  it("finds the project config from a subfolder", async () => {
    writeFiles(dir, {
      "pipelines.config.yaml": "pipelinesDir: defs\n",
      "defs/only.yaml": PETS,
      "sub/deeper/.keep": "",
    });
    const r = await runCli(["validate"], path.join(dir, "sub", "deeper"), {});
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("ok   only (1 stream: pets)\n");
  });

  it("reports a project config that does not load: exit 2", async () => {
    writeFiles(dir, { "pipelines.config.json": "{ not json" });
    const r = await runCli(["validate"], dir, ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error[project_config]");
  });
});

describe("pipelines plan", () => {
  it("prints the plan with secrets masked", async () => {
    const r = await runCli(["plan", "github"], dir, ENV);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Pipeline github — Issues of acme/widgets");
    expect(r.stdout).toContain("auth        bearer (Authorization: Bearer ***)");
    expect(r.stdout).toContain("request     GET https://api.github.test/v3/repos/acme/widgets/issues");
    expect(r.stdout).toContain("Stream comments (once per record of issues)");
    expect(r.stdout).toContain("output      jsonl out/github/comments.jsonl (replace)");
    expect(r.stdout).not.toContain(TOKEN);
  });

  it("--json prints the plan as JSON", async () => {
    const r = await runCli(["plan", "github", "--json"], dir, ENV);
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout) as ExecutionPlan;
    expect(plan.pipeline).toBe("github");
    expect(plan.streams.map((s) => s.name)).toEqual(["issues", "comments"]);
    expect(plan.streams[1].request.url).toBe(
      "https://api.github.test/v3/repos/acme/widgets/issues/${parent.number}/comments",
    );
    expect(plan.streams[0].output.path).toBe(path.join(dir, "out", "github", "issues.jsonl"));
    expect(plan.auth).toEqual({ type: "bearer", token: "***", scheme: "Bearer" });
    expect(r.stdout).not.toContain(TOKEN);
  });

  it("exits 2 for an invalid pipeline, with file:line:column", async () => {
    writeFiles(dir, { "pipelines/bad.yaml": BAD });
    const r = await runCli(["plan", "bad"], dir, {});
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(
      linesStarting(r.stderr, `${path.join("pipelines", "bad.yaml")}:3:12: error[bad_duration]`),
    ).toHaveLength(1);
    expect(r.stderr).toContain("2 errors; nothing was sent.");
  });

  it("exits 2 without a name, or with a bad one", async () => {
    expect((await runCli(["plan"], dir, ENV)).code).toBe(2);
    const r = await runCli(["plan", "../etc/passwd"], dir, ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error[bad_name]");
  });
});

describe("help, version and usage errors", () => {
  it.each([[[]], [["list"]], [["validate"]], [["plan"]]])("%j --help and --version exit 0", async (cmd) => {
    const help = await runCli([...cmd, "--help"], dir, {});
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(`Usage: pipelines ${cmd.length ? `${cmd[0]} ` : ""}`);
    const version = await runCli([...cmd, "--version"], dir, {});
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(VERSION);
    const short = await runCli([...cmd, "-V"], dir, {});
    expect(short.stdout.trim()).toBe(VERSION);
  });

  it("the root help lists the commands and the exit codes", async () => {
    const r = await runCli(["--help"], dir, {});
    for (const c of ["list", "validate", "plan"]) expect(r.stdout).toMatch(new RegExp(`^\\s+${c}\\b`, "m"));
    expect(r.stdout).toContain("Exit codes: 0 success, 1 a run failed, 2 usage or config error");
  });

  it("help <command> exits 0", async () => {
    const r = await runCli(["help", "validate"], dir, {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: pipelines validate");
  });

  it("an unknown command exits 2 with a suggestion", async () => {
    const r = await runCli(["valdate"], dir, {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'valdate'");
    expect(r.stderr).toContain("validate");
  });

  it("an unknown option exits 2", async () => {
    const r = await runCli(["validate", "--frobnicate"], dir, {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--frobnicate'");
  });

  it("no command at all is a usage error: exit 2 with the help on stderr", async () => {
    const r = await runCli([], dir, {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Usage: pipelines");
  });
});

describe("the built CLI as a child process", () => {
  const bin = path.join(REPO, "dist", "cli", "bin.js");
  const exec = promisify(execFile);

  it("node dist/cli/bin.js validate: exit 0 when valid, 2 with file:line:column when not", async () => {
    await ensureBuilt();
    expect(existsSync(bin), "dist/cli/bin.js: run `npm run build`").toBe(true);
    const childEnv = { PATH: process.env.PATH ?? "", GITHUB_TOKEN: TOKEN };

    const ok = await exec(process.execPath, [bin, "validate"], { cwd: dir, env: childEnv });
    expect(ok.stdout).toBe("ok   github (2 streams: issues, comments)\nok   pets (1 stream: pets)\n");

    writeFiles(dir, { "pipelines/bad.yaml": BAD });
    const failed = await exec(process.execPath, [bin, "validate"], { cwd: dir, env: childEnv }).then(
      () => null,
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(failed, "validate of an invalid file should exit non-zero").not.toBeNull();
    expect(failed!.code).toBe(2);
    expect(
      linesStarting(failed!.stderr, `${path.join("pipelines", "bad.yaml")}:3:12: error[bad_duration]`),
    ).toHaveLength(1);

    const version = await exec(process.execPath, [bin, "--version"], { cwd: dir, env: childEnv });
    expect(version.stdout.trim()).toBe(VERSION);
  });
});
