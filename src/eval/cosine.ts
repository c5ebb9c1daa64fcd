import { fjError } from "../errors.js";
import { hashSeed, mulberry32, randomInt } from "../random.js";

/**
 * The one cosine-similarity table of the project: reports (paper Table 5) and the dashboard's
 * site × site matrices both come from here.
 *
 * Intra/inter-domain cosine similarity of embeddings: for each pair of domains
 * (a, b) — a = b is intra-domain — the mean and standard deviation (ddof 0) of cos(u, v) over pairs
 * u ∈ a, v ∈ b (u ≠ v when a = b). All pairs are used when there are at most `maxPairs` of them;
 * otherwise `maxPairs` pairs are drawn uniformly with replacement with a seeded generator (the paper
 * draws 10⁵ random pairs). Several groups (e.g. folds, which are different models) can be pooled:
 * pairs are only ever formed inside one group. A "domain" is whatever the caller groups by: a joint
 * in reports, a site on the dashboard. Vectors need not be normalised; a zero vector stays zero.
 */

export interface CosineCell {
  scale: string;
  domainA: string;
  domainB: string;
  mean: number;
  std: number;
  pairs: number;
  /** True when every pair was used, false when pairs were sampled. */
  exhaustive: boolean;
}

export interface CosineOptions {
  maxPairs?: number;
  seed?: string | number;
}

/** Vectors per scale name (e.g. "s1" … "s9") of one domain. */
export type VectorsByScale = Readonly<Record<string, ReadonlyArray<ArrayLike<number>>>>;

/**
 * v / ‖v‖ (a zero vector stays zero), checking its length and values; `where` names the vector in
 * the error (FJ_EMBEDDINGS_SHAPE, FJ_EMBEDDINGS_VALUE).
 */
export function unitVector(v: ArrayLike<number>, dim: number, where: string): Float64Array {
  if (v.length !== dim) {
    throw fjError("FJ_EMBEDDINGS_SHAPE", `${where}: vector of length ${v.length}, expected ${dim}`);
  }
  const out = new Float64Array(dim);
  let norm = 0;
  for (let i = 0; i < dim; i++) {
    const x = v[i];
    if (!Number.isFinite(x)) throw fjError("FJ_EMBEDDINGS_VALUE", `${where}: non-finite value at index ${i}`);
    out[i] = x;
    norm += x * x;
  }
  if (norm > 0) {
    const inv = 1 / Math.sqrt(norm);
    for (let i = 0; i < dim; i++) out[i] *= inv;
  }
  return out;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Accumulates cosine similarities per (scale, domainA, domainB) over groups. */
export class CosineAccumulator {
  private readonly acc = new Map<string, { sum: number; sumSq: number; n: number; exhaustive: boolean }>();
  private readonly maxPairs: number;
  private readonly seed: string;
  private group = 0;

  constructor(options: CosineOptions = {}) {
    this.maxPairs = options.maxPairs ?? 100_000;
    this.seed = String(options.seed ?? 0);
  }

  /**
   * Adds one group: per domain, per scale, a list of vectors. Every vector of a scale must have the
   * dimension of that scale's first vector (in sorted domain order) and finite values.
   */
  add(byDomain: ReadonlyMap<string, VectorsByScale>): void {
    const g = this.group++;
    const domains = [...byDomain.keys()].sort();
    const scales = new Set<string>();
    for (const d of domains) for (const s of Object.keys(byDomain.get(d)!)) scales.add(s);
    for (const scale of [...scales].sort()) {
      const vecs = new Map<string, Float64Array[]>();
      let dim = -1;
      for (const d of domains) {
        const list = byDomain.get(d)![scale];
        if (list === undefined || list.length === 0) continue;
        if (dim < 0) dim = list[0].length;
        vecs.set(
          d,
          list.map((v, i) => unitVector(v, dim, `embeddings scale ${scale} domain ${d} vector ${i}`)),
        );
      }
      const ds = [...vecs.keys()];
      for (let i = 0; i < ds.length; i++) {
        for (let j = i; j < ds.length; j++)
          this.addPair(scale, ds[i], ds[j], vecs.get(ds[i])!, vecs.get(ds[j])!, g);
      }
    }
  }

  private addPair(scale: string, da: string, db: string, a: Float64Array[], b: Float64Array[], g: number) {
    const key = JSON.stringify([scale, da, db]);
    const cell = this.acc.get(key) ?? { sum: 0, sumSq: 0, n: 0, exhaustive: true };
    const same = da === db;
    const total = same ? (a.length * (a.length - 1)) / 2 : a.length * b.length;
    if (total === 0) return;
    const push = (c: number) => {
      cell.sum += c;
      cell.sumSq += c * c;
      cell.n++;
    };
    if (total <= this.maxPairs) {
      for (let i = 0; i < a.length; i++) {
        for (let j = same ? i + 1 : 0; j < b.length; j++) push(dot(a[i], b[j]));
      }
    } else {
      cell.exhaustive = false;
      const rand = mulberry32(hashSeed("fedjoint-cosine", this.seed, g, scale, da, db));
      for (let k = 0; k < this.maxPairs; k++) {
        const i = randomInt(rand, a.length);
        let j = randomInt(rand, same ? b.length - 1 : b.length);
        if (same && j >= i) j++;
        push(dot(a[i], b[j]));
      }
    }
    this.acc.set(key, cell);
  }

  /** Cells for both orders (a, b) and (b, a), sorted by scale then domains. */
  cells(): CosineCell[] {
    const out: CosineCell[] = [];
    for (const [key, c] of this.acc) {
      const [scale, domainA, domainB] = JSON.parse(key) as [string, string, string];
      const mean = c.sum / c.n;
      const std = Math.sqrt(Math.max(0, c.sumSq / c.n - mean * mean));
      out.push({ scale, domainA, domainB, mean, std, pairs: c.n, exhaustive: c.exhaustive });
      if (domainA !== domainB)
        out.push({
          scale,
          domainA: domainB,
          domainB: domainA,
          mean,
          std,
          pairs: c.n,
          exhaustive: c.exhaustive,
        });
    }
    return out.sort(
      (x, y) =>
        scaleOrder(x.scale) - scaleOrder(y.scale) ||
        x.scale.localeCompare(y.scale) ||
        x.domainA.localeCompare(y.domainA) ||
        x.domainB.localeCompare(y.domainB),
    );
  }
}

/** "s1" < "s2" < … < "s10"; other names after, alphabetically. */
export function scaleOrder(scale: string): number {
  const m = /^s(\d+)$/.exec(scale);
  return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
}

/** One-shot helper: cosine table of a single group. */
export function cosineTable(
  byDomain: ReadonlyMap<string, VectorsByScale>,
  options: CosineOptions = {},
): CosineCell[] {
  const acc = new CosineAccumulator(options);
  acc.add(byDomain);
  return acc.cells();
}
