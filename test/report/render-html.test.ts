import { describe, expect, it } from "vitest";
import { formatPercent } from "../../src/report/html-text.js";
import { overallStatus, renderReportHtml } from "../../src/report/render-html.js";
import type { FieldStats, RunReport } from "../../src/report/report-types.js";
import { formatDuration } from "../../src/shared/units.js";
import { emptyStream, sampleReport, XSS } from "./fixture.js";

const ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;";

describe("renderReportHtml", () => {
  const report = sampleReport();
  const html = renderReportHtml(report);

  it("references nothing on the network", () => {
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/<(img|iframe|object|embed|audio|video|source)\b/i);
    expect(html).not.toMatch(/\bsrc\s*=/i);
    expect(html).not.toMatch(/@import|url\(/i);
    // The only http(s) URL is the escaped one inside an error message from the API.
    const urls = html.match(/https?:\/\/[^\s"'<>&]+/g) ?? [];
    expect(new Set(urls)).toEqual(new Set(["https://api.example.com/v2/customers?page=4"]));
    expect(html).not.toMatch(/(href|action)\s*=\s*"https?:/i);
  });

  it("escapes every string from the report", () => {
    expect(html).not.toContain(XSS);
    // Exactly two script elements: the JSON data block and the sorting script.
    expect(html.match(/<script\b/gi)).toHaveLength(2);
    // Field name (fields table, drift table, chart), example value, error message, warning.
    expect(html).toContain(`<code>${ESCAPED}</code>`);
    expect(html).toContain(`data-field="${ESCAPED}"`);
    expect(html).toContain(`must have required property &#39;customer_id&#39; ${ESCAPED}`);
    expect(html).toContain(`{&quot;id&quot;:&quot;ord-3001&quot;,&quot;note&quot;:&quot;${ESCAPED}&quot;}`);
    expect(html).toContain(`<li>field ${ESCAPED} is not in the schema</li>`);
    expect(html).toContain(`{&quot;error&quot;:&quot;${ESCAPED}&quot;}`);
  });

  it("embeds the report as JSON that cannot close its script element", () => {
    const m = html.match(/<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/);
    expect(m).not.toBeNull();
    expect(m![1]).not.toContain("<");
    expect(m![1]).toContain("\\u003cscript>alert(1)\\u003c/script>");
    expect(JSON.parse(m![1])).toEqual(report);
  });

  it("names every stream and shows their numbers", () => {
    for (const s of report.streams) expect(html).toContain(`data-stream="${s.name}"`);
    for (const n of ["2,480", "2,437", "43", "1.7%", "12%", "5%"]) expect(html).toContain(n);
    expect(html).toContain("waited 12.3 s in 4 pauses");
    expect(html).toContain("7 (HTTP 503 ×4, connection reset ×1, rate limited ×2)");
    expect(html).toContain("string ×24, null ×3");
    expect(html).toContain("48.2 s");
    expect(html).toContain('<a href="out/shop/orders.quarantine.jsonl">');
    expect(html).toContain('<a href="out/rejected/shop/refunds.jsonl">');
  });

  it("says what happened in words", () => {
    expect(html).toContain("1 of 3 streams failed — nothing of it was written");
    expect(html).toContain("Data-quality check failed: refunds: 12% of records invalid (max 5%)");
    expect(html).toContain("Stopped: no next cursor ($.paging.next.after was missing)");
    expect(html).toContain("No drift against the schema.");
  });

  it("draws one error bar per error group and one presence row per field or never-seen field", () => {
    const orders = html.slice(html.indexOf('data-stream="orders"'), html.indexOf('data-stream="customers"'));
    expect(orders.match(/data-bar="error-group"/g)).toHaveLength(3);
    expect(orders.match(/data-presence-row=/g)).toHaveLength(8 + 1);
    expect(orders).toContain('data-presence-row="missing" data-field="/shipping_method"');
    expect(orders).toMatch(/<svg[^>]*role="img"[^>]*aria-label="Invalid records by reason/);
  });

  it("links files relative to the page when given a link base, never to a scheme", () => {
    const r: RunReport = {
      ...sampleReport(),
      streams: [{ ...emptyStream("x"), quarantine: "javascript:alert(1)" }],
    };
    const out = renderReportHtml(r, { linkBase: "../../" });
    expect(out).toContain('href="../../out/shop/x.jsonl"');
    expect(out).toContain('href="../.././javascript:alert(1)"');
    expect(out).not.toMatch(/href="javascript:/);
  });

  it("marks nothing as new without a schema, and lists a never-seen schema field once", () => {
    const fields: FieldStats[] = [
      { name: "id", in_schema: false, present: 2, nulls: 0, types: { integer: 2 } },
      { name: "note", in_schema: false, present: 2, nulls: 2, types: { null: 2 } },
    ];
    const seen = { seen: 2, valid: 2, invalid: 0, written: 2, duplicates: 0 };
    const plain = renderReportHtml({
      ...sampleReport(),
      streams: [{ ...emptyStream("plain"), records: seen, fields }],
    });
    expect(plain.match(/data-presence-row="field"/g)).toHaveLength(2);
    expect(plain).not.toContain("new field");
    expect(plain).not.toContain(">In schema<");
    expect(plain).toContain("always null");

    const withSchema = renderReportHtml({
      ...sampleReport(),
      streams: [
        {
          ...emptyStream("typed"),
          records: { ...seen, written: 0 },
          schema: { file: "schemas/t.json", draft: "draft-07" },
          drift: {
            policy: "warn",
            breached: false,
            new_fields: [],
            missing_fields: ["gone"],
            type_changes: [],
            always_null: [],
          },
          fields: [
            { ...fields[0], in_schema: true },
            { name: "gone", in_schema: true, present: 0, nulls: 0, types: {} },
          ],
        },
      ],
    });
    expect(withSchema.match(/data-presence-row="missing"/g)).toHaveLength(1);
    expect(withSchema).toContain('data-presence-row="missing" data-field="gone"');
  });

  it("does not call uncommitted records written in green", () => {
    const refunds = html.slice(html.indexOf('data-stream="refunds"'));
    expect(refunds).toContain('<div class="tile "><div class="v">0</div><div class="k">written</div>');
    const r = sampleReport();
    r.streams[2].records.written = 44;
    const out = renderReportHtml(r);
    expect(out).toContain('<div class="v">44</div><div class="k">written, not committed</div>');
  });

  it("has empty states in words", () => {
    const r: RunReport = {
      ...sampleReport(),
      status: "ok",
      exit_code: 0,
      streams: [
        { ...emptyStream("events"), records: { seen: 1, valid: 1, invalid: 0, written: 1, duplicates: 0 } },
        {
          ...emptyStream("users"),
          schema: { file: "schemas/user.schema.json", draft: "2020-12" },
          drift: {
            policy: "warn",
            breached: false,
            new_fields: [],
            missing_fields: [],
            type_changes: [],
            always_null: [],
          },
        },
        {
          ...emptyStream("archive"),
          status: "skipped",
          stop_reason: { code: "done", message: "not selected" },
        },
      ],
    };
    const out = renderReportHtml(r);
    expect(out).toContain("No schema: records were not validated.");
    expect(out).toContain("No invalid records.");
    expect(out).toContain("No drift against the schema.");
    expect(out).toContain("2 of 3 streams loaded, 1 skipped");
    expect(out).toContain('class="banner st-skipped"');
  });
});

describe("overallStatus", () => {
  it("words each outcome", () => {
    const r = sampleReport();
    const ok: RunReport = { ...r, status: "ok", streams: r.streams.map((s) => ({ ...s, status: "ok" })) };
    expect(overallStatus(ok).headline).toBe("All 3 streams loaded");
    const quality: RunReport = { ...r, status: "quality_failed", streams: [r.streams[0], r.streams[2]] };
    expect(overallStatus(quality).headline).toBe(
      "Data-quality check failed: refunds: 12% of records invalid (max 5%)",
    );
    const drift: RunReport = {
      ...r,
      status: "quality_failed",
      streams: [
        {
          ...r.streams[0],
          status: "rejected",
          invalid_ratio: 0,
          drift: { ...r.streams[0].drift!, breached: true },
        },
      ],
    };
    expect(overallStatus(drift).headline).toBe(
      "Data-quality check failed: orders: records drifted from the schema (drift policy: fail)",
    );
  });

  it("formats numbers for people", () => {
    expect(formatPercent(0.05)).toBe("5%");
    expect(formatPercent(43 / 2480)).toBe("1.7%");
    expect(formatPercent(0.00001)).toBe("<0.1%");
    expect(formatPercent(0)).toBe("0%");
    expect(formatDuration(850, "words")).toBe("850 ms");
    expect(formatDuration(12_340, "words")).toBe("12.3 s");
    expect(formatDuration(125_000, "words")).toBe("2 min 5 s");
  });
});

describe("renderReportHtml: windows and partitions (format 1.1)", () => {
  it("shows a windowed stream's windows done, committed, first, last and step", () => {
    const report: RunReport = {
      ...sampleReport(),
      streams: [
        {
          ...emptyStream("events"),
          units: {
            kind: "windows",
            total: 12,
            done: 7,
            committed: 7,
            incomplete: 1,
            checkpoints: true,
            windows: {
              first: "window 2024-01-01…2024-01-08",
              last: "window 2024-03-18…2024-03-20",
              step: "7d",
            },
          },
        },
      ],
    };
    const html = renderReportHtml(report);
    expect(html).toContain(
      "<dt>Windows</dt><dd>7 of 12 done, 7 committed (a checkpoint after each), 1 cut short, fetched again next run<br>",
    );
    expect(html).toContain("window 2024-01-01…2024-01-08 to window 2024-03-18…2024-03-20, step 7d");
  });

  it("names the preview file beside the target once", () => {
    const report: RunReport = {
      ...sampleReport(),
      streams: [{ ...emptyStream("x"), preview_output: "out/shop/x.preview.jsonl" }],
    };
    expect(renderReportHtml(report).match(/<dt>Kept beside<\/dt>/g)).toHaveLength(1);
  });
});

describe("renderReportHtml: streams named like an object's own properties", () => {
  it("renders streams `constructor`, `toString` and `hasOwnProperty` without previews of their own", () => {
    const report = sampleReport();
    report.streams = ["constructor", "toString", "hasOwnProperty"].map((name) => ({
      ...report.streams[0],
      name,
    }));
    report.previews = {};
    const html = renderReportHtml(report);
    for (const name of ["constructor", "toString", "hasOwnProperty"]) expect(html).toContain(name);
  });
});
