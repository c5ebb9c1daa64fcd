import { tf } from "./tf.js";

export interface NormalizeResult {
  y: tf.Tensor4D;
  /** Biased batch mean and variance per group, [G, 1, 1, C] (caller disposes). */
  mean: tf.Tensor4D;
  variance: tf.Tensor4D;
}

/** Mean over each group's spatial extent: x [G, A, B, C] → [G, 1, 1, C]. One pooling kernel
 *  (a full-window average pool is an order of magnitude faster on wasm than tf.mean over
 *  non-trailing axes, which transposes first). */
function groupMean(x: tf.Tensor4D): tf.Tensor4D {
  const [, a, b] = x.shape;
  return tf.avgPool(x, [a, b], [a, b], "valid");
}

/**
 * Training-mode batch normalisation of x [G, A, B, C]: each of the G groups (one per domain) is
 * normalised with its own batch statistics over its A·B positions, then scaled by γ [G,1,1,C] and
 * shifted by β [G,1,1,C]. Closed-form gradient with d = x − μ, r = 1/√(σ² + ε):
 *   dx = γr·(dy − mean(dy)) − γr³·d·mean(dy·d),  dγ = r·Σ dy·d,  dβ = Σ dy
 * — two pooled reductions and a handful of element-wise kernels, instead of differentiating
 * through the moments.
 */
export function batchNormTrain(
  x: tf.Tensor4D,
  gamma: tf.Tensor4D,
  beta: tf.Tensor4D,
  epsilon: number,
): NormalizeResult {
  const [, a, b] = x.shape;
  const m = a * b;
  let stats: { mean: tf.Tensor4D; variance: tf.Tensor4D } | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, be, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
    const mean = groupMean(xi);
    const d = tf.sub(xi, mean);
    const variance = groupMean(tf.square(d) as tf.Tensor4D);
    const r = tf.rsqrt(tf.add(variance, epsilon));
    save([d, r, g]);
    stats = { mean: tf.keep(mean.clone()), variance: tf.keep(variance.clone()) };
    const value = tf.add(tf.mul(d, tf.mul(g, r)), be);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [ds, rs, gs] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
      const dy4 = dy as tf.Tensor4D;
      const meanDy = groupMean(dy4);
      const meanDyD = groupMean(tf.mul(dy4, ds));
      const gr = tf.mul(gs, rs);
      const dx = tf.sub(
        tf.mul(tf.sub(dy4, meanDy), gr),
        tf.mul(ds, tf.mul(tf.mul(gr, tf.square(rs)), meanDyD)),
      );
      return [dx, tf.mul(tf.mul(meanDyD, rs), m), tf.mul(meanDy, m)];
    };
    return { value, gradFunc };
  });
  const y = op(x, gamma, beta) as tf.Tensor4D;
  if (!stats) throw new Error("batchNormTrain: forward did not run");
  return { y, mean: stats.mean, variance: stats.variance };
}
