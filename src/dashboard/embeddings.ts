/**
 * From the coordinator's embedding bank to what the page draws: a 2-D PCA projection per
 * scale (all sites pooled and centred, so the sites' clusters are comparable) and the
 * site × site mean cosine-similarity matrix per scale (intra-site on the diagonal over distinct
 * pairs, inter-site off the diagonal; the quantity of paper Table 5, from the same
 * `src/eval/cosine.ts` table as the reports). Pure functions.
 */
import { fjError } from "../errors.js";
import { cosineTable, dot, unitVector } from "../eval/cosine.js";
import type { CosineView, EmbeddingSnapshot, EmbeddingView, ScatterView } from "./types.js";

/** At most this many points per site and scale go to the browser (evenly strided). */
export const MAX_POINTS_PER_SITE = 300;

/**
 * Top-k principal axes of the rows of X (already centred) by power iteration with deflation,
 * computed as v ← Xᵀ(X v) so memory stays O(n·d). Deterministic start; sign fixed so that the
 * largest-magnitude component is positive.
 */
export function principalAxes(
  rows: Float64Array[],
  k: number,
  iterations = 200,
): { axes: Float64Array[]; variances: number[] } {
  const d = rows[0]?.length ?? 0;
  const axes: Float64Array[] = [];
  const variances: number[] = [];
  for (let c = 0; c < k; c++) {
    let v = new Float64Array(d);
    for (let i = 0; i < d; i++) v[i] = 1 + ((i * 7919 + c * 104729) % 1000) / 1000;
    let lambda = 0;
    for (let it = 0; it < iterations; it++) {
      for (const a of axes) {
        const p = dot(v, a);
        for (let i = 0; i < d; i++) v[i] = (v[i] as number) - p * (a[i] as number);
      }
      const next = new Float64Array(d);
      for (const r of rows) {
        const p = dot(r, v);
        for (let i = 0; i < d; i++) next[i] = (next[i] as number) + p * (r[i] as number);
      }
      for (const a of axes) {
        const p = dot(next, a);
        for (let i = 0; i < d; i++) next[i] = (next[i] as number) - p * (a[i] as number);
      }
      const norm = Math.sqrt(dot(next, next));
      if (norm === 0) break;
      for (let i = 0; i < d; i++) next[i] = (next[i] as number) / norm;
      const delta = Math.abs(Math.abs(dot(next, v) / Math.sqrt(dot(v, v) || 1)) - 1);
      v = next;
      lambda = norm;
      if (delta < 1e-12) break;
    }
    let maxIdx = 0;
    for (let i = 1; i < d; i++) if (Math.abs(v[i] as number) > Math.abs(v[maxIdx] as number)) maxIdx = i;
    if ((v[maxIdx] as number) < 0) for (let i = 0; i < d; i++) v[i] = -(v[i] as number);
    axes.push(v);
    variances.push(rows.length > 1 ? lambda / (rows.length - 1) : 0);
  }
  return { axes, variances };
}

interface ScaleData {
  scale: number;
  dim: number;
  sites: string[];
  vectors: Map<string, Float64Array[]>;
}

function scaleData(snapshot: EmbeddingSnapshot, index: number): ScaleData {
  const s = snapshot.scales[index];
  if (s === undefined) throw fjError("FJ_EMBEDDINGS_SHAPE", `scales[${index}] is missing`);
  const sites = Object.keys(s.sites).sort();
  let dim = -1;
  const vectors = new Map<string, Float64Array[]>();
  for (const site of sites) {
    const list = s.sites[site] ?? [];
    vectors.set(
      site,
      list.map((v, i) => {
        if (dim < 0) dim = v.length;
        return unitVector(v, dim, `embeddings scale ${s.scale} site ${site} vector ${i}`);
      }),
    );
  }
  return { scale: s.scale, dim: Math.max(dim, 0), sites, vectors };
}

/** Site × site mean cosine similarity of one scale (NaN where a pair has no two vectors). */
export function cosineMatrix(data: ScaleData): CosineView {
  const name = `s${data.scale}`;
  const cells = cosineTable(
    new Map(data.sites.map((site) => [site, { [name]: data.vectors.get(site) ?? [] }])),
    {
      seed: `dashboard/${name}`,
    },
  );
  const mean = new Map(cells.map((c) => [`${c.domainA}\u0000${c.domainB}`, c.mean]));
  const matrix = data.sites.map((a) => data.sites.map((b) => mean.get(`${a}\u0000${b}`) ?? Number.NaN));
  return { scale: data.scale, sites: data.sites, matrix };
}

