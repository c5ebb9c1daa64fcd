import { tf } from "../engine/tf.js";

/**
 * L_MJAP (paper eq. 7): distance between the anatomical codes of ground truth and prediction
 * under the frozen encoder F, averaged within each domain and then over the domains present:
 *
 *   L = 1/K Σ_k 1/n_k Σ_i ‖F(y_i^k) − F(ŷ_i^k)‖² / D
 *
 * `codesTrue[k]` / `codesPred[k]` are F's bottleneck maps [n_k, h, w, c] per domain group. The
 * squared norm is divided by the code size D = h·w·c (PyTorch's MSELoss with its default mean
 * reduction, as in the ACNN anatomical-prior implementations), so that λ3 does not depend on the
 * image size or the network width. Zero when prediction and ground truth coincide.
 */
export function anatomicalPriorLoss(codesTrue: tf.Tensor4D[], codesPred: tf.Tensor4D[]): tf.Scalar {
  if (codesTrue.length !== codesPred.length)
    throw new RangeError("L_MJAP: as many predicted as true code groups expected");
  const perDomain = codesTrue.map((t, k) => tf.mean(tf.squaredDifference(t, codesPred[k])));
  return (perDomain.length === 1 ? perDomain[0] : tf.div(tf.addN(perDomain), perDomain.length)) as tf.Scalar;
}
