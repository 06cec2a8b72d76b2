/**
 * The analyst-facing run report: one self-contained HTML page (inline CSS, SVG and a little JS for
 * sorting tables; no network). Everything is rendered here, so the page reads the same with
 * JavaScript off. Every string from the report is API data: it is escaped, never embedded raw.
 */
import { e, formatDuration, formatPercent, formatTime, num, plural } from "./html-text.js";
import { HISTORY_CSS, historySection, outputPreview } from "./render-history.js";
import {
  type Cell,
  code,
  driftSection,
  errorChart,
  errorsTable,
  fieldsTable,
  numCell,
  presenceChart,
  ratioBar,
  table,
} from "./render-parts.js";
import type { RunReport, StreamReport } from "./report-types.js";

export interface RenderHtmlOptions {
  /**
   * Prefix that leads from the page's folder to the project root, for the links to output,
   * quarantine and rejected files (their paths are relative to the project root). A page written
   * to `reports/<pipeline>/` passes `"../../"`. Default: none (links are the paths as given).
   */
  linkBase?: string;
}

const RETRY_CAUSES: Record<string, string> = {
  reset: "connection reset",
  timeout: "timeout",
  truncated: "truncated body",
  rate_limited: "rate limited",
  token_refresh: "token refresh",
};
const retryCause = (c: string): string => RETRY_CAUSES[c] ?? c.replace(/^status_(\d+)$/, "HTTP $1");

