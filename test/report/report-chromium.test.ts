import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderReportHtml } from "../../src/report/render-html.js";
import { ARTIFACTS, launchChromium } from "./chromium.js";
import { sampleReport } from "./fixture.js";

describe("the HTML report in headless Chromium", () => {
  const report = sampleReport();
  let browser: Browser;
  let page: Page;
  let dir: string;
  let url: string;
  const network: string[] = [];
  const dialogs: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "report-html-"));
    const file = join(dir, "report.html");
    writeFileSync(file, renderReportHtml(report));
    url = pathToFileURL(file).href;
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.route("**/*", (route) => {
      const u = route.request().url();
      if (u.startsWith("file:")) return route.continue();
      network.push(u);
      return route.abort();
    });
    page = await context.newPage();
    page.on("request", (r) => {
      if (!r.url().startsWith("file:")) network.push(r.url());
    });
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(url, { waitUntil: "load" });
  });

  afterAll(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("shows each stream's status banner in words", async () => {
    const banners = await Promise.all(
      (await page.getByTestId("stream-banner").all()).map(async (b) => [
        await b.locator("strong").textContent(),
        ...(await b.locator("span").allTextContents()),
      ]),
    );
    expect(banners).toEqual([
      ["Loaded", "Stopped: no next cursor ($.paging.next.after was missing)"],
      ["Failed", `http: ${report.streams[1].error!.message}`],
      ["Rejected by the data-quality check", "12% of records invalid (max 5%)", "Stopped: an empty page"],
    ]);
    expect(banners[1][1]).toContain('{"error":"<script>alert(1)</script>"}');
    await expect(page.locator('[data-stream="orders"] .callout li').textContent()).resolves.toBe(
      "field <script>alert(1)</script> is not in the schema",
    );
    const colours = await page.evaluate<string[]>(
      `[...document.querySelectorAll('[data-testid="stream-banner"]')].map((el) => getComputedStyle(el).borderLeftColor)`,
    );
    expect(colours).toEqual(["rgb(26, 127, 55)", "rgb(207, 34, 46)", "rgb(154, 103, 0)"]);
    await expect(page.getByTestId("overall-status").textContent()).resolves.toContain(
      "1 of 3 streams failed — nothing of it was written",
    );
  });

  it("draws one visible bar per error group, longest for the biggest count", async () => {
    const bars = page.locator('[data-stream="orders"] svg.chart-errors [data-bar="error-group"]');
    await expect(bars.count()).resolves.toBe(report.streams[0].errors.length);
    const boxes = await Promise.all((await bars.all()).map((b) => b.boundingBox()));
    const widths = boxes.map((b) => b?.width ?? 0);
    expect(widths.every((w) => w > 0)).toBe(true);
    expect(widths[0]).toBeGreaterThan(widths[1]);
    expect(widths[1]).toBeGreaterThan(widths[2]);
    await expect(page.locator('[data-stream="refunds"] [data-bar="error-group"]').count()).resolves.toBe(1);
    await expect(page.locator('[data-stream="customers"] .chart-errors').count()).resolves.toBe(0);
    await expect(page.locator('[data-stream="customers"]').textContent()).resolves.toContain(
      "No invalid records.",
    );
  });

  it("draws a presence row per field, never-seen schema fields at 0%", async () => {
    const rows = page.locator('[data-stream="orders"] svg.chart-presence [data-presence-row]');
    const orders = report.streams[0];
    await expect(rows.count()).resolves.toBe(orders.fields.length + orders.drift!.missing_fields.length);
    await expect(rows.locator("xpath=self::*[@data-presence-row='new']").count()).resolves.toBe(2);
    const missing = page.locator('[data-presence-row="missing"][data-field="/shipping_method"]');
    await expect(missing.locator("text.val").textContent()).resolves.toBe("0%");
    const total = page.locator('[data-presence-row][data-field="/total"]');
    await expect(total.getAttribute("data-type-changed")).resolves.toBe("true");
    await expect(total.locator("text.mark").textContent()).resolves.toBe("type changed");
    await expect(
      page.locator('[data-field="<script>alert(1)</script>"] text.lbl').textContent(),
    ).resolves.toBe("<script>alert(1)</script>");
  });

  it("sorts a table when its header is clicked, both ways", async () => {
    const table = page.locator('[data-stream="orders"] table.t-errors');
    const firstField = () =>
      table.locator("tbody tr").first().locator("td").first().locator("code").textContent();
    const count = table.locator("thead th", { hasText: "Count" });
    await expect(firstField()).resolves.toBe("/total");
    await expect(count.getAttribute("aria-sort")).resolves.toBe("descending");
    await count.locator("button").click();
    await expect(count.getAttribute("aria-sort")).resolves.toBe("ascending");
    await expect(firstField()).resolves.toBe("/customer_id");
    await count.locator("button").click();
    await expect(firstField()).resolves.toBe("/total");
    const field = table.locator("thead th", { hasText: "Field" });
    await field.locator("button").click();
    await expect(field.getAttribute("aria-sort")).resolves.toBe("ascending");
    await expect(count.getAttribute("aria-sort")).resolves.toBeNull();
    await expect(firstField()).resolves.toBe("/customer_id");
    await field.locator("button").click();
    await expect(firstField()).resolves.toBe("/total");

    // Numeric, not lexical: 2,480 > 412 > 2 by presence.
    const fields = page.locator('[data-stream="orders"] table.t-fields');
    const present = fields.locator("thead th", { hasText: /^Present$/ });
    await present.locator("button").click();
    await expect(fields.locator("tbody tr").first().locator("td").nth(2).textContent()).resolves.toBe("2");
    await present.locator("button").click();
    await expect(fields.locator("tbody tr").first().locator("td").nth(2).textContent()).resolves.toBe(
      "2,480",
    );
  });

  it("keeps the embedded report data intact and runs no injected script", async () => {
    const data = await page.locator("#report-data").textContent();
    expect(JSON.parse(data ?? "")).toEqual(report);
    expect(dialogs).toEqual([]);
  });

  it("fits a phone's width without horizontal scrolling", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await expect(page.evaluate<number>("document.documentElement.scrollWidth")).resolves.toBeLessThanOrEqual(
      390,
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "report-phone.png"), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    await expect(page.evaluate<number>("document.documentElement.scrollWidth")).resolves.toBeLessThanOrEqual(
      1280,
    );
  });

  it("makes no network request, and saves a screenshot", async () => {
    await page.reload({ waitUntil: "networkidle" });
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "report.png"), fullPage: true });
    expect(existsSync(join(ARTIFACTS, "report.png"))).toBe(true);
    expect(network).toEqual([]);
  });
});