export function pcaScatter(data: ScaleData): ScatterView {
  const all: { site: string; v: Float64Array }[] = [];
  for (const site of data.sites) {
    const list = data.vectors.get(site) ?? [];
    const stride = Math.max(1, Math.ceil(list.length / MAX_POINTS_PER_SITE));
    for (let i = 0; i < list.length; i += stride) all.push({ site, v: list[i] as Float64Array });
  }
  if (all.length === 0 || data.dim === 0) return { scale: data.scale, explained: [0, 0], points: [] };
  const mean = new Float64Array(data.dim);
  for (const { v } of all)
    for (let i = 0; i < data.dim; i++) mean[i] = (mean[i] as number) + (v[i] as number) / all.length;
  const centred = all.map(({ v }) => v.map((x, i) => x - (mean[i] as number)));
  let total = 0;
  for (const r of centred) total += dot(r, r);
  total = all.length > 1 ? total / (all.length - 1) : 0;
  const { axes, variances } = principalAxes(centred, Math.min(2, data.dim));
  const [a1, a2] = axes;
  return {
    scale: data.scale,
    explained: [total > 0 ? (variances[0] ?? 0) / total : 0, total > 0 ? (variances[1] ?? 0) / total : 0],
    points: centred.map((r, i) => ({
      site: (all[i] as { site: string }).site,
      x: a1 === undefined ? 0 : dot(r, a1),
      y: a2 === undefined ? 0 : dot(r, a2),
    })),
  };
}

/** The JSON served at /api/embeddings (scatter: the given scales, default first/middle/last). */
export function embeddingView(snapshot: EmbeddingSnapshot, scatterScales?: number[]): EmbeddingView {
  const scales = snapshot.scales.map((_, i) => scaleData(snapshot, i)).sort((a, b) => a.scale - b.scale);
  const shown = scatterScales ?? defaultScatterScales(scales.map((s) => s.scale));
  return {
    available: true,
    fold: snapshot.fold,
    phase: snapshot.phase,
    round: snapshot.round,
    scatter: scales.filter((s) => shown.includes(s.scale)).map(pcaScatter),
    cosine: scales.map(cosineMatrix),
  };
}

/** A wire tensor as the coordinator's embedding bank holds it (`embedding/scale<s>`, [count, dim], s 0-based). */
export interface BankTensor {
  name: string;
  shape: readonly number[];
  data: ArrayLike<number>;
}

/**
 * Builds the dashboard's snapshot from the coordinator's bank of one round: per site, the
 * tensors `embedding/scale<s>` ([count, dim], s = 0-based scale) → scales 1-based (s1 … s9).
 * Tensors with other names are ignored; a shape that does not match its data is an error.
 */
export function snapshotFromBank(
  ref: { fold: number; phase: EmbeddingSnapshot["phase"]; round: number },
  bank: ReadonlyMap<string, readonly BankTensor[]> | Readonly<Record<string, readonly BankTensor[]>>,
): EmbeddingSnapshot {
  const entries: [string, readonly BankTensor[]][] =
    bank instanceof Map ? [...bank.entries()] : Object.entries(bank as Record<string, readonly BankTensor[]>);
  const scales = new Map<number, Record<string, number[][]>>();
  for (const [site, tensors] of entries) {
    for (const t of tensors) {
      const m = /^embedding\/scale(\d+)$/.exec(t.name);
      if (m === null) continue;
      const [count, dim] = t.shape;
      if (t.shape.length !== 2 || count === undefined || dim === undefined || count * dim !== t.data.length) {
        throw fjError(
          "FJ_EMBEDDINGS_SHAPE",
          `bank of ${site}: ${t.name} has shape [${t.shape.join(",")}] and ${t.data.length} values, expected [count, dim]`,
        );
      }
      const scale = Number(m[1]) + 1;
      let bySite = scales.get(scale);
      if (bySite === undefined) {
        bySite = {};
        scales.set(scale, bySite);
      }
      const rows: number[][] = [];
      for (let i = 0; i < count; i++)
        rows.push(Array.from({ length: dim }, (_, k) => t.data[i * dim + k] as number));
      bySite[site] = rows;
    }
  }
  return {
    fold: ref.fold,
    phase: ref.phase,
    round: ref.round,
    scales: [...scales.entries()].sort((a, b) => a[0] - b[0]).map(([scale, sites]) => ({ scale, sites })),
  };
}

/** Default scatter scales: the first, the middle (bottleneck) and the last available (s1, s5, s9 at depth 5). */
export function defaultScatterScales(available: number[]): number[] {
  const s = [...new Set(available)].sort((a, b) => a - b);
  if (s.length === 0) return [];
  return [...new Set([s[0] as number, s[(s.length - 1) >> 1] as number, s[s.length - 1] as number])];
}
