import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderReportHtml } from "../../src/report/render-html.js";
import type { RunReport } from "../../src/report/report-types.js";
import type { HistoryRun } from "../../src/state/run-history.js";
import { ARTIFACTS, launchChromium } from "./chromium.js";
import { sampleReport } from "./fixture.js";

/** The sample report with 30 runs of history, output previews, a suspicious stream, a 100% gauge. */
function historyReport(): RunReport {
  const report = sampleReport();
  const [orders, customers, refunds] = report.streams;
  orders.suspicions = [
    {
      code: "next_path_missing",
      decides: false,
      message:
        "pagination stopped after page 1: no next URL, but page 1 was full. Probably a wrong `next` path",
    },
  ];
  // A stream whose every record was invalid: the gauge must be full.
  refunds.invalid_ratio = 1;
  refunds.errors[0].field = "/a/very/long/field/path/that/used/to/be/clipped/at/the/left/edge";
  const runs: HistoryRun[] = Array.from({ length: 30 }, (_, i) => ({
    run_id: i === 29 ? report.run_id : `202601${String(i + 1).padStart(2, "0")}T000000Z-00000${i % 10}`,
    started_at: `2026-01-${String(i + 1).padStart(2, "0")}T00:00:00.000Z`,
    status: i === 12 ? "failed" : "ok",
    duration_ms: 1000 + i,
    streams: [
      {
        name: "orders",
        status: i === 12 ? "failed" : "ok",
        committed: i !== 12 && i !== 20,
        seen: 2400 + i,
        written: i === 20 ? 40 : 2400 + i * 3,
        invalid: 43,
        invalid_ratio: i === 25 ? 0.2 : 0.017,
        new_fields: i === 25 ? 2 : 0,
        duration_ms: 500,
      },
      {
        name: customers.name,
        status: "ok",
        committed: true,
        seen: 300,
        written: 300,
        invalid: 0,
        invalid_ratio: 0,
        new_fields: 0,
        duration_ms: 100,
      },
    ],
  }));
  report.history = runs;
  report.previews = {
    orders: [
      { id: "ord-1", total: 12.5, status: "paid", note: "<script>alert(1)</script>" },
      { id: "ord-2", total: 7, status: "open", note: null },
    ],
  };
  return report;
}

describe("the report's history view in headless Chromium", () => {
  const report = historyReport();
  let browser: Browser;
  let page: Page;
  let dir: string;
  const network: string[] = [];
  const dialogs: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "report-history-"));
    const file = join(dir, "report.html");
    writeFileSync(file, renderReportHtml(report));
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.route("**/*", (route) => {
      const u = route.request().url();
      if (u.startsWith("file:")) return route.continue();
      network.push(u);
      return route.abort();
    });
    page = await context.newPage();
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("draws one chart per stream with history: 30 bars, heights in proportion, this run outlined", async () => {
    const charts = page.locator("svg.chart-history");
    expect(await charts.count()).toBe(2);
    const bars = page.locator('svg.chart-history[data-stream="orders"] rect[data-bar="history"]');
    expect(await bars.count()).toBe(30);
    const heights = await bars.evaluateAll((els) =>
      els.map((el) => ({ w: Number(el.getAttribute("data-written")), h: el.getBoundingClientRect().height })),
    );
    const max = heights.reduce((a, b) => (b.w > a.w ? b : a));
    const drop = heights[20];
    expect(drop.w).toBe(40);
    expect(drop.h).toBeLessThan(max.h / 10);
    expect(heights.every((x) => x.h <= max.h + 0.5)).toBe(true);
    // The dropped run (not committed) is amber, the failed one red, this run outlined.
    const classes = await bars.evaluateAll((els) => els.map((el) => el.getAttribute("class")));
    expect(classes[20]).toContain("h-kept");
    expect(classes[12]).toContain("h-bad");
    expect(classes[29]).toContain("h-now");
    expect(await page.locator('svg.chart-history[data-stream="orders"] .h-drift').count()).toBe(1);
  });

  it("a suspicious stream is amber, not green, and says why", async () => {
    const banner = page.locator('[data-stream="orders"] [data-testid="stream-banner"]');
    expect(await banner.locator("strong").textContent()).toBe("Loaded, but suspicious");
    const bg = await page.evaluate<string>(
      `getComputedStyle(document.querySelector('[data-stream="orders"] [data-testid="stream-banner"]')).backgroundColor`,
    );
    expect(bg).toBe("rgb(255, 248, 197)"); // --warn-bg
    expect(await page.locator('[data-stream="orders"] .callout').textContent()).toContain(
      "Suspicious (next_path_missing)",
    );
  });

  it("shows the first rows of the output, escaped", async () => {
    const preview = page.locator('[data-stream="orders"] [data-testid="output-preview"]');
    expect(await preview.locator("tbody tr").count()).toBe(2);
    expect(await preview.locator("thead th").allTextContents()).toEqual(["id", "total", "status", "note"]);
    expect(await preview.locator("tbody tr").first().textContent()).toContain("<script>alert(1)</script>");
    expect(dialogs).toEqual([]);
  });

  it("draws a 100% invalid ratio full width, and the max marker where the max is", async () => {
    const gauge = page.locator('[data-stream="refunds"] .ratio');
    const track = (await gauge.boundingBox())!;
    const fill = (await gauge.locator(".fill").boundingBox())!;
    expect(Math.abs(fill.width - track.width)).toBeLessThan(1);
    const marker = (await gauge.locator(".max").boundingBox())!;
    const center = marker.x + marker.width / 2;
    // max_invalid_ratio 5% on a 0–100% scale.
    expect(Math.abs(center - (track.x + track.width * 0.05))).toBeLessThan(1.5);
  });

  it("reason labels are never clipped", async () => {
    const clipped = await page.locator("svg.chart-errors").evaluateAll((svgs) =>
      svgs.flatMap((svg) => {
        const box = svg.getBoundingClientRect();
        return [...svg.querySelectorAll("text")]
          .map((t) => t.getBoundingClientRect())
          .filter((r) => r.left < box.left - 0.5 || r.right > box.right + 0.5)
          .map((r) => `${r.left}-${r.right} outside ${box.left}-${box.right}`);
      }),
    );
    expect(clipped).toEqual([]);
    // The reason is shown whole, not cut to 28 characters with "…".
    const labels = await page.locator('[data-stream="refunds"] svg.chart-errors text.lbl').allTextContents();
    expect(labels).toContain("/a/very/long/field/path/that/used/to/be/clipped/at/the/left/edge · minimum");
  });

  it("fits desktop and phone widths, with no request to the network (screenshots in test-artifacts/)", async () => {
    await page
      .locator('[data-testid="history"]')
      .screenshot({ path: join(ARTIFACTS, "history-desktop.png") });
    await page.screenshot({ path: join(ARTIFACTS, "report-history-desktop.png"), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
    expect(overflow).toBeLessThanOrEqual(0);
    await page.locator('[data-testid="history"]').screenshot({ path: join(ARTIFACTS, "history-phone.png") });
    await page.screenshot({ path: join(ARTIFACTS, "report-history-phone.png"), fullPage: true });
    expect(existsSync(join(ARTIFACTS, "history-phone.png"))).toBe(true);
    expect(network).toEqual([]);
  });
});
