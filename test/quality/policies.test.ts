import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type QualityServer, qualityDataset } from "../server/quality-dataset.js";
import {
  cli,
  cursorStream,
  latestReport,
  type Project,
  pipelineYaml,
  qualityFixture,
  readJsonl,
  streamReport,
  TRUTH,
} from "./helpers.js";

let server: QualityServer;
let p: Project;
qualityFixture((s, project) => {
  server = s;
  p = project;
});

const OUT = "out/shop/items.jsonl";
const QUARANTINE = "out/shop/items.invalid.jsonl";

/** Writes pipelines/shop.yaml (cursor stream over the quality dataset) and runs it. */
async function runShop(validation: string, params = "") {
  p.write("pipelines/shop.yaml", pipelineYaml({ url: server.url, stream: cursorStream(params), validation }));
  const r = await cli(p.dir, ["run", "shop"]);
  const report = latestReport(p, "shop");
  return { ...r, report, stream: streamReport(report, "items") };
}

describe("invalid_records", () => {
  it("keep writes the invalid records too, reports them, and quarantines nothing", async () => {
    const r = await runShop("{ invalid_records: keep, max_invalid_ratio: 0.5 }");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream.records).toEqual({
      seen: 60,
      valid: 39,
      invalid: 21,
      written: 60,
      duplicates: 0,
      filtered: 0,
    });
    expect(r.stream.invalid_policy).toBe("keep");
    expect(r.stream.errors.map((g) => [g.field, g.count])).toEqual([
      ["/price", 6],
      ["/category", 5],
      ["/name", 4],
      ["/status", 4],
      ["/updated_at", 3],
      ["/variants/*/sku", 2],
    ]);
    expect(readJsonl(p.file(OUT))).toEqual(qualityDataset());
    expect(r.stream.quarantine).toBeNull();
    expect(p.exists(QUARANTINE)).toBe(false);
  });

  it("fail stops the stream at the first invalid record: exit 3, nothing committed", async () => {
    // A previous good output must survive the failed run byte for byte.
    const first = await runShop("{ max_invalid_ratio: 0.5 }");
    expect(first.code, first.stderr).toBe(0);
    const before = readFileSync(p.file(OUT));

    const r = await runShop("{ invalid_records: fail, max_invalid_ratio: 0.5 }", "variant: v2");
    // Only a data-quality failure: the format's exit code for data quality.
    expect(r.code, r.stderr).toBe(3);
    expect(r.report.status).toBe("quality_failed");
    expect(r.report.exit_code).toBe(3);
    expect(r.stream.status).toBe("failed");
    expect(r.stream.error?.kind).toBe("validation");
    // Record 3 (bad updated_at) is the first invalid one; nothing after it was read.
    expect(r.stream.error?.message).toContain("record 3 is invalid");
    expect(r.stream.error?.message).toContain("/updated_at");
    expect(r.stream.records.seen).toBe(3);
    expect(r.stream.records.invalid).toBe(1);
    expect(r.stream.output.committed).toBe(false);
    expect(readFileSync(p.file(OUT)).equals(before)).toBe(true);
    expect(r.stderr).toContain("record 3 is invalid");
  });

  it("fail on a stream without invalid records commits normally", async () => {
    const r = await runShop("{ invalid_records: fail }", "clean: 1");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream.records).toEqual({
      seen: 60,
      valid: 60,
      invalid: 0,
      written: 60,
      duplicates: 0,
      filtered: 0,
    });
    expect(readJsonl(p.file(OUT))).toEqual(qualityDataset(60, { clean: true }));
  });
});

describe("max_invalid_ratio (the real ratio is 21/60 = 0.35)", () => {
  it("at or below the threshold commits; just below the ratio rejects and leaves the previous output byte-identical", async () => {
    const atRatio = await runShop("{ max_invalid_ratio: 0.35 }");
    expect(atRatio.code, atRatio.stderr).toBe(0); // "above this share" fails: equal passes
    expect(atRatio.stream.status).toBe("ok");
    expect(atRatio.stream.output.committed).toBe(true);
    const before = readFileSync(p.file(OUT));
    expect(readJsonl(p.file(OUT))).toHaveLength(39);

    // Same validity, different names: committing would change the file.
    const rejected = await runShop("{ max_invalid_ratio: 0.34 }", "variant: v2");
    expect(rejected.code, rejected.stderr).toBe(3);
    expect(rejected.report.status).toBe("quality_failed");
    expect(rejected.report.exit_code).toBe(3);
    expect(rejected.stream.status).toBe("rejected");
    expect(rejected.stream.output.committed).toBe(false);
    expect(rejected.stream.error?.kind).toBe("validation");
    expect(rejected.stream.error?.message).toContain(
      "21 of 60 records invalid (35.0%), above max_invalid_ratio 34.0%",
    );
    expect(rejected.stream.records).toEqual({
      seen: 60,
      valid: 39,
      invalid: 21,
      written: 39,
      duplicates: 0,
      filtered: 0,
    });
    expect(readFileSync(p.file(OUT)).equals(before)).toBe(true);
    expect(rejected.stderr).toContain("DATA QUALITY CHECK FAILED");
    // The new records are kept beside the output under a name that says so, linked from the report.
    const kept = `out/shop/items.rejected-${rejected.report.run_id}.jsonl`;
    expect(rejected.stream.rejected_output).toBe(kept);
    expect(rejected.stream.error?.message).toContain(`kept in ${p.file(kept)}`);
    const keptRecords = readJsonl(p.file(kept));
    expect(keptRecords).toHaveLength(39);
    expect(keptRecords).not.toEqual(readJsonl(p.file(OUT)));
    expect(p.read(`reports/shop/${rejected.report.run_id}.html`)).toContain(
      `items.rejected-${rejected.report.run_id}.jsonl`,
    );
    // The quarantine describes the rejected run: the analyst sees why.
    expect(readJsonl(p.file(QUARANTINE)).map((l) => l.record_id)).toEqual(TRUTH.invalid.map(String));

    const above = await runShop("{ max_invalid_ratio: 0.36 }", "variant: v2");
    expect(above.code, above.stderr).toBe(0);
    expect(above.stream.output.committed).toBe(true);
    const written = readJsonl(p.file(OUT));
    expect(written).toHaveLength(39);
    expect(written[0].name).toBe("item-1-v2");
  });

  it("the default threshold (0.05) rejects the dataset", async () => {
    const r = await runShop("{ drift: ignore }");
    expect(r.code, r.stderr).toBe(3);
    expect(r.stream.max_invalid_ratio).toBe(0.05);
    expect(r.stream.status).toBe("rejected");
    expect(p.exists(OUT)).toBe(false);
  });
});

