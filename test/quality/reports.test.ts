// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${env.…}` templates
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type QualityServer, startQualityServer } from "../server/quality-dataset.js";
import {
  cli,
  cursorStream,
  latestReport,
  type Project,
  pipelineYaml,
  type QuarantineLine,
  qualityFixture,
  readJsonl,
  streamReport,
} from "./helpers.js";

let server: QualityServer;
let p: Project;
qualityFixture((s, project) => {
  server = s;
  p = project;
});
beforeEach(() => {
  p.write(
    "pipelines/shop.yaml",
    pipelineYaml({ url: server.url, stream: cursorStream(), validation: "{ max_invalid_ratio: 0.5 }" }),
  );
});

const reportFiles = () => readdirSync(p.file("reports/shop")).sort();

describe("run reports", () => {
  it("every run writes <run-id>.json/.html and latest.*; a second run moves latest", async () => {
    const first = await cli(p.dir, ["run", "shop"]);
    expect(first.code, first.stderr).toBe(0);
    const id1 = latestReport(p, "shop").run_id;
    expect(id1).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    expect(reportFiles()).toEqual([`${id1}.html`, `${id1}.json`, "latest.html", "latest.json"].sort());
    expect(p.read(`reports/shop/${id1}.json`)).toBe(p.read("reports/shop/latest.json"));
    expect(p.read(`reports/shop/${id1}.html`)).toBe(p.read("reports/shop/latest.html"));
    // The stderr summary points at this run's HTML report.
    expect(first.stderr).toContain(`report: reports/shop/${id1}.html`);
    const html = p.read("reports/shop/latest.html");
    expect(html).toMatch(/^<!doctype html>/i);
    expect(html).toContain("legacy_code");
    const json1 = p.read(`reports/shop/${id1}.json`);

    const second = await cli(p.dir, ["run", "shop"]);
    expect(second.code, second.stderr).toBe(0);
    const id2 = latestReport(p, "shop").run_id;
    expect(id2).not.toBe(id1);
    expect(reportFiles()).toEqual(
      [`${id1}.html`, `${id1}.json`, `${id2}.html`, `${id2}.json`, "latest.html", "latest.json"].sort(),
    );
    expect(p.read("reports/shop/latest.json")).toBe(p.read(`reports/shop/${id2}.json`));
    expect(p.read("reports/shop/latest.html")).toBe(p.read(`reports/shop/${id2}.html`));
    expect(p.read("reports/shop/latest.html")).toContain(id2);
    expect(p.read(`reports/shop/${id1}.json`)).toBe(json1);
    expect(second.stderr).toContain(`report: reports/shop/${id2}.html`);
  });

  it("a rejected run writes its report too, with the rejection", async () => {
    p.write(
      "pipelines/shop.yaml",
      pipelineYaml({ url: server.url, stream: cursorStream(), validation: "{ max_invalid_ratio: 0.1 }" }),
    );
    const r = await cli(p.dir, ["run", "shop"]);
    expect(r.code).toBe(3);
    const report = latestReport(p, "shop");
    expect(r.stderr).toContain(`report: reports/shop/${report.run_id}.html`);
    expect(report.exit_code).toBe(3);
    expect(streamReport(report, "items").status).toBe("rejected");
    expect(p.read("reports/shop/latest.html")).toContain("rejected");
  });
});

