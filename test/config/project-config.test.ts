/**
 * Errors in the project config (pipelines.config.yaml, .json, package.json `pipelines`) name the
 * place of the key as pipeline files do: `file:line:column`, the source line, and "did you mean"
 * for an unknown key. A JavaScript config has no places in a file: line 1, column 1.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../cli/helpers.js";
import { tempDir, writeFiles, yaml } from "./helpers.js";

const PIPELINE = yaml`
  source:
    base_url: https://api.example.com
  streams:
    items: { path: /items }
`;

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir("pipelines-project-"));
});
afterEach(() => cleanup());

async function validate(files: Record<string, string>) {
  writeFiles(dir, { "pipelines/p.yaml": PIPELINE, ...files });
  const r = await runCli(["validate"], dir, {});
  expect(r.code, r.stdout).toBe(2);
  return r.stderr;
}

describe("project config errors have positions", () => {
  it("a default's bad value: the line and column of the value in pipelines.config.yaml", async () => {
    const err = await validate({
      "pipelines.config.yaml": yaml`
        # project settings
        outDir: out
        defaults:
          source:
            retry: { max_attempts: 3 }
            timeout: soon
      `,
    });
    expect(err).toContain("pipelines.config.yaml:6:14: error[");
    expect(err).toContain("   6 |     timeout: soon");
    expect(err).toContain("this value comes from the project config's `defaults`");
  });

  it("an unknown setting: its key's place, and did you mean", async () => {
    const err = await validate({ "pipelines.config.yaml": "outDir: out\n  \nreportDir: reports\n" });
    expect(err).toMatch(/^pipelines\.config\.yaml:3:1: error\[project_config\]/);
    expect(err).toContain("pipelines.config.yaml:3:1: error[project_config]");
    expect(err).toContain("unknown setting `reportDir` (did you mean `reportsDir`?)");
    expect(err).toContain("   3 | reportDir: reports");
  });

  it("an unknown defaults section and a bad directory, in JSON", async () => {
    const err = await validate({
      "pipelines.config.json": '{\n  "stateDir": 7,\n  "defaults": {\n    "sourc": {}\n  }\n}\n',
    });
    expect(err).toContain(
      "pipelines.config.json:2:15: error[project_config] `stateDir`: expected a directory path, found 7",
    );
    expect(err).toContain(
      "pipelines.config.json:4:5: error[project_config] `defaults.sourc`: unknown section `sourc`",
    );
    expect(err).toContain("did you mean `source`?");
  });

  it("package.json: the place under `pipelines`", async () => {
    const err = await validate({
      "package.json": '{\n  "name": "x",\n  "pipelines": {\n    "outdir": "o"\n  }\n}\n',
    });
    expect(err).toMatch(/^package\.json:4:5/);
    expect(err).toContain("package.json:4:5: error[project_config] `outdir`: unknown setting `outdir`");
    expect(err).toContain("did you mean `outDir`?");
  });

  it("a template in a default: its place in the project config", async () => {
    const err = await validate({
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the template is the point
      "pipelines.config.yaml": 'defaults:\n  source:\n    headers:\n      X-Key: "${env.NOPE}"\n',
    });
    expect(err).toMatch(/pipelines\.config\.yaml:4:\d+: error\[/);
    expect(err).toContain("NOPE");
  });

  it("a JavaScript config: line 1, column 1 (its values have no place in a file)", async () => {
    const err = await validate({ "pipelines.config.mjs": "export default { reportDir: 'r' };\n" });
    expect(err).toMatch(/^pipelines\.config\.mjs:1:1/);
    expect(err).toContain("pipelines.config.mjs:1:1: error[project_config]");
    expect(err).toContain("did you mean `reportsDir`?");
  });
});
