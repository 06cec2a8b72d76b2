// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about `${…}` template syntax
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { makeProject } from "../../../src/config/project.js";
import { checkTemplates, type TemplateSite } from "../../../src/config/rules/templates.js";
import { issuesOf, tempDir } from "../helpers.js";

const check = (sites: TemplateSite[], streams: unknown = {}, env: Record<string, string> = {}) =>
  checkTemplates(sites, streams, env, "/p/.env");
const findings = (sites: TemplateSite[], streams?: unknown) =>
  check(sites, streams).findings.map((f) => [f.code, f.site, f.offset]);

describe("rules/templates", () => {
  it("reports syntax errors and unknown or misplaced namespaces, at the template's offset", () => {
    expect(
      findings([
        { path: ["source", "base_url"], value: "https://x/${env.A" },
        { path: ["source", "headers", "X"], value: "a ${foo.b}" },
        { path: ["source", "headers", "Y"], value: "${stream}" },
        { path: ["source", "headers", "Z"], value: "${env.A.B}" },
      ]),
    ).toEqual([
      ["bad_template", 0, 10],
      ["unknown_namespace", 1, 2],
      ["bad_template", 2, 0],
      ["bad_template", 3, 0],
    ]);
  });

  it("allows `${parent.…}` in a child stream's request and `${stream}`/`${pipeline}` in output.path", () => {
    const streams = { c: { path: "/c", parent: "p" }, p: { path: "/p" } };
    expect(
      findings(
        [
          { path: ["streams", "c", "path"], value: "/c/${parent.id}" },
          { path: ["streams", "p", "path"], value: "/p/${parent.id}" },
          { path: ["output", "path"], value: "out/${pipeline}/${stream}.jsonl" },
          { path: ["output", "path"], value: "out/${stream.name}.jsonl" },
        ],
        streams,
      ),
    ).toEqual([
      ["bad_template", 1, 3],
      ["bad_template", 3, 4],
    ]);
  });

  it("names every missing env variable at each use, and marks those values broken", () => {
    const result = check(
      [
        { path: ["source", "headers", "A"], value: "${env.TOKEN}" },
        { path: ["source", "params", "k"], value: "${env.KEY}-${env.TOKEN}" },
        { path: ["source", "base_url"], value: "${env.BASE}" },
      ],
      {},
      { BASE: "https://x.test" },
    );
    expect(result.findings.map((f) => [f.code, f.site, f.message])).toEqual([
      ["missing_env", 0, "environment variable `TOKEN` is not set"],
      ["missing_env", 1, "environment variable `TOKEN` is not set"],
      ["missing_env", 1, "environment variable `KEY` is not set"],
    ]);
    expect(result.findings[0].hint).toBe(
      "missing variables: TOKEN, KEY (set them in the environment or in /p/.env)",
    );
    expect([...result.envUsed].sort()).toEqual(["BASE", "KEY", "TOKEN"]);
    expect([...result.broken].sort()).toEqual(["source.headers.A", "source.params.k"]);
  });

  describe("the project config's defaults get the same checks and messages as the file", () => {
    const { dir, cleanup } = tempDir();
    afterAll(cleanup);
    const file = (header: string) =>
      `source:\n  base_url: https://x.test\n  headers: { X: "${header}" }\nstreams:\n  a: { path: /a }\n`;
    const inDefaults = (header: string) =>
      issuesOf(
        makeProject(
          dir,
          path.join(dir, "pipelines.config.yaml"),
          { defaults: { source: { headers: { X: header } } } },
          dir,
        ),
        "source:\n  base_url: https://x.test\nstreams:\n  a: { path: /a }\n",
      );
    for (const header of ["${foo}", "${env.A.B}", "${parent.id}", "${env.MISSING}", "${env"]) {
      it(header, () => {
        const [fromFile] = issuesOf(makeProject(dir, null, {}, dir), file(header));
        const [fromDefaults] = inDefaults(header);
        expect(fromDefaults).toMatchObject({
          code: fromFile.code,
          message: fromFile.message,
          file: "pipelines.config.yaml",
          path: "defaults.source.headers.X",
        });
        expect(fromDefaults.hint).toBe(fromFile.hint);
      });
    }
  });
});
