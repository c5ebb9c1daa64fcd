/**
 * The coordinator's embedding bank: per (fold, phase, round) and site, the anonymised per-scale
 * unit vectors a site uploaded after training that round. A site asking for the bank of a round
 * gets the OTHER sites' vectors, concatenated per scale and shuffled with one permutation shared
 * by every scale (row i of each scale is the same slice, as the uploader sent it), with no site,
 * slice or exam identifiers. Only the previous round's bank is ever served, so older ones are
 * dropped. Persistence (files) belongs to the Study; this module holds the vectors and the rules.
 */
import { randomInt } from "node:crypto";
import type { NamedTensor } from "../model/api.js";
import { hashSeed, mulberry32, shuffle } from "../random.js";
import type { Phase } from "../study/methods.js";

export interface BankRef {
  fold: number;
  phase: Phase;
  round: number;
}

const key = (r: BankRef) => `${r.fold}/${r.phase}/${r.round}`;

/** A tensor as a stream header announces it. */
export interface EmbeddingSpec {
  name: string;
  shape: readonly number[];
  dtype?: string;
}

/**
 * Embedding sets as a site must send them: one tensor `embedding/scale<s>` per scale of the
 * network (dims[s] wide), 2-D [count, dim], the same count ≤ `maxRows` at every scale, an allowed
 * dtype. Checked on the stream's header, before any payload byte is read (it also bounds the
 * stream's size to maxRows · Σ dims values). Returns the first problem, or undefined.
 */
export function checkEmbeddingSpecs(
  specs: readonly EmbeddingSpec[],
  expected: { dims: readonly number[]; maxRows: number; dtypes?: readonly string[] },
): string | undefined {
  if (specs.length !== expected.dims.length)
    return `${specs.length} embedding tensors, expected one per scale (${expected.dims.length})`;
  let rows: number | undefined;
  const seen = new Set<number>();
  for (const t of specs) {
    const m = /^embedding\/scale(\d+)$/.exec(t.name);
    const scale = m ? Number(m[1]) : -1;
    if (!(scale >= 0 && scale < expected.dims.length))
      return `tensor ${t.name.slice(0, 64)}: expected names embedding/scale0..${expected.dims.length - 1}`;
    if (seen.has(scale)) return `tensor ${t.name} twice`;
    seen.add(scale);
    if (t.dtype !== undefined && expected.dtypes !== undefined && !expected.dtypes.includes(t.dtype))
      return `tensor ${t.name}: dtype ${t.dtype}, expected ${expected.dtypes.join(" or ")}`;
    const dim = expected.dims[scale];
    if (t.shape.length !== 2 || t.shape[1] !== dim)
      return `tensor ${t.name}: shape [${t.shape.join(",")}], expected [count, ${dim}]`;
    const n = t.shape[0];
    if (rows === undefined) rows = n;
    if (n !== rows) return `tensor ${t.name}: ${n} vectors, other scales have ${rows}`;
    if (n < 1 || n > expected.maxRows)
      return `tensor ${t.name}: ${n} vectors, expected 1..${expected.maxRows}`;
  }
  return undefined;
}

/**
 * Decoded embedding sets: the specs as above, then finite unit rows. Returns the first problem,
 * or undefined.
 */
export function checkEmbeddings(
  tensors: readonly NamedTensor[],
  expected: { dims: readonly number[]; maxRows: number },
): string | undefined {
  const specs = checkEmbeddingSpecs(tensors, expected);
  if (specs !== undefined) return specs;
  for (const t of tensors) {
    const [n, dim] = t.shape;
    if (t.data.length !== n * dim) return `tensor ${t.name}: ${t.data.length} values for shape [${n},${dim}]`;
    for (let i = 0; i < n; i++) {
      let sq = 0;
      for (let k = 0; k < dim; k++) {
        const v = t.data[i * dim + k];
        if (!Number.isFinite(v)) return `tensor ${t.name}: non-finite value in vector ${i}`;
        sq += v * v;
      }
      if (Math.abs(Math.sqrt(sq) - 1) > 1e-2)
        return `tensor ${t.name}: vector ${i} has norm ${Math.sqrt(sq).toFixed(4)}, expected unit vectors`;
    }
  }
  return undefined;
}

export class EmbeddingBank {
  private readonly rounds = new Map<string, Map<string, NamedTensor[]>>();

  /**
   * `reproducibleSeed` (simulations and benchmarks only: `coordinator --reproducible-seed`): the
   * served rows' order derives from it instead of the OS's randomness, so that a simulated study
   * repeats exactly. In a real study it stays unset: anyone who knew it could tell the sites'
   * rows apart.
   */
  constructor(private readonly reproducibleSeed?: number) {}

  has(ref: BankRef, site: string): boolean {
    return this.rounds.get(key(ref))?.has(site) === true;
  }

  /** Stores a site's (checked) vectors of a round. */
  put(ref: BankRef, site: string, tensors: NamedTensor[]): void {
    let round = this.rounds.get(key(ref));
    if (!round) {
      round = new Map();
      this.rounds.set(key(ref), round);
    }
    round.set(site, tensors);
  }

  /** Drops every round but those `keep` accepts. */
  retain(keep: (ref: BankRef) => boolean): void {
    for (const k of [...this.rounds.keys()]) {
      const [fold, phase, round] = k.split("/");
      if (!keep({ fold: Number(fold), phase: phase as Phase, round: Number(round) })) this.rounds.delete(k);
    }
  }

  /** Number of sites other than `site` with vectors for `ref`. */
  othersCount(ref: BankRef, site: string): number {
    return [...(this.rounds.get(key(ref))?.keys() ?? [])].filter((s) => s !== site).length;
  }

  /** The other sites' vectors of `ref` per scale, rows shuffled, no identifiers ([] when none). */
  othersOf(site: string, ref: BankRef): NamedTensor[] {
    const parts = [...(this.rounds.get(key(ref))?.entries() ?? [])]
      .filter(([s]) => s !== site)
      .map(([, t]) => t);
    if (parts.length === 0) return [];
    const stacked = parts[0].map((first) => {
      const pieces = parts
        .map((p) => p.find((t) => t.name === first.name))
        .filter((t): t is NamedTensor => t !== undefined);
      const dim = first.shape[1];
      const rows = pieces.reduce((n, t) => n + t.shape[0], 0);
      const data = new Float32Array(rows * dim);
      let o = 0;
      for (const p of pieces) {
        data.set(p.data, o);
        o += p.data.length;
      }
      return { name: first.name, shape: [rows, dim], data };
    });
    const rows = stacked[0].shape[0];
    // not seeded by the study: the order must not be reproducible by anyone who knows its seed
    const random =
      this.reproducibleSeed === undefined
        ? () => randomInt(2 ** 47) / 2 ** 47
        : mulberry32(hashSeed(this.reproducibleSeed, site, key(ref)));
    const perm = shuffle(
      Array.from({ length: rows }, (_, i) => i),
      random,
    );
    return stacked.map((t) => {
      const dim = t.shape[1];
      const data = new Float32Array(t.data.length);
      perm.forEach((src, dst) => {
        data.set(t.data.subarray(src * dim, (src + 1) * dim), dst * dim);
      });
      return { name: t.name, shape: t.shape, data };
    });
  }

  /** Every site's vectors of `ref` (the operator's dashboard: scatter and cosine matrices). */
  sitesOf(ref: BankRef): ReadonlyMap<string, NamedTensor[]> {
    return this.rounds.get(key(ref)) ?? new Map();
  }
}
