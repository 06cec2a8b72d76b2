import { formatNumber } from "../shared/format.js";
import type { HistoryRun } from "../state/run-history.js";
import { e } from "./html-text.js";
import type { RunReport } from "./report-types.js";

/**
 * The report's history view (rendering only; history-view.ts gathers the data): per stream, the
 * last runs as a small inline SVG chart (records written as bars, coloured by outcome; the invalid
 * ratio as a line; runs that brought new fields marked), and a preview of the first rows of each
 * stream's output. Self-contained: no script, no network.
 */

const pct = (r: number): string => `${(r * 100).toFixed(r > 0 && r < 0.001 ? 2 : 1)}%`;
const CELL_CHARS = 60;

interface Point {
  run: HistoryRun;
  written: number;
  ratio: number;
  newFields: number;
  outcome: "ok" | "kept" | "bad";
  current: boolean;
}

/** The history section: one chart per stream of this run; empty when there is no history. */
export function historySection(report: RunReport): string {
  const runs = report.history ?? [];
  if (!runs.length) return "";
  const charts = report.streams
    .map((s, i) => {
      const points: Point[] = [];
      for (const run of runs) {
        const st = run.streams.find((x) => x.name === s.name);
        if (!st) continue;
        points.push({
          run,
          written: st.written,
          ratio: st.invalid_ratio,
          newFields: st.new_fields,
          outcome: st.committed ? "ok" : st.status === "ok" || st.status === "rejected" ? "kept" : "bad",
          current: run.run_id === report.run_id,
        });
      }
      return points.length ? streamHistory(s.name, points, i) : "";
    })
    .join("");
  return (
    `<section class="card history" data-testid="history"><h2>History</h2>` +
    `<p class="muted">The last ${formatNumber(runs.length)} ${runs.length === 1 ? "run" : "runs"} of this pipeline: records written per run (bars: <span class="hk h-ok">committed</span> <span class="hk h-kept">not committed</span> <span class="hk h-bad">failed</span>), the invalid ratio (line) and runs that brought new fields (◆). This run is outlined.</p>` +
    `${charts}</section>`
  );
}

function streamHistory(name: string, points: Point[], i: number): string {
  const [W, H, TOP, BOTTOM, LEFT] = [600, 150, 18, 22, 56];
  const plotH = H - TOP - BOTTOM;
  const plotW = W - LEFT - 8;
  const maxW = Math.max(1, ...points.map((p) => p.written));
  const maxR = Math.max(0.01, ...points.map((p) => p.ratio));
  const slot = plotW / Math.max(points.length, 10);
  const bw = Math.max(3, Math.min(28, slot * 0.7));
  const x = (k: number) => LEFT + k * slot + (slot - bw) / 2;
  const last = points[points.length - 1];
  const label = `${name}: records written in the last ${points.length} runs: ${points.map((p) => formatNumber(p.written)).join(", ")}; invalid ratio now ${pct(last.ratio)}`;
  let svg =
    `<div class="cw"><svg class="chart chart-history" data-stream="${e(name)}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="h${i}"><title id="h${i}">${e(label)}</title>` +
    `<text x="${LEFT - 6}" y="${TOP + 4}" text-anchor="end" class="val">${e(formatNumber(maxW))}</text>` +
    `<text x="${LEFT - 6}" y="${TOP + plotH}" text-anchor="end" class="val">0</text>` +
    `<line x1="${LEFT}" y1="${TOP + plotH}" x2="${W - 8}" y2="${TOP + plotH}" class="axis"/>`;
  const line: string[] = [];
  points.forEach((p, k) => {
    const h = (p.written / maxW) * plotH;
    const y = TOP + plotH - h;
    svg +=
      `<g><title>${e(`${p.run.run_id}: ${formatNumber(p.written)} written, ${pct(p.ratio)} invalid${p.newFields ? `, ${p.newFields} new fields` : ""} (${p.outcome === "ok" ? "committed" : p.outcome === "kept" ? "not committed" : "failed"})`)}</title>` +
      `<rect data-bar="history" data-written="${p.written}" x="${x(k).toFixed(1)}" y="${y.toFixed(1)}" width="${bw.toFixed(1)}" height="${Math.max(h, 1).toFixed(1)}" rx="2" class="h-${p.outcome}${p.current ? " h-now" : ""}"/>` +
      (p.newFields
        ? `<text x="${(x(k) + bw / 2).toFixed(1)}" y="${(y - 4).toFixed(1)}" text-anchor="middle" class="h-drift">◆</text>`
        : "") +
      `</g>`;
    line.push(`${(x(k) + bw / 2).toFixed(1)},${(TOP + plotH - (p.ratio / maxR) * plotH).toFixed(1)}`);
  });
  if (points.length > 1) svg += `<polyline points="${line.join(" ")}" class="h-ratio"/>`;
  svg += `<text x="${LEFT}" y="${H - 6}" class="val">${e(points[0].run.started_at.slice(0, 10))}</text>`;
  svg += `<text x="${W - 8}" y="${H - 6}" text-anchor="end" class="val">invalid ratio max ${e(pct(maxR))} · now ${e(pct(last.ratio))}</text>`;
  return `<h3>${e(name)}</h3>${svg}</svg></div>`;
}

/** The first rows of a stream's output, as a table (values cut to 60 characters). */
export function outputPreview(report: RunReport, stream: string): string {
  // Own entries only: a stream named `constructor` or `toString` has no inherited preview.
  const rows =
    report.previews && Object.hasOwn(report.previews, stream) ? report.previews[stream] : undefined;
  if (!rows?.length) return "";
  const names: string[] = [];
  for (const r of rows)
    for (const k of Object.keys(r)) if (!names.includes(k) && names.length < 20) names.push(k);
  const cell = (v: unknown) => {
    const t = v === null || v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v);
    return e(t.length > CELL_CHARS ? `${t.slice(0, CELL_CHARS - 1)}…` : t);
  };
  const head = names.map((n) => `<th>${e(n)}</th>`).join("");
  const body = rows
    .map(
      (r) => `<tr>${names.map((n) => `<td>${cell(Object.hasOwn(r, n) ? r[n] : null)}</td>`).join("")}</tr>`,
    )
    .join("");
  return `<section><h3>Output preview</h3><div class="tw"><table class="t-preview" data-testid="output-preview"><caption>The first ${rows.length} rows of the output</caption><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div></section>`;
}

export const HISTORY_CSS =
  ".h-ok{fill:var(--blue)}.h-kept{fill:#d4a72c}.h-bad{fill:var(--bad)}.h-now{stroke:var(--fg);stroke-width:2}.h-ratio{fill:none;stroke:var(--bad);stroke-width:1.5}.chart .h-drift{fill:var(--new);font-size:11px}.axis{stroke:var(--line)}" +
  ".hk{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:12px}.hk.h-ok{background:var(--blue)}.hk.h-kept{background:#9a6700}.hk.h-bad{background:var(--bad)}" +
  ".st-suspicious{background:var(--warn-bg);border-color:var(--warn)}.st-suspicious strong{color:var(--warn)}.t-preview td{white-space:nowrap}";