/** A relative link to a file named relative to the project root; never a `javascript:`-like scheme. */
function fileHref(path: string, base: string): string {
  const p = path.replace(/\\/g, "/");
  const abs = p.startsWith("/");
  const safe = !abs && /^[a-z][a-z0-9+.-]*:/i.test(p) ? `./${p}` : p;
  return encodeURI(abs ? safe : base + safe).replace(/[?#]/g, encodeURIComponent);
}

const STATUS_WORDS: Record<StreamReport["status"], string> = {
  ok: "Loaded",
  failed: "Failed",
  rejected: "Rejected by the data-quality check",
  skipped: "Skipped",
};

function rejectionWhy(s: StreamReport): string | null {
  if (s.invalid_ratio > s.max_invalid_ratio) {
    return `${formatPercent(s.invalid_ratio)} of records invalid (max ${formatPercent(s.max_invalid_ratio)})`;
  }
  if (s.drift?.breached) return "records drifted from the schema (drift policy: fail)";
  return null;
}
const rejectionReason = (s: StreamReport): string =>
  `${s.name}: ${rejectionWhy(s) ?? s.stop_reason?.message ?? s.error?.message ?? "rejected"}`;

/** The run's outcome in words: a headline and, when something went wrong, the details. */
export function overallStatus(report: RunReport): { headline: string; details: string[] } {
  const n = report.streams.length;
  const by = (st: StreamReport["status"]) => report.streams.filter((s) => s.status === st);
  const [failed, rejected, skipped] = [by("failed"), by("rejected"), by("skipped")];
  const details = failed.map((s) => `${s.name}: ${s.error?.message ?? s.stop_reason?.message ?? "failed"}`);
  const reasons = rejected.map(rejectionReason);
  let headline: string;
  if (failed.length) {
    const written = failed.filter((s) => s.output.committed).length;
    const what =
      written === 0
        ? failed.length === 1
          ? "nothing of it was written"
          : "nothing of them was written"
        : `${written} of them committed output`;
    headline = `${num(failed.length)} of ${plural(n, "stream")} failed — ${what}`;
    details.push(...reasons.map((r) => `Data-quality check failed: ${r}`));
  } else if (reasons.length === 1) {
    headline = `Data-quality check failed: ${reasons[0]}`;
  } else if (reasons.length > 1) {
    headline = `Data-quality check failed: ${num(reasons.length)} of ${plural(n, "stream")} rejected`;
    details.push(...reasons);
  } else if (report.status === "quality_failed") {
    headline = "Data-quality check failed";
  } else if (report.streams.some(suspicious)) {
    const odd = report.streams.filter(suspicious);
    headline = `Loaded, but ${odd.length === 1 ? `${odd[0].name} looks` : `${num(odd.length)} streams look`} suspicious: ${odd[0].suspicions![0].message}`;
  } else if (n === 0) {
    headline = "No streams ran";
  } else if (skipped.length) {
    headline = `${num(n - skipped.length)} of ${plural(n, "stream")} loaded, ${num(skipped.length)} skipped`;
  } else {
    headline = n === 1 ? "1 stream loaded" : `All ${num(n)} streams loaded`;
  }
  return { headline, details };
}

/** A stream that loaded while a suspicion check found something: amber, not green. */
const suspicious = (s: StreamReport): boolean => s.status === "ok" && Boolean(s.suspicions?.length);

function streamCard(s: StreamReport, i: number, base: string, report: RunReport): string {
  const sections = s.status !== "skipped" || s.records.seen > 0 ? qualitySections(s, `s${i}`) : "";
  return `<article class="card" id="stream-${i}" data-stream="${e(s.name)}"><h2>${e(s.name)}</h2>${streamBanner(s)}${warningsCallout(s)}${recordTiles(s)}${streamFacts(s, base)}${sections}${outputPreview(report, s.name)}</article>`;
}

/** The status line: the outcome, and why (rejection, error, stop). */
function streamBanner(s: StreamReport): string {
  return (
    `<div class="banner st-${suspicious(s) ? "suspicious" : s.status}" data-testid="stream-banner"><strong>${suspicious(s) ? "Loaded, but suspicious" : STATUS_WORDS[s.status]}</strong>` +
    (s.status === "rejected" && !s.error && rejectionWhy(s) ? `<span>${e(rejectionWhy(s))}</span>` : "") +
    (s.error ? `<span>${e(s.error.kind)}: ${e(s.error.message)}</span>` : "") +
    (s.stop_reason && !s.stop_reason.warning ? `<span>Stopped: ${e(s.stop_reason.message)}</span>` : "") +
    `</div>`
  );
}

/** Warnings, a stop that is a warning first. */
function warningsCallout(s: StreamReport): string {
  const warns = [
    ...(s.suspicions ?? []).map(
      (w) => `Suspicious (${w.code}${w.decides ? ", not committed" : ""}): ${w.message}`,
    ),
    ...(s.stop_reason?.warning ? [`Stopped: ${s.stop_reason.message}`] : []),
    ...s.warnings,
  ];
  return warns.length
    ? `<div class="callout" role="note"><strong>Warning${warns.length > 1 ? "s" : ""}</strong><ul>${warns.map((w) => `<li>${e(w)}</li>`).join("")}</ul></div>`
    : "";
}

/** Record counts and the invalid ratio against its maximum. */
function recordTiles(s: StreamReport): string {
  const r = s.records;
  const tile = (label: string, value: number, cls = "") =>
    `<div class="tile ${cls}"><div class="v">${num(value)}</div><div class="k">${label}</div></div>`;
  return (
    `<div class="tiles">${tile("records seen", r.seen)}${tile("valid", r.valid)}` +
    `${tile("invalid", r.invalid, r.invalid ? "warn" : "")}${tile(s.output.committed || !r.written ? "written" : "written, not committed", r.written, s.output.committed && r.written ? "good" : "")}` +
    `${tile("duplicates dropped", r.duplicates)}` +
    `${r.filtered ? tile("filtered out", r.filtered) : ""}` +
    `<div class="tile wide"><div class="v">${formatPercent(s.invalid_ratio)} <small>of max ${formatPercent(s.max_invalid_ratio)}</small></div>${ratioBar(s)}<div class="k">invalid ratio · policy <code>${e(s.invalid_policy)}</code></div></div></div>`
  );
}

/** Duration, pages, requests, retries, waits, files, schema and partitions. */
function streamFacts(s: StreamReport, base: string): string {
  const retries = Object.entries(s.retries).filter(([, n]) => n > 0);
  const nRetries = retries.reduce((a, [, n]) => a + n, 0);
  const waits = s.rate_limit_waits;
  const o = s.output;
  const link = (p: string) => `<a href="${e(fileHref(p, base))}">${e(p)}</a>`;
  const facts = [
    ["Took", e(formatDuration(s.duration_ms))],
    ["Pages", num(s.pages)],
    ["Requests", num(s.requests)],
    [
      "Retries",
      nRetries
        ? `${num(nRetries)} (${retries.map(([c, n]) => `${e(retryCause(c))} ×${num(n)}`).join(", ")})`
        : "none",
    ],
    [
      "Rate limits",
      waits.count ? `waited ${waits.seconds.toFixed(1)} s in ${plural(waits.count, "pause")}` : "no waits",
    ],
    [
      "Output",
      `${link(o.path)} <span class="muted">(${e(o.format)}, ${e(o.mode)})</span> ` +
        (o.committed
          ? '<span class="tag ok">committed</span>'
          : '<span class="tag bad">not committed</span> <span class="muted">nothing was written</span>'),
    ],
    ...(s.quarantine
      ? [["Quarantine", `${link(s.quarantine)} <span class="muted">invalid records with their errors</span>`]]
      : []),
    ...(s.preview_output
      ? [
          [
            "Kept beside",
            `${link(s.preview_output)} <span class="muted">this run's output, not committed</span>`,
          ],
        ]
      : []),
    ...(s.rejected_output
      ? [
          [
            "Rejected output",
            `${link(s.rejected_output)} <span class="muted">new records kept here instead</span>`,
          ],
        ]
      : []),
    [
      "Schema",
      s.schema
        ? `${s.schema.file ? code(s.schema.file) : "inline"} <span class="muted">(${e(s.schema.draft)})</span>`
        : "none",
    ],
  ];
  if (s.partitions) {
    const p = s.partitions;
    facts.push([
      "Partitions",
      `${num(p.done)} of ${num(p.total)} done${p.failed.length ? `, ${num(p.failed.length)} failed:<ul class="ex">${p.failed.map((f) => `<li>${code(f.parent_key)} ${e(f.error)}</li>`).join("")}</ul>` : ""}`,
    ]);
  }
  if (s.units) facts.push(unitsFact(s.units));
  return `<dl class="facts">${facts.map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join("")}</dl>`;
}

/** `Windows: 7 of 12 done, 7 committed; window a…b to window c…d, step 7d`. */
function unitsFact(u: NonNullable<StreamReport["units"]>): string[] {
  const parts = [`${num(u.done)} of ${num(u.total)} done`];
  if (u.checkpoints) parts.push(`${num(u.committed)} committed (a checkpoint after each)`);
  if (u.incomplete) parts.push(`${num(u.incomplete)} cut short, fetched again next run`);
  let text = parts.join(", ");
  if (u.windows?.first)
    text += `<br><span class="muted">${e(u.windows.first)} to ${e(u.windows.last ?? "")}, step ${e(u.windows.step)}</span>`;
  if (u.kind === "windows" && u.total === 0) text += ' <span class="muted">the range is already empty</span>';
  return [u.kind === "windows" ? "Windows" : "Partition commits", text];
}

/** Invalid records by reason, field presence and drift, the fields table. */
function qualitySections(s: StreamReport, sid: string): string {
  let body = "";
  const noSchema = '<p class="empty">No schema: records were not validated.</p>';
  const errs = !s.schema
    ? noSchema
    : s.errors.length
      ? `${errorChart(s.errors, sid)}${errorsTable(s.errors)}`
      : '<p class="empty">No invalid records.</p>';
  body += `<section><h3>Invalid records by reason</h3>${errs}</section>`;
  const legend =
    '<ul class="legend"><li><i class="p-field"></i>present</li><li><i class="p-null"></i>present but null</li>' +
    (s.schema
      ? '<li><i class="p-new"></i>new field (not in the schema)</li><li><i class="p-changed"></i>type differs from the schema</li>'
      : "") +
    '<li><i class="track"></i>absent</li></ul>';
  const chart = s.fields.length || s.drift?.missing_fields.length ? `${legend}${presenceChart(s, sid)}` : "";
  const drift = !s.schema
    ? '<p class="empty">No schema: there is nothing to compare the fields with.</p>'
    : s.drift
      ? driftSection(s.drift, s)
      : '<p class="empty">Drift was not checked.</p>';
  body += `<section><h3>Field presence &amp; drift</h3>${chart}${drift}</section>`;
  body += `<section><h3>Fields</h3>${s.fields.length ? fieldsTable(s) : '<p class="empty">No records were seen.</p>'}</section>`;
  return body;
}

// ---------------------------------------------------------------------------------------------

const CSS = `
:root{--ok:#1a7f37;--ok-bg:#dafbe1;--bad:#cf222e;--bad-bg:#ffebe9;--warn:#9a6700;--warn-bg:#fff8c5;--skip:#57606a;--skip-bg:#eaeef2;--fg:#1f2328;--mut:#59636e;--line:#d1d9e0;--blue:#0969da;--new:#8250df}
*{box-sizing:border-box}body{margin:0;background:#f6f8fa;color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:24px 16px 48px}h1{font-size:24px;margin:0 0 4px}h2{font-size:20px;margin:0 0 12px}h3{font-size:16px;margin:24px 0 8px;padding-top:16px;border-top:1px solid var(--line)}h4{font-size:14px;margin:16px 0 6px}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eff2f5;padding:1px 4px;border-radius:4px;overflow-wrap:break-word}
a{color:var(--blue)}.muted,.sub{color:var(--mut)}.sub{font-size:12px;overflow-wrap:break-word}.bad{color:var(--bad)}
header.run,.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:20px;margin-bottom:20px}
.meta{display:flex;flex-wrap:wrap;gap:4px 24px;margin:8px 0 16px;color:var(--mut)}.meta b{color:var(--fg);font-weight:600}
.overall{border-radius:8px;padding:12px 16px;font-size:17px;font-weight:600}.overall ul{margin:6px 0 0;padding-left:20px;font-size:14px;font-weight:400}
.banner{border-radius:8px;padding:10px 14px;border-left:6px solid}.banner strong{margin-right:12px}
.st-ok{background:var(--ok-bg);border-color:var(--ok)}.st-ok strong{color:var(--ok)}.st-failed{background:var(--bad-bg);border-color:var(--bad)}.st-failed strong{color:var(--bad)}
.st-rejected,.st-quality_failed{background:var(--warn-bg);border-color:var(--warn)}.st-rejected strong{color:var(--warn)}.st-skipped{background:var(--skip-bg);border-color:var(--skip)}.st-skipped strong{color:var(--skip)}
.callout{margin-top:10px;background:var(--warn-bg);border:1px solid #d4a72c;border-radius:8px;padding:8px 14px}.callout ul{margin:4px 0 0;padding-left:20px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(120px,1fr));gap:10px;margin:16px 0}.tile{border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.tile .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}.tile .v small{font-size:12px;font-weight:400;color:var(--mut)}.tile .k{color:var(--mut);font-size:12px}.tile.wide{grid-column:span 2}
.tile.warn .v{color:var(--warn)}.tile.good .v{color:var(--ok)}
.ratio{position:relative;height:8px;background:#eaeef2;border-radius:4px;margin:6px 0 4px}.ratio .fill{position:absolute;left:0;top:0;bottom:0;background:var(--ok);border-radius:4px}.ratio .fill.over{background:var(--bad)}.ratio .max{position:absolute;top:-3px;bottom:-3px;width:2px;background:var(--fg)}
.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:6px 32px;margin:0}.facts div{display:flex;gap:12px}.facts dt{flex:0 0 120px;color:var(--mut)}.facts dd{margin:0;min-width:0;overflow-wrap:anywhere}
.tag{display:inline-block;font-size:12px;padding:0 6px;border-radius:10px;font-weight:600}.tag.ok,.t-ok{background:var(--ok-bg);color:var(--ok)}.tag.bad,.t-failed{background:var(--bad-bg);color:var(--bad)}.t-rejected{background:var(--warn-bg);color:var(--warn)}.t-skipped{background:var(--skip-bg);color:var(--skip)}.tag.new{background:#fbefff;color:var(--new)}
.empty{color:var(--mut);font-style:italic}.card p{margin:4px 0 8px}.banner span{display:inline-block}.banner span+span{display:block}
.cw{overflow-x:auto;margin:8px 0 12px}.chart{display:block;max-width:100%;height:auto}.chart text{font-size:12.5px;fill:var(--fg)}.chart .val{fill:var(--mut);font-variant-numeric:tabular-nums}
.bar-err{fill:#e5534b}.track{fill:#eaeef2}.p-field{fill:var(--blue);background:var(--blue)}.p-new{fill:var(--new);background:var(--new)}.p-changed{fill:#bc4c00;background:#bc4c00}.p-null{fill:#9ec5fe;background:#9ec5fe}
.chart .lbl.new{fill:var(--new)}.chart .lbl.missing{fill:var(--mut);font-style:italic}.chart .mark{font-size:12px;font-weight:600}.chart .m-new{fill:var(--new)}.chart .m-missing,.chart .m-field{fill:var(--mut)}.chart .m-changed{fill:#bc4c00}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 16px;padding:0;margin:4px 0;color:var(--mut);font-size:12px}.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;vertical-align:-2px}.legend i.track{background:#eaeef2}
.tw{overflow-x:auto;margin:8px 0}table{border-collapse:collapse;width:100%;font-size:13px}caption{text-align:left;color:var(--mut);font-size:12px;padding-bottom:4px}
th,td{text-align:left;vertical-align:top;padding:6px 10px;border-bottom:1px solid var(--line)}th{background:#f6f8fa;white-space:nowrap;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
th button{font:inherit;font-weight:600;color:inherit;background:none;border:0;padding:0;cursor:pointer}th button::after{content:" ↕";color:#8c959f}th[aria-sort=ascending] button::after{content:" ▲";color:var(--fg)}th[aria-sort=descending] button::after{content:" ▼";color:var(--fg)}
ul.ex{margin:0;padding-left:16px}ul.chips{list-style:none;display:flex;flex-wrap:wrap;gap:6px;padding:0;margin:4px 0}
.summary td:first-child a{font-weight:600}
@media (max-width:600px){.chart{max-width:none;width:500px}.facts{grid-template-columns:1fr}main{padding:12px 8px}header.run,.card{padding:14px}.tile.wide{grid-column:span 1}.facts div{flex-direction:column;gap:0}.facts dt{flex:none}}
`;

/** Sorting only: everything else is already on the page. */
const SCRIPT = `
(function(){
function key(c){var v=c.getAttribute("data-sort");return v===null?c.textContent.trim():v}
function isNum(v){return v!==""&&!isNaN(Number(v))}
function sort(table,th,i){
var asc=th.getAttribute("aria-sort")!=="ascending";
Array.prototype.forEach.call(th.parentNode.cells,function(c){c.removeAttribute("aria-sort")});
th.setAttribute("aria-sort",asc?"ascending":"descending");
var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);
var r=isNum(x)&&isNum(y)?Number(x)-Number(y):x.localeCompare(y,undefined,{numeric:true,sensitivity:"base"});
return asc?r:-r});
rows.forEach(function(r){body.appendChild(r)});
}
document.querySelectorAll("table.sortable").forEach(function(table){
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
var b=document.createElement("button");b.type="button";
while(th.firstChild)b.appendChild(th.firstChild);
th.appendChild(b);
b.addEventListener("click",function(){sort(table,th,i)});
});
});
})();
`;

/** The whole page, self-contained: it makes no network request. */
export function renderReportHtml(report: RunReport, options: RenderHtmlOptions = {}): string {
  const base = options.linkBase ?? "";
  const { headline, details } = overallStatus(report);
  const cls =
    report.status === "ok" && !report.streams.some(suspicious)
      ? "st-ok"
      : report.status === "failed"
        ? "st-failed"
        : "st-rejected";
  const summaryRows = report.streams.map((s, i): Cell[] => [
    { html: `<a href="#stream-${i}">${e(s.name)}</a>`, sort: s.name },
    `<span class="tag t-${s.status}">${e(s.status)}</span>`,
    numCell(s.records.seen),
    numCell(s.records.invalid),
    numCell(s.records.written),
    { html: formatPercent(s.invalid_ratio), sort: s.invalid_ratio },
    { html: e(formatDuration(s.duration_ms)), sort: s.duration_ms },
  ]);
  const summary = report.streams.length
    ? table(
        "summary",
        [
          { label: "Stream" },
          { label: "Status" },
          { label: "Seen", num: true },
          { label: "Invalid", num: true },
          { label: "Written", num: true },
          { label: "Invalid ratio", num: true },
          { label: "Took", num: true },
        ],
        summaryRows,
        "Streams in this run",
      )
    : "";
  const json = JSON.stringify(report)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
  const title = `${report.pipeline} · run ${report.run_id}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${e(title)}</title>
<style>${CSS}${HISTORY_CSS}</style>
</head>
<body>
<main>
<header class="run">
<h1>${e(report.pipeline)}</h1>
<div class="meta"><span>Run <b>${e(report.run_id)}</b></span><span>Started <b>${e(formatTime(report.started_at))}</b></span><span>Took <b>${e(formatDuration(report.duration_ms))}</b></span><span>Pipeline file <code>${e(report.pipeline_file)}</code></span><span>Exit code <b>${report.exit_code}</b></span></div>
<div class="overall ${cls}" data-testid="overall-status">${e(headline)}${details.length ? `<ul>${details.map((d) => `<li>${e(d)}</li>`).join("")}</ul>` : ""}</div>
${summary}
</header>
${report.streams.map((s, i) => streamCard(s, i, base, report)).join("\n")}
${historySection(report)}
<footer class="muted">Generated by pipelines ${e(report.tool_version)} at ${e(formatTime(report.finished_at))}. The report's data is embedded in this page as JSON (<code>#report-data</code>).</footer>
</main>
<script type="application/json" id="report-data">${json}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
