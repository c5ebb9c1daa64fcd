/**
 * Grouped bar charts as standalone SVG (no dependencies, readable without the table): one group
 * per site, one bar per series (a run, a method), the value on top of each bar, ± std as a whisker,
 * a legend. Used by the quality benchmark's report.md and by a study's own report (src/eval).
 */

export interface BarSeries {
  label: string;
  /** Value per group (site), in [0, max]; NaN or absent: no bar. */
  values: Record<string, number>;
  /** Optional ± whisker per group. */
  errors?: Record<string, number>;
}

export interface BarChartOptions {
  title: string;
  /** Axis label of the values, e.g. "test Dice (3D, post-processed)". */
  axis: string;
  groups: readonly string[];
  series: readonly BarSeries[];
  /** Top of the value axis (default 1). */
  max?: number;
  /** Print values ×100 with no decimals (Dice in points) instead of two decimals. */
  percent?: boolean;
}

/** Colour-blind-safe palette (Okabe–Ito), cycled. */
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

export function barChartSvg(o: BarChartOptions): string {
  const max = o.max ?? 1;
  const n = Math.max(o.series.length, 1);
  const bar = Math.max(8, Math.min(28, Math.floor(360 / n)));
  const groupWidth = n * bar + 24;
  const left = 56;
  const top = 40;
  const plotH = 220;
  const legendRows = Math.ceil(o.series.length / 2);
  const width = Math.max(left + o.groups.length * groupWidth + 16, 560);
  const height = top + plotH + 40 + legendRows * 18 + 12;
  const y = (v: number) => top + plotH - (Math.min(Math.max(v, 0), max) / max) * plotH;
  const fmt = (v: number) => (o.percent ? (v * 100).toFixed(0) : v.toFixed(2));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`,
    `<text x="14" y="${top + plotH / 2}" text-anchor="middle" transform="rotate(-90 14 ${top + plotH / 2})">${esc(o.axis)}</text>`,
  ];
  for (let k = 0; k <= 5; k++) {
    const v = (max * k) / 5;
    parts.push(
      `<line x1="${left}" x2="${width - 8}" y1="${y(v)}" y2="${y(v)}" stroke="#dddddd"/>`,
      `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  o.groups.forEach((g, gi) => {
    const x0 = left + gi * groupWidth + 12;
    parts.push(
      `<text x="${x0 + (n * bar) / 2}" y="${top + plotH + 16}" text-anchor="middle" font-weight="bold">${esc(g)}</text>`,
    );
    o.series.forEach((s, si) => {
      const v = s.values[g];
      if (v === undefined || !Number.isFinite(v)) return;
      const x = x0 + si * bar;
      const colour = PALETTE[si % PALETTE.length];
      parts.push(
        `<rect x="${x + 1}" y="${y(v)}" width="${bar - 2}" height="${top + plotH - y(v)}" fill="${colour}"><title>${esc(`${s.label} · ${g}: ${fmt(v)}`)}</title></rect>`,
      );
      const e = s.errors?.[g];
      if (e !== undefined && Number.isFinite(e) && e > 0) {
        const cx = x + bar / 2;
        parts.push(`<line x1="${cx}" x2="${cx}" y1="${y(v + e)}" y2="${y(v - e)}" stroke="#333333"/>`);
      }
      parts.push(
        `<text x="${x + bar / 2}" y="${y(v) - 3}" text-anchor="middle" font-size="${bar < 16 ? 8 : 10}">${fmt(v)}</text>`,
      );
    });
  });
  o.series.forEach((s, si) => {
    const col = si % 2;
    const row = Math.floor(si / 2);
    const x = left + col * ((width - left) / 2);
    const yy = top + plotH + 34 + row * 18;
    parts.push(
      `<rect x="${x}" y="${yy - 9}" width="12" height="12" fill="${PALETTE[si % PALETTE.length]}"/>`,
      `<text x="${x + 16}" y="${yy + 1}">${esc(s.label)}</text>`,
    );
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
