/** The summary's table fits 80 columns: a long last column ("stopped because") moves below it. */
export const SUMMARY_WIDTH = 80;

export function fitTable(
  header: string[],
  rows: string[][],
  width = SUMMARY_WIDTH,
): { header: string[]; rows: string[][]; below: string[] } {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const total = 2 + widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
  if (total <= width) return { header, rows, below: [] };
  const last = header.length - 1;
  return {
    header: header.slice(0, last),
    rows: rows.map((r) => r.slice(0, last)),
    below: rows.filter((r) => r[last]).map((r) => `  ${r[0]}: ${header[last]} ${r[last]}`),
  };
}