describe("pipelines report", () => {
  it("prints a summary with the stream's headline numbers", async () => {
    const run = await cli(p.dir, ["run", "shop"]);
    expect(run.code, run.stderr).toBe(0);
    const id = latestReport(p, "shop").run_id;
    const r = await cli(p.dir, ["report", "shop"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`shop · run ${id}`);
    expect(r.stdout).toContain(
      "items: ok · 60 seen, 39 valid, 21 invalid (35.0% of max 50.0%), 39 written · 9 pages, 9 requests",
    );
    expect(r.stdout).toContain("invalid: /price type ×6 (expected number)");
    expect(r.stdout).toContain("invalid: /name required ×4 (expected present)");
    expect(r.stdout).toContain("drift: new field legacy_code in 2 records (first 25)");
    expect(r.stdout).toContain("drift: price expected number, found number×54 string×6");
    expect(r.stdout).toContain("drift: schema fields never seen: discontinued_at");
    expect(r.stdout).toContain("drift: always null: notes, extra_null");
    expect(r.stdout).toContain("html: reports/shop/latest.html");
  });

  it("--json prints the latest report, equal to latest.json", async () => {
    await cli(p.dir, ["run", "shop"]);
    const r = await cli(p.dir, ["report", "shop", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(printed).toEqual(JSON.parse(p.read("reports/shop/latest.json")));
    expect(printed.streams[0].records.invalid).toBe(21);
  });

  it("--open prints the path of the latest HTML report", async () => {
    await cli(p.dir, ["run", "shop"]);
    const r = await cli(p.dir, ["report", "shop", "--open"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(p.file("reports/shop/latest.html"));
    expect(readFileSync(r.stdout.trim(), "utf8")).toBe(p.read("reports/shop/latest.html"));
  });

  it("an unknown pipeline, or one never run, is a usage error (exit 2)", async () => {
    const unknown = await cli(p.dir, ["report", "nope"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("no report for `nope`");
    expect(unknown.stdout).toBe("");
    const neverRun = await cli(p.dir, ["report", "shop", "--json"]);
    expect(neverRun.code).toBe(2);
    expect(neverRun.stdout).toBe("");
    const traversal = await cli(p.dir, ["report", "../shop"]);
    expect(traversal.code).toBe(2);
  });
});

describe("secrets never reach a report or the quarantine", () => {
  const TOKEN = "sk_live_QualitySecret42";
  let leaky: QualityServer;
  beforeAll(async () => {
    // The API requires the token and also returns it as data in records 1, 7 (an enum violation)
    // and 25 (a new field).
    leaky = await startQualityServer({ bearer: TOKEN, leak: TOKEN });
  });
  afterAll(async () => {
    await leaky.close();
  });

  it("masks the bearer token in the report JSON and HTML, the quarantine, and the CLI output", async () => {
    p.write(
      "pipelines/shop.yaml",
      pipelineYaml({
        url: leaky.url,
        source: ['auth: { type: bearer, token: "${env.API_TOKEN}" }'],
        stream: cursorStream(),
        validation: "{ max_invalid_ratio: 0.5 }",
      }),
    );
    const r = await cli(p.dir, ["run", "shop"], { API_TOKEN: TOKEN });
    expect(r.code, r.stderr).toBe(0);
    const s = streamReport(latestReport(p, "shop"), "items");
    // The token did authenticate, and the leaking records did arrive.
    expect(s.records).toEqual({ seen: 60, valid: 39, invalid: 21, written: 39, duplicates: 0, filtered: 0 });
    expect(s.errors.find((g) => g.field === "/status")?.examples[0]).toEqual({
      record_id: "7",
      value: "***",
    });
    expect(s.drift?.new_fields[0].examples).toEqual(["***", "L50"]);
    const quarantine = readJsonl<QuarantineLine>(p.file("out/shop/items.invalid.jsonl"));
    expect(quarantine.find((l) => l.record_id === "7")?.record.status).toBe("***");
    expect(quarantine.find((l) => l.record_id === "25")?.record.legacy_code).toBe("***");

    const texts = {
      json: p.read("reports/shop/latest.json"),
      html: p.read("reports/shop/latest.html"),
      quarantine: p.read("out/shop/items.invalid.jsonl"),
      stderr: r.stderr,
      reportCmd: (await cli(p.dir, ["report", "shop"])).stdout,
      reportJson: (await cli(p.dir, ["report", "shop", "--json"])).stdout,
    };
    for (const [where, text] of Object.entries(texts)) {
      expect(text.includes(TOKEN), `${where} leaks the token`).toBe(false);
    }
    for (const f of reportFiles()) expect(p.read(`reports/shop/${f}`)).not.toContain(TOKEN);
  });
});
