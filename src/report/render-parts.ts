/** The HTML report's charts (inline SVG) and sortable tables. */
import { clip, e, formatPercent, num, plural, preview, typeCounts } from "./html-text.js";
import type { DriftReport, ErrorGroup, FieldStats, StreamReport } from "./report-types.js";

// ---------------------------------------------------------------------------------------------
// Charts (inline SVG, fixed width that scales down on narrow screens)

function svgOpen(cls: string, width: number, height: number, label: string, id: string): string {
  return (
    `<div class="cw"><svg class="chart ${cls}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `role="img" aria-labelledby="${id}" aria-label="${e(label)}"><title id="${id}">${e(label)}</title>`
  );
}

export function errorChart(groups: ErrorGroup[], sid: string): string {
  const rows = [...groups].sort((a, b) => b.count - a.count);
  const max = Math.max(1, ...rows.map((g) => g.count));
  // Each reason's label has its own line above its bar: a long label is never clipped.
  const [W, BAR, H] = [600, 520, 40];
  const label = `Invalid records by reason: ${rows.map((g) => `${g.field} ${g.keyword} ${g.count}`).join(", ")}`;
  let out = svgOpen("chart-errors", W, rows.length * H + 4, label, `${sid}-errchart`);
  rows.forEach((g, i) => {
    const y = i * H + 2;
    const w = Math.max(2, (g.count / max) * BAR);
    const text = `${g.field || "(record)"} · ${g.keyword}`;
    out +=
      `<g><title>${e(`${text}: ${num(g.count)} — ${g.message}`)}</title>` +
      `<text x="0" y="${y + 13}" class="lbl">${e(clip(text, 80))}</text>` +
      `<rect data-bar="error-group" data-count="${g.count}" x="0" y="${y + 19}" width="${w.toFixed(1)}" height="${H - 24}" rx="3" class="bar-err"/>` +
      `<text x="${w + 6}" y="${y + 30}" class="val">${num(g.count)}</text></g>`;
  });
  return `${out}</svg></div>`;
}

interface PresenceRow {
  name: string;
  present: number;
  nulls: number;
  /** field: in the schema (or no schema to compare with); new: not in the schema; missing: never present. */
  kind: "field" | "new" | "missing";
  typeChanged: boolean;
}

export function presenceChart(s: StreamReport, sid: string): string {
  const changed = new Set((s.drift?.type_changes ?? []).map((t) => t.field));
  const missing = new Set(s.drift?.missing_fields ?? []);
  const kind = (f: FieldStats): PresenceRow["kind"] =>
    !s.schema ? "field" : !f.in_schema ? "new" : f.present === 0 || missing.has(f.name) ? "missing" : "field";
  const rows: PresenceRow[] = s.fields.map((f) => ({
    name: f.name,
    present: f.present,
    nulls: f.nulls,
    kind: kind(f),
    typeChanged: changed.has(f.name),
  }));
  const seen = new Set(s.fields.map((f) => f.name));
  for (const m of s.drift?.missing_fields ?? []) {
    if (!seen.has(m)) rows.push({ name: m, present: 0, nulls: 0, kind: "missing", typeChanged: false });
  }
  const total = Math.max(1, s.records.seen);
  const [W, L, BAR, H] = [660, 190, 260, 24];
  const label = `Field presence in ${num(s.records.seen)} records: ${rows.length} fields, ${rows.filter((r) => r.kind === "new").length} not in the schema, ${changed.size} with type changes, ${rows.filter((r) => r.kind === "missing").length} never seen`;
  let out = svgOpen("chart-presence", W, rows.length * H + 4, label, `${sid}-prchart`);
  rows.forEach((r, i) => {
    const y = i * H + 2;
    const pv = ((r.present - r.nulls) / total) * BAR;
    const pn = (r.nulls / total) * BAR;
    const pct = formatPercent(r.present / total);
    const marks = [
      r.kind === "new" ? "new field" : "",
      r.kind === "missing" ? "never seen" : "",
      r.typeChanged ? "type changed" : "",
      r.present > 0 && r.present === r.nulls ? "always null" : "",
    ].filter(Boolean);
    const tip = `${r.name}: present in ${num(r.present)} of ${num(s.records.seen)} records (${pct}), ${num(r.nulls)} null${marks.length ? ` — ${marks.join(", ")}` : ""}`;
    out +=
      `<g data-presence-row="${e(r.kind)}" data-field="${e(r.name)}"${r.typeChanged ? ' data-type-changed="true"' : ""}>` +
      `<title>${e(tip)}</title>` +
      `<text x="${L - 8}" y="${y + 15}" text-anchor="end" class="lbl ${r.kind}">${e(clip(r.name, 26))}</text>` +
      `<rect x="${L}" y="${y + 4}" width="${BAR}" height="${H - 8}" rx="3" class="track"/>` +
      (pv > 0
        ? `<rect x="${L}" y="${y + 4}" width="${pv.toFixed(1)}" height="${H - 8}" class="p-${r.kind}${r.typeChanged ? " p-changed" : ""}"/>`
        : "") +
      (pn > 0
        ? `<rect x="${(L + pv).toFixed(1)}" y="${y + 4}" width="${pn.toFixed(1)}" height="${H - 8}" class="p-null"/>`
        : "") +
      `<text x="${L + BAR + 8}" y="${y + 15}" class="val">${pct}</text>` +
      (marks.length
        ? `<text x="${L + BAR + 60}" y="${y + 15}" class="mark ${r.typeChanged ? "m-changed" : `m-${r.kind}`}">${e(marks.join(" · "))}</text>`
        : "") +
      `</g>`;
  });
  return `${out}</svg></div>`;
}

// ---------------------------------------------------------------------------------------------
// Tables (sortable by the inline script; `data-sort` holds the raw value to sort on)

export interface Col {
  label: string;
  num?: boolean;
  sorted?: "ascending" | "descending";
}
export type Cell = string | { html: string; sort: string | number };

export function table(cls: string, cols: Col[], rows: Cell[][], caption: string): string {
  const head = cols
    .map(
      (c) =>
        `<th scope="col"${c.num ? ' class="num"' : ""}${c.sorted ? ` aria-sort="${c.sorted}"` : ""}>${e(c.label)}</th>`,
    )
    .join("");
  const body = rows
    .map(
      (r) =>
        `<tr>${r
          .map((c, i) => {
            const n = cols[i].num ? ' class="num"' : "";
            return typeof c === "string"
              ? `<td${n}>${c}</td>`
              : `<td${n} data-sort="${e(c.sort)}">${c.html}</td>`;
          })
          .join("")}</tr>`,
    )
    .join("");
  return `<div class="tw"><table class="sortable ${cls}"><caption>${e(caption)}</caption><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

export const numCell = (n: number): Cell => ({ html: num(n), sort: n });
export const code = (s: string): string => `<code>${e(s)}</code>`;

export function errorsTable(groups: ErrorGroup[]): string {
  const rows = [...groups]
    .sort((a, b) => b.count - a.count)
    .map((g): Cell[] => [
      { html: `${code(g.field || "(record)")}<div class="sub">${e(g.schema_path)}</div>`, sort: g.field },
      code(g.keyword),
      e(g.message),
      numCell(g.count),
      g.expected ? e(g.expected) : "—",
      e(typeCounts(g.actual_types)),
      g.examples.length
        ? `<ul class="ex">${g.examples.map((x) => `<li>${code(x.record_id)} ${e(preview(x.value))}</li>`).join("")}</ul>`
        : "—",
    ]);
  const cols: Col[] = [
    { label: "Field" },
    { label: "Rule" },
    { label: "Message" },
    { label: "Count", num: true, sorted: "descending" },
    { label: "Expected" },
    { label: "Found" },
    { label: "Example records" },
  ];
  return table("t-errors", cols, rows, "Invalid records grouped by field and rule");
}

export function driftSection(d: DriftReport, s: StreamReport): string {
  const empty =
    !d.new_fields.length && !d.type_changes.length && !d.always_null.length && !d.missing_fields.length;
  const policy = `<p class="muted">Drift policy: <strong>${e(d.policy)}</strong>${d.breached ? ' — <strong class="bad">breached: the stream was not committed</strong>' : ""}</p>`;
  if (empty) return `${policy}<p class="empty">No drift against the schema.</p>`;
  const parts = [policy];
  if (d.new_fields.length) {
    const rows = d.new_fields.map((f): Cell[] => [
      code(f.field),
      numCell(f.count),
      e(f.examples.map((x) => preview(x, 40)).join(", ") || "—"),
      code(f.first_record),
    ]);
    const cols = [
      { label: "Field" },
      { label: "Records", num: true },
      { label: "Examples" },
      { label: "First record" },
    ];
    parts.push(
      `<h4>New fields (not in the schema)</h4>${table("t-new", cols, rows, "Fields not in the schema")}`,
    );
  }
  if (d.type_changes.length) {
    const rows = d.type_changes.map((t): Cell[] => {
      const n = Object.values(t.actual).reduce((a, b) => a + b, 0);
      return [code(t.field), e(t.expected.join(" or ")), { html: e(typeCounts(t.actual)), sort: n }];
    });
    const cols = [{ label: "Field" }, { label: "Schema expects" }, { label: "Found" }];
    parts.push(
      `<h4>Type changes</h4>${table("t-types", cols, rows, "Values whose type differs from the schema")}`,
    );
  }
  const chips = (xs: string[]) => `<ul class="chips">${xs.map((x) => `<li>${code(x)}</li>`).join("")}</ul>`;
  if (d.always_null.length) {
    const present = new Map(s.fields.map((f) => [f.name, f.present]));
    const items = d.always_null.map((f) => {
      const n = present.get(f);
      return `${code(f)}${n === undefined ? "" : ` <span class="muted">in ${plural(n, "record")}</span>`}`;
    });
    parts.push(
      `<h4>Always null</h4><p class="muted">Present, but null every time.</p><ul class="chips">${items.map((x) => `<li>${x}</li>`).join("")}</ul>`,
    );
  }
  if (d.missing_fields.length) {
    parts.push(
      `<h4>Schema fields never present</h4><p class="muted">In the schema, but in none of the ${num(s.records.seen)} records.</p>${chips(d.missing_fields)}`,
    );
  }
  return parts.join("");
}

export function fieldsTable(s: StreamReport): string {
  const total = Math.max(1, s.records.seen);
  const schemaCol = s.schema !== null;
  const rows = s.fields.map((f: FieldStats): Cell[] => [
    code(f.name),
    ...(schemaCol ? [f.in_schema ? "yes" : '<span class="tag new">new</span>'] : []),
    numCell(f.present),
    { html: formatPercent(f.present / total), sort: f.present / total },
    numCell(f.nulls),
    e(typeCounts(f.types)),
  ]);
  const cols: Col[] = [
    { label: "Field" },
    ...(schemaCol ? [{ label: "In schema" }] : []),
    { label: "Present", num: true },
    { label: "Presence", num: true },
    { label: "Nulls", num: true },
    { label: "Types" },
  ];
  return table("t-fields", cols, rows, "Every field seen, with presence and JSON types");
}

// ---------------------------------------------------------------------------------------------
// A stream's card

export function ratioBar(s: StreamReport): string {
  // Zoomed so that small ratios show, never past 100%: a 100% ratio fills the bar.
  const scale = Math.min(1, Math.max(s.invalid_ratio, s.max_invalid_ratio, 0.0001) * 1.25);
  const fill = (s.invalid_ratio / scale) * 100;
  const at = (s.max_invalid_ratio / scale) * 100;
  const over = s.invalid_ratio > s.max_invalid_ratio;
  const label = `${formatPercent(s.invalid_ratio)} invalid; the maximum allowed is ${formatPercent(s.max_invalid_ratio)}`;
  return (
    `<div class="ratio" role="img" aria-label="${e(label)}" title="${e(label)}">` +
    `<span class="fill${over ? " over" : ""}" style="width:${fill.toFixed(1)}%"></span>` +
    `<span class="max" style="left:calc(${at.toFixed(1)}% - 1px)"></span></div>`
  );
}
