import { tf } from "../engine/tf.js";

/** Extra negatives of one scale: unit vectors without gradient, labelled by domain index. */
export interface BankScale {
  /** [M, d] unit vectors (treated as constants). */
  vectors: tf.Tensor2D;
  /** Domain index of each vector (JOINTS.indexOf(joint)), length M. */
  domains: Int32Array;
}

/**
 * Supervised contrastive term of one scale (paper eq. 5 for a single s), over anchors z [N, d]
 * (unit vectors, with gradient) labelled `domains` (length N):
 *
 *   ℓ = −1/|A| Σ_{i∈A} 1/|P_i| Σ_{p∈P_i} log( exp(z_i·c_p/τ) / Σ_{a≠i} exp(z_i·c_a/τ) )
 *
 * where the candidates c are the batch itself followed by the bank vectors (no gradient), P_i =
 * candidates of the anchor's domain other than i itself (bank vectors of that domain count as
 * positives too; in the federated setting the bank holds other sites' domains only, so it adds
 * negatives), the denominator runs over every candidate but i, and A = anchors with at least one
 * positive (eq. 5 averages over all n anchors; they coincide whenever every domain of the batch
 * has ≥ 2 samples). Returns 0 when no anchor has a positive.
 */
export function contrastiveScale(
  z: tf.Tensor2D,
  domains: Int32Array,
  tau: number,
  bank?: BankScale,
): tf.Scalar {
  const n = z.shape[0];
  const m = bank ? bank.vectors.shape[0] : 0;
  const total = n + m;
  const candDomains = new Int32Array(total);
  candDomains.set(domains, 0);
  if (bank) candDomains.set(bank.domains, n);
  const pos = new Float32Array(n * total);
  const self = new Float32Array(n * total);
  const anchorWeight = new Float32Array(n);
  let anchors = 0;
  for (let i = 0; i < n; i++) {
    let count = 0;
    for (let j = 0; j < total; j++) {
      if (j === i) self[i * total + j] = 1;
      else if (candDomains[j] === domains[i]) {
        pos[i * total + j] = 1;
        count++;
      }
    }
    if (count > 0) {
      anchors++;
      for (let j = 0; j < total; j++) pos[i * total + j] /= count;
      anchorWeight[i] = 1;
    }
  }
  if (anchors === 0) return tf.scalar(0);
  return tf.tidy(() => {
    const cand = bank ? tf.concat([z, constant(bank.vectors)], 0) : z;
    const logits = tf.div(tf.matMul(z, cand, false, true), tau); // [N, N+M]
    // Remove the anchor itself from the denominator (a large negative, exp → 0).
    const masked = tf.add(logits, tf.mul(tf.tensor2d(self, [n, total]), -1e9));
    const logDenom = tf.logSumExp(masked, 1, true); // [N, 1]
    const logProb = tf.sub(logits, logDenom);
    const perAnchor = tf.sum(tf.mul(logProb, tf.tensor2d(pos, [n, total])), 1); // Σ_p log p / |P_i|
    return tf.div(tf.neg(tf.sum(tf.mul(perAnchor, tf.tensor1d(anchorWeight)))), anchors) as tf.Scalar;
  });
}

/**
 * The bank's vectors as constants: identity forward, zero gradient. They are other sites' (or
 * other rounds') embeddings — never parameters this step may move, whatever tensor holds them.
 */
function constant(x: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const v = args[0] as tf.Tensor2D;
    return { value: tf.clone(v), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
  });
  return op(x) as tf.Tensor2D;
}

/**
 * L_MSC (paper eq. 5): the supervised contrastive term averaged over the chosen scales.
 * `embeddings[s]` is [N, d_s] of unit vectors for scale s (all scales of the network);
 * `scales` picks which ones take part (all → L_MSC, [bottleneck] → L_SSC); `bank[s]` optionally
 * adds constant negatives for scale s.
 */
export function multiScaleContrastive(
  embeddings: tf.Tensor2D[],
  domains: Int32Array,
  options: { tau: number; scales: readonly number[]; bank?: ReadonlyMap<number, BankScale> },
): tf.Scalar {
  const terms = options.scales.map((s) => {
    const z = embeddings[s];
    if (!z)
      throw new RangeError(`L_MSC scale ${s} does not exist (the network has ${embeddings.length} scales)`);
    return contrastiveScale(z, domains, options.tau, options.bank?.get(s));
  });
  if (terms.length === 0) return tf.scalar(0);
  return (terms.length === 1 ? terms[0] : tf.div(tf.addN(terms), terms.length)) as tf.Scalar;
}
