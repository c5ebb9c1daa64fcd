import { withoutTape } from "./backprop.js";
import { FUSED } from "./native/index.js";
import { tf } from "./tf.js";

export interface NormalizeResult {
  y: tf.Tensor4D;
  /** Biased batch mean and variance per group, [G, 1, 1, C] (caller disposes). */
  mean: tf.Tensor4D;
  variance: tf.Tensor4D;
}

export interface BatchNormOptions {
  /** Apply ReLU to the output (one fused kernel on the native backend; the BN output itself is never kept). */
  relu?: boolean;
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
 * shifted by β [G,1,1,C], then optionally passed through ReLU. Closed-form gradient with
 * d = x − μ, r = 1/√(σ² + ε) and dy masked by the ReLU:
 *   dx = γr·(dy − mean(dy)) − γr³·d·mean(dy·d),  dγ = r·Σ dy·d,  dβ = Σ dy
 * On the native backend forward and gradient are one kernel each; elsewhere two pooled
 * reductions and a handful of element-wise kernels.
 */
export function batchNormTrain(
  x: tf.Tensor4D,
  gamma: tf.Tensor4D,
  beta: tf.Tensor4D,
  epsilon: number,
  options: BatchNormOptions = {},
): NormalizeResult {
  const relu = options.relu ?? false;
  const fused = tf.getKernel(FUSED.batchNorm, tf.getBackend()) !== undefined;
  let stats: { mean: tf.Tensor4D; variance: tf.Tensor4D } | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, be, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
    if (fused) {
      const attrs = { epsilon, relu } as unknown as tf.NamedAttrMap;
      const [value, mean, variance] = tf
        .engine()
        .runKernel(FUSED.batchNorm, { x: xi, gamma: g, beta: be }, attrs) as [
        tf.Tensor4D,
        tf.Tensor4D,
        tf.Tensor4D,
      ];
      save(relu ? [xi, g, mean, variance, value] : [xi, g, mean, variance]);
      stats = { mean: tf.keep(mean), variance: tf.keep(variance) };
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, gs, ms, vs, ys] = saved;
        const inputs = { dy, x: xs, gamma: gs, mean: ms, variance: vs, ...(relu ? { y: ys } : {}) };
        return tf.engine().runKernel(FUSED.batchNormGrad, inputs, attrs) as tf.Tensor[];
      };
      return { value, gradFunc };
    }
    const [, a, b] = xi.shape;
    const m = a * b;
    const mean = groupMean(xi);
    const d = tf.sub(xi, mean);
    const variance = groupMean(tf.square(d) as tf.Tensor4D);
    const r = tf.rsqrt(tf.add(variance, epsilon));
    stats = { mean: tf.keep(mean.clone()), variance: tf.keep(variance.clone()) };
    const normalized = tf.add(tf.mul(d, tf.mul(g, r)), be) as tf.Tensor4D;
    const value = relu ? tf.relu(normalized) : normalized;
    save(relu ? [d, r, g, value] : [d, r, g]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [ds, rs, gs, ys] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D | undefined];
      const dy4 = (ys ? tf.mul(dy, tf.step(ys)) : dy) as tf.Tensor4D;
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

/**
 * A running statistic's next value: (1 − momentum)·running + momentum·scale·batch[row], with
 * running [C] and batch [G, 1, 1, C] (row = the domain group). Off the gradient tape; one kernel
 * on the native backend instead of six.
 */
export function runningAverage(
  running: tf.Tensor,
  batch: tf.Tensor4D,
  row: number,
  scale: number,
  momentum: number,
): tf.Tensor {
  return withoutTape(() => {
    if (tf.getKernel(FUSED.runningAverage, tf.getBackend())) {
      const attrs = { row, a: 1 - momentum, b: momentum * scale } as unknown as tf.NamedAttrMap;
      return tf.engine().runKernel(FUSED.runningAverage, { running, batch }, attrs) as tf.Tensor;
    }
    const c = batch.shape[3];
    return tf.tidy(() =>
      tf.add(
        tf.mul(running, 1 - momentum),
        tf.mul(tf.slice(batch, [row, 0, 0, 0], [1, 1, 1, c]).reshape([c]), momentum * scale),
      ),
    );
  });
}