describe("drift", () => {
  it("drift: fail rejects (exit 3) and does not commit", async () => {
    const first = await runShop("{ max_invalid_ratio: 0.5 }");
    expect(first.code, first.stderr).toBe(0);
    const before = readFileSync(p.file(OUT));

    const r = await runShop("{ max_invalid_ratio: 0.5, drift: fail }", "variant: v2");
    expect(r.code, r.stderr).toBe(3);
    expect(r.report.status).toBe("quality_failed");
    expect(r.stream.status).toBe("rejected");
    expect(r.stream.output.committed).toBe(false);
    expect(r.stream.error?.kind).toBe("drift");
    expect(r.stream.error?.message).toContain("new fields legacy_code");
    expect(r.stream.error?.message).toContain("type changes in price, category");
    expect(r.stream.drift?.policy).toBe("fail");
    expect(r.stream.drift?.breached).toBe(true);
    expect(readFileSync(p.file(OUT)).equals(before)).toBe(true);
  });

  it("drift: fail passes clean data (a schema field never seen and always-null fields are not a breach)", async () => {
    const r = await runShop("{ drift: fail }", "clean: 1");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream.drift).toEqual({
      policy: "fail",
      breached: false,
      new_fields: [],
      missing_fields: ["discontinued_at"],
      type_changes: [],
      always_null: ["notes", "extra_null"],
    });
    expect(r.stream.output.committed).toBe(true);
  });

  it("drift: ignore is never a breach and is not shown in the run summary", async () => {
    const r = await runShop("{ max_invalid_ratio: 0.5, drift: ignore }");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream.drift?.policy).toBe("ignore");
    expect(r.stream.drift?.breached).toBe(false);
    expect(r.stream.status).toBe("ok");
    expect(r.stderr).not.toContain("schema drift");
    // Nor in `pipelines report` (the JSON report keeps it for whoever wants it).
    const report = await cli(p.dir, ["report", "shop"]);
    expect(report.code).toBe(0);
    expect(report.stdout).toContain("items: ok");
    expect(report.stdout).not.toContain("drift:");
  });

  it("drift: warn (the default) commits and names the drift in the run summary", async () => {
    const r = await runShop("{ max_invalid_ratio: 0.5 }");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stream.drift?.policy).toBe("warn");
    expect(r.stream.drift?.breached).toBe(false);
    expect(r.stderr).toContain(
      "items: schema drift: new fields: legacy_code (2); type changes: price (number×54 string×6), category (string×55 null×5)",
    );
  });
});

describe("the quarantine file describes the latest run", () => {
  it("a stream with no invalid records removes a stale quarantine file", async () => {
    const dirty = await runShop("{ max_invalid_ratio: 0.5 }");
    expect(dirty.code, dirty.stderr).toBe(0);
    expect(readJsonl(p.file(QUARANTINE))).toHaveLength(21);

    const clean = await runShop("{ max_invalid_ratio: 0.5 }", "clean: 1");
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stream.records.invalid).toBe(0);
    expect(clean.stream.quarantine).toBeNull();
    expect(p.exists(QUARANTINE)).toBe(false);
  });

  it("a second dirty run replaces the quarantine instead of appending to it", async () => {
    await runShop("{ max_invalid_ratio: 0.5 }");
    const r = await runShop("{ max_invalid_ratio: 0.5 }", "n: 20");
    expect(r.code, r.stderr).toBe(0);
    expect(readJsonl(p.file(QUARANTINE)).map((l) => l.record_id)).toEqual([
      "3",
      "5",
      "7",
      "9",
      "10",
      "17",
      "20",
    ]);
  });

  // The quarantine describes the latest run only: switching to `keep` removes the old one.
  it("keep: a stale quarantine from an earlier skip run is removed", async () => {
    await runShop("{ max_invalid_ratio: 0.5 }");
    expect(p.exists(QUARANTINE)).toBe(true);
    const r = await runShop("{ invalid_records: keep, max_invalid_ratio: 0.5 }", "clean: 1");
    expect(r.code).toBe(0);
    expect(p.exists(QUARANTINE)).toBe(false);
  });
});
