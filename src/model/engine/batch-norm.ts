import { tf } from "./tf.js";

export interface NormalizeResult {
  y: tf.Tensor;
  mean: tf.Tensor;
  variance: tf.Tensor;
}

/**
 * Training-mode batch normalisation over axis 1 of x [G, M, C] (G independent groups — one per
 * domain — of M values per channel), with γ, β of shape [G, 1, C]. Closed-form gradient
 *   dx = γ·r·(dy − mean(dy) − x̂·mean(dy·x̂)),  dγ = Σ dy·x̂,  dβ = Σ dy,
 * so the backward pass costs two reductions instead of differentiating through the moments.
 * Returns the biased batch mean and variance ([G, 1, C]) for the running statistics.
 */
export function batchNormTrain(x: tf.Tensor3D, gamma: tf.Tensor3D, beta: tf.Tensor3D, epsilon: number): NormalizeResult {
  const m = x.shape[1];
  let stats: { mean: tf.Tensor; variance: tf.Tensor } | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
    const { mean, variance } = tf.moments(xi, [1], true);
    const rstd = tf.rsqrt(tf.add(variance, epsilon));
    const xhat = tf.mul(tf.sub(xi, mean), rstd);
    save([xhat, rstd, g]);
    stats = { mean: tf.keep(mean.clone()), variance: tf.keep(variance.clone()) };
    const value = tf.add(tf.mul(xhat, g), b);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xh, r, gs] = saved;
      const sumDy = tf.sum(dy, 1, true);
      const sumDyXhat = tf.sum(tf.mul(dy, xh), 1, true);
      const dx = tf.mul(
        tf.mul(gs, r),
        tf.sub(tf.sub(dy, tf.div(sumDy, m)), tf.mul(xh, tf.div(sumDyXhat, m))),
      );
      return [dx, sumDyXhat, sumDy];
    };
    return { value, gradFunc };
  });
  const y = op(x, gamma, beta);
  if (!stats) throw new Error("batchNormTrain: forward did not run");
  return { y, mean: stats.mean, variance: stats.variance };
}
