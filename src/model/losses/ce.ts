import { oneHotFloat } from "../engine/one-hot.js";
import { tf } from "../engine/tf.js";

/**
 * L_CE (paper eq. 1): pixel-wise cross-entropy averaged within each domain, then averaged over
 * the domains present — each domain weighs the same whatever its share of the batch.
 *
 * `logits[k]` is [n_k, H, W, C_k]; `labels[k]` is an int32 [n_k, H, W] tensor of class indices.
 */
export function domainCrossEntropy(logits: tf.Tensor4D[], labels: tf.Tensor3D[]): tf.Scalar {
  const perDomain = logits.map((l, k) => {
    const classes = l.shape[3];
    const onehot = oneHotFloat(labels[k], classes);
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(l)), -1)));
  });
  return (perDomain.length === 1 ? perDomain[0] : tf.div(tf.addN(perDomain), perDomain.length)) as tf.Scalar;
}
