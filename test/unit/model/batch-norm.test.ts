import "@tensorflow/tfjs-backend-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { batchNormTrain } from "../../../src/model/engine/batch-norm.js";
import { tf } from "../../../src/model/engine/tf.js";

/** Reference: the textbook formula differentiated by tfjs itself. */
function reference(x: tf.Tensor4D, g: tf.Tensor4D, b: tf.Tensor4D) {
  const { mean, variance } = tf.moments(x, [1, 2], true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
}

describe("batchNormTrain (grouped, closed-form gradient)", () => {
  beforeAll(async () => {
    await tf.setBackend("cpu");
  });
  for (const backend of ["cpu", "wasm"] as const) {
    it(`${backend}: values, statistics and gradients match tfjs autodiff`, async () => {
      await tf.setBackend(backend);
      tf.tidy(() => {
        const x = tf.add(tf.mul(tf.randomNormal([3, 10, 6, 4], 0, 1, "float32", 1), 3), 2) as tf.Tensor4D;
        const g = tf.randomNormal([3, 1, 1, 4], 1, 0.3, "float32", 2) as tf.Tensor4D;
        const b = tf.randomNormal([3, 1, 1, 4], 0, 0.3, "float32", 3) as tf.Tensor4D;
        const dy = tf.randomNormal([3, 10, 6, 4], 0, 1, "float32", 4);
        const ours = batchNormTrain(x, g, b, 1e-5);
        const ref = reference(x, g, b);
        expect(tf.max(tf.abs(tf.sub(ours.y, ref))).dataSync()[0]).toBeLessThan(1e-4);
        const { mean, variance } = tf.moments(x, [1, 2], true);
        expect(tf.max(tf.abs(tf.sub(ours.mean, mean))).dataSync()[0]).toBeLessThan(1e-4);
        expect(tf.max(tf.abs(tf.sub(ours.variance, variance))).dataSync()[0]).toBeLessThan(1e-3);
        const gOurs = tf.grads(
          (xi, gi, bi) => batchNormTrain(xi as tf.Tensor4D, gi as tf.Tensor4D, bi as tf.Tensor4D, 1e-5).y,
        )([x, g, b], dy);
        const gRef = tf.grads((xi, gi, bi) =>
          reference(xi as tf.Tensor4D, gi as tf.Tensor4D, bi as tf.Tensor4D),
        )([x, g, b], dy);
        for (let i = 0; i < 3; i++) {
          const scale = Math.max(1e-6, tf.max(tf.abs(gRef[i])).dataSync()[0]);
          expect(tf.max(tf.abs(tf.sub(gOurs[i], gRef[i]))).dataSync()[0] / scale).toBeLessThan(1e-4);
        }
        tf.dispose([ours.mean, ours.variance]);
      });
    });
  }
});
