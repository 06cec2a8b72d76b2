// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipelines use `${parent.…}` templates
import { describe, expect, it } from "vitest";
import { runCli } from "../cli/helpers.js";
import { sourceBlock, useLocalServer, useTempProject } from "./helpers.js";

/**
 * `infer` and `run --preview` sample a stream as a run would fetch it. A `values` stream sends no
 * request: its records are its list (format 1.1), for itself and as the parents of a child stream.
 */
const urls: string[] = [];
const api = useLocalServer((req, res) => {
  urls.push(req.url ?? "");
  res.writeHead(200, { "content-type": "application/json" });
  if (req.url === "/repos/acme/widgets/issues") return res.end('[{"number":7,"title":"bug"}]');
  res.end('[{"unexpected":true}]');
});
const project = useTempProject("pipelines-sample-values-");

const PIPELINE = () => `${sourceBlock(api.url)}
streams:
  repos:
    values: [{ owner: acme, repo: widgets }]
  issues:
    parent: repos
    path: /repos/\${parent.owner}/\${parent.repo}/issues
`;

describe("sampling a values stream", () => {
  it("infer of the values stream reads its list, sending nothing", async () => {
    project.pipeline("v", PIPELINE());
    urls.length = 0;
    const r = await runCli(["infer", "v", "-s", "repos"], project.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(urls).toEqual([]);
    expect(r.stdout).toContain("owner");
  });

  it("infer of its child asks for the listed parents' partitions", async () => {
    project.pipeline("v", PIPELINE());
    urls.length = 0;
    const r = await runCli(["infer", "v", "-s", "issues"], project.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(urls).toEqual(["/repos/acme/widgets/issues"]);
    expect(r.stdout).toContain("title");
  });
});
