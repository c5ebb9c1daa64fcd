import "@tensorflow/tfjs-backend-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { useBackend } from "../../../src/model/engine/backend.js";
import { batchNormTrain, runningAverage } from "../../../src/model/engine/batch-norm.js";
import { tf } from "../../../src/model/engine/tf.js";

/** Reference: the textbook formula (then ReLU) differentiated by tfjs itself. */
function reference(x: tf.Tensor4D, g: tf.Tensor4D, b: tf.Tensor4D, relu: boolean) {
  const { mean, variance } = tf.moments(x, [1, 2], true);
  const y = tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
  return relu ? tf.relu(y) : y;
}

type Arrays = Float32Array[];

/** Values, batch statistics and the gradients of x, γ, β for one upstream gradient dy. */
function evaluate(
  f: (x: tf.Tensor4D, g: tf.Tensor4D, b: tf.Tensor4D) => { y: tf.Tensor; stats?: tf.Tensor[] },
): Arrays {
  return tf.tidy(() => {
    const x = tf.add(tf.mul(tf.randomNormal([3, 10, 6, 4], 0, 1, "float32", 1), 3), 2) as tf.Tensor4D;
    const g = tf.randomNormal([3, 1, 1, 4], 1, 0.3, "float32", 2) as tf.Tensor4D;
    const b = tf.randomNormal([3, 1, 1, 4], 0, 0.3, "float32", 3) as tf.Tensor4D;
    const dy = tf.randomNormal([3, 10, 6, 4], 0, 1, "float32", 4);
    const out = f(x, g, b);
    const grads = tf.grads((xi, gi, bi) => f(xi as tf.Tensor4D, gi as tf.Tensor4D, bi as tf.Tensor4D).y)(
      [x, g, b],
      dy,
    );
    return [out.y, ...(out.stats ?? []), ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 1e-6;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

describe("batchNormTrain (grouped, closed-form gradient, optional fused ReLU)", () => {
  beforeAll(async () => {
    await tf.setBackend("cpu");
  });
  for (const relu of [false, true]) {
    for (const backend of ["cpu", "wasm", "native"] as const) {
      it(`${backend}${relu ? " + relu" : ""}: values, statistics and gradients match tf.grads of the textbook formula on cpu`, async () => {
        await tf.setBackend("cpu");
        const ref = evaluate((x, g, b) => {
          const { mean, variance } = tf.moments(x, [1, 2], true);
          return { y: reference(x, g, b, relu), stats: [mean, variance] };
        });
        await useBackend(backend);
        const got = evaluate((x, g, b) => {
          const r = batchNormTrain(x, g, b, 1e-5, { relu });
          return { y: r.y, stats: [r.mean, r.variance] };
        });
        // y, mean, variance, dx, dγ, dβ (relative to each reference's largest magnitude)
        for (const [i, r] of ref.entries()) expect(maxRel(got[i], r), `output ${i}`).toBeLessThan(1e-4);
        await tf.setBackend("cpu");
      });
    }
  }
  for (const backend of ["cpu", "wasm", "native"] as const) {
    it(`${backend}: runningAverage = (1 − m)·running + m·scale·batch[row], nothing recorded for gradients`, async () => {
      await useBackend(backend);
      tf.tidy(() => {
        const running = tf.tensor1d([1, 2, 3]);
        const batch = tf.tensor4d([10, 20, 30, 40, 50, 60], [2, 1, 1, 3]);
        const next = runningAverage(running, batch, 1, 2, 0.1).dataSync();
        const want = [0.9 * 1 + 0.2 * 40, 0.9 * 2 + 0.2 * 50, 0.9 * 3 + 0.2 * 60];
        for (let i = 0; i < 3; i++) expect(next[i]).toBeCloseTo(want[i], 5);
        const v = tf.variable(tf.ones([3]), true, `ra_${backend}_${Math.random()}`);
        const g = tf.grad((t: tf.Tensor) => tf.add(tf.sum(t), tf.sum(runningAverage(v, batch, 0, 1, 0.5))))(
          v,
        );
        expect(Array.from(g.dataSync())).toEqual([1, 1, 1]);
        v.dispose();
      });
      await tf.setBackend("cpu");
    });
  }
});
