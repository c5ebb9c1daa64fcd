/**
 * Anonymisation of a site's embeddings before upload (DESIGN §4): unit vectors only, shuffled,
 * no slice/exam index and no domain label; optional prototype mixing (each uploaded vector is the
 * normalised mean of m random slices' vectors) and Gaussian noise σ (added, then renormalised).
 * Received banks become L_MSC negatives with domain −1 (no identifier ever travels).
 */
import type { EmbeddingBank, NamedTensor } from "../model/api.js";
import { normal, permutation, type Random, randomInt } from "../random.js";

export interface AnonymiseOptions {
  /** Prototype mixing m ≥ 1 (1 = none). */
  mix: number;
  /** Gaussian noise σ ≥ 0. */
  noise: number;
  /** Seeded randomness (shuffle, mixing, noise): a src/random.ts generator. */
  random: Random;
}

function normalise(v: Float32Array): void {
  let sq = 0;
  for (let i = 0; i < v.length; i++) sq += v[i] * v[i];
  const n = Math.sqrt(sq) || 1;
  for (let i = 0; i < v.length; i++) v[i] /= n;
}

/** Own embeddings → wire tensors `embedding/scale<s>` [count, dim]: anonymised as configured. */
export function anonymiseEmbeddings(bank: EmbeddingBank, options: AnonymiseOptions): NamedTensor[] {
  const { mix, noise, random } = options;
  if (!Number.isInteger(mix) || mix < 1) throw new RangeError(`mix ${mix}, expected an integer ≥ 1`);
  if (!(noise >= 0)) throw new RangeError(`noise ${noise}, expected ≥ 0`);
  const count = bank.scales[0]?.count ?? 0;
  // Per output vector: the source rows (shared by all scales so a vector's scales stay aligned).
  const groups: number[][] = Array.from({ length: count }, (_, i) =>
    mix === 1 ? [i] : Array.from({ length: mix }, () => randomInt(random, count)),
  );
  const order = permutation(count, random);
  return bank.scales.map((s) => {
    const out = new Float32Array(count * s.dim);
    order.forEach((g, row) => {
      const v = new Float32Array(s.dim);
      for (const src of groups[g]) {
        for (let k = 0; k < s.dim; k++) v[k] += s.vectors[src * s.dim + k];
      }
      normalise(v);
      if (noise > 0) {
        for (let k = 0; k < s.dim; k++) v[k] += noise * normal(random);
        normalise(v);
      }
      out.set(v, row * s.dim);
    });
    return { name: `embedding/scale${s.scale}`, shape: [count, s.dim], data: out };
  });
}

/** Received tensors `embedding/scale<s>` → an EmbeddingBank of negatives (domain −1). */
export function bankFromTensors(tensors: readonly NamedTensor[]): EmbeddingBank | undefined {
  const scales = tensors
    .map((t) => {
      const m = /^embedding\/scale(\d+)$/.exec(t.name);
      if (!m || t.shape.length !== 2) return undefined;
      const [count, dim] = t.shape;
      return { scale: Number(m[1]), dim, vectors: t.data, count, domains: new Int32Array(count).fill(-1) };
    })
    .filter((s): s is NonNullable<typeof s> => s !== undefined && s.count > 0);
  return scales.length > 0 ? { scales } : undefined;
}
