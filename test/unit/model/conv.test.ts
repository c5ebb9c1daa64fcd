import { tf } from "../../../src/model/engine/tf.js";

import "@tensorflow/tfjs-backend-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { useBackend } from "../../../src/model/engine/backend.js";
import { type ConvPadding, conv2d, conv2dSum } from "../../../src/model/engine/conv.js";
import { loadNativeAddon } from "../../../src/model/engine/native/addon.js";
import { maxPool2x } from "../../../src/model/engine/resample.js";

interface Case {
  n: number;
  h: number;
  w: number;
  c: number;
  o: number;
  k: number;
  stride: 1 | 2;
  padding: ConvPadding;
}

const cases: Case[] = [
  { n: 2, h: 8, w: 8, c: 3, o: 4, k: 3, stride: 1, padding: "same" },
  { n: 1, h: 7, w: 9, c: 2, o: 5, k: 3, stride: 1, padding: "valid" },
  { n: 2, h: 8, w: 8, c: 4, o: 3, k: 3, stride: 2, padding: "same" },
  { n: 1, h: 9, w: 7, c: 3, o: 2, k: 3, stride: 2, padding: "same" },
  { n: 2, h: 9, w: 9, c: 2, o: 3, k: 3, stride: 2, padding: "valid" },
  { n: 3, h: 6, w: 6, c: 5, o: 4, k: 1, stride: 1, padding: "same" },
  { n: 1, h: 8, w: 6, c: 2, o: 2, k: 2, stride: 2, padding: "valid" },
  { n: 1, h: 6, w: 6, c: 2, o: 3, k: 4, stride: 1, padding: "same" },
  { n: 1, h: 10, w: 10, c: 3, o: 3, k: 5, stride: 2, padding: "same" },
  // Large enough (> 4M multiply-adds) for the native kernels to split the work across threads.
  { n: 5, h: 24, w: 24, c: 16, o: 32, k: 3, stride: 1, padding: "same" },
  { n: 3, h: 32, w: 32, c: 24, o: 16, k: 3, stride: 2, padding: "same" },
];

function seeded(shape: number[], seed: number): Float32Array {
  let s = seed >>> 0;
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

interface Result {
  y: Float32Array;
  dx: Float32Array;
  dw: Float32Array;
}

/** Reference: tf.conv2d with tfjs's own gradients on the cpu backend. */
function reference(c: Case, x: Float32Array, w: Float32Array, g: Float32Array): Result {
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, [c.n, c.h, c.w, c.c]);
    const wt = tf.tensor4d(w, [c.k, c.k, c.c, c.o]);
    const f = (a: tf.Tensor, b: tf.Tensor) =>
      tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.padding);
    const y = f(xt, wt);
    const [dx, dw] = tf.grads(f)([xt, wt], tf.tensor(g, y.shape));
    return {
      y: y.dataSync() as Float32Array,
      dx: dx.dataSync() as Float32Array,
      dw: dw.dataSync() as Float32Array,
    };
  });
}

function ours(c: Case, x: Float32Array, w: Float32Array, gFor: (shape: number[]) => Float32Array): Result {
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, [c.n, c.h, c.w, c.c]);
    const wt = tf.tensor4d(w, [c.k, c.k, c.c, c.o]);
    const f = (a: tf.Tensor, b: tf.Tensor) =>
      conv2d(a as tf.Tensor4D, b as tf.Tensor4D, { stride: c.stride, padding: c.padding });
    const y = f(xt, wt);
    const [dx, dw] = tf.grads(f)([xt, wt], tf.tensor(gFor(y.shape), y.shape));
    return {
      y: y.dataSync() as Float32Array,
      dx: dx.dataSync() as Float32Array,
      dw: dw.dataSync() as Float32Array,
    };
  });
}

function relDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let maxAbs = 0;
  let mag = 1e-6;
  for (let i = 0; i < a.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]));
    mag = Math.max(mag, Math.abs(b[i]));
  }
  return maxAbs / mag;
}

describe("conv2d with project gradients", () => {
  beforeAll(async () => {
    await tf.setBackend("cpu");
  });

  it("the native backend registers (built by npm ci when g++ and libopenblas-dev are installed)", async () => {
    await useBackend("native");
    await tf.setBackend("cpu");
  });

  // wasm: gradients composed of forward kernels; native: oneDNN (in a build with libdnnl-dev)
  // and im2col + OpenBLAS; cpu: tfjs's own kernels.
  for (const variant of ["cpu", "wasm", "native", "native-openblas"] as const) {
    const backend = variant === "native-openblas" ? "native" : variant;
    for (const c of cases) {
      it(`${variant}: k${c.k} s${c.stride} ${c.padding} ${c.n}x${c.h}x${c.w}x${c.c}->${c.o} matches tf.grads on cpu`, async () => {
        const x = seeded([c.n, c.h, c.w, c.c], 1 + c.k * 7 + c.stride);
        const w = seeded([c.k, c.k, c.c, c.o], 99 + c.h);
        await tf.setBackend("cpu");
        const probe = tf.tidy(
          () =>
            tf.conv2d(
              tf.zeros([c.n, c.h, c.w, c.c]) as tf.Tensor4D,
              tf.zeros([c.k, c.k, c.c, c.o]) as tf.Tensor4D,
              c.stride,
              c.padding,
            ).shape,
        );
        const g = seeded(probe, 7);
        const ref = reference(c, x, w, g);
        await useBackend(backend);
        loadNativeAddon().addon?.useOneDnn(variant !== "native-openblas");
        const got = ours(c, x, w, () => g);
        loadNativeAddon().addon?.useOneDnn(true);
        expect(relDiff(got.y, ref.y)).toBeLessThan(1e-4);
        expect(relDiff(got.dx, ref.dx)).toBeLessThan(1e-4);
        expect(relDiff(got.dw, ref.dw)).toBeLessThan(1e-4);
        await tf.setBackend("cpu");
      });
    }
  }

  it("maxPool2x gradient: wasm and native match cpu exactly (first maximum wins ties; all-negative windows)", async () => {
    const withTie = seeded([2, 6, 4, 3], 5);
    const noTie = withTie.slice();
    withTie[0] = withTie[3] = 0.9; // a tie inside the first window, channel 0
    const run = (values: Float32Array) =>
      tf.tidy(() => {
        const x = tf.tensor4d(values, [2, 6, 4, 3]);
        const g = tf.grad((t: tf.Tensor) =>
          tf.sum(tf.mul(maxPool2x(t as tf.Tensor4D), tf.range(1, 19).reshape([2, 3, 1, 3]))),
        );
        return g(x).dataSync() as Float32Array;
      });
    await tf.setBackend("cpu");
    const [refTie, refNoTie] = [run(withTie), run(noTie)];
    for (const backend of ["native", "wasm"] as const) {
      await useBackend(backend);
      expect(relDiff(run(withTie), refTie), backend).toBe(0);
      expect(relDiff(run(noTie), refNoTie), backend).toBe(0);
    }
    await tf.setBackend("cpu");
  });

  for (const backend of ["wasm", "native"] as const)
    it(`${backend}: a training loop keeps tf.memory().numTensors flat`, async () => {
      await useBackend(backend);
      const w = tf.variable(tf.randomNormal([3, 3, 4, 4], 0, 0.1, "float32", 1));
      const x = tf.randomNormal([2, 8, 8, 4], 0, 1, "float32", 2) as tf.Tensor4D;
      const target = tf.randomNormal([2, 8, 8, 4], 0, 1, "float32", 3);
      const step = () =>
        tf.tidy(() => {
          const { value, grads } = tf.variableGrads(
            () => tf.mean(tf.square(tf.sub(conv2d(x, w as unknown as tf.Tensor4D), target))) as tf.Scalar,
          );
          w.assign(tf.sub(w, tf.mul(grads[w.name], 0.1)));
          return value.dataSync()[0];
        });
      const first = step();
      const before = tf.memory().numTensors;
      let last = first;
      for (let i = 0; i < 20; i++) last = step();
      expect(tf.memory().numTensors).toBe(before);
      expect(last).toBeLessThan(first);
      tf.dispose([w, x, target]);
      await tf.setBackend("cpu");
    });
  for (const backend of ["cpu", "wasm", "native"] as const) {
    it(`${backend}: conv2dSum (3×3 and 1×1 terms) matches Σ tf.conv2d and its tf.grads on cpu`, async () => {
      for (const k of [3, 1]) {
        const shapes = { x0: [2, 8, 6, 3], x1: [2, 8, 6, 5], w0: [k, k, 3, 4], w1: [k, k, 5, 4] };
        const data = Object.fromEntries(Object.entries(shapes).map(([n, sh], i) => [n, seeded(sh, 11 + i)]));
        const dy = seeded([2, 8, 6, 4], 5);
        const run = (sum: (t: tf.Tensor4D[]) => tf.Tensor) =>
          tf.tidy(() => {
            const t = (["x0", "w0", "x1", "w1"] as const).map((n) =>
              tf.tensor4d(data[n], shapes[n] as never),
            );
            const f = (...a: tf.Tensor[]) => sum(a as tf.Tensor4D[]);
            const y = f(...t).dataSync() as Float32Array;
            const g = tf
              .grads(f)(t, tf.tensor4d(dy, [2, 8, 6, 4]))
              .map((e) => e.dataSync() as Float32Array);
            return [y, ...g];
          });
        await tf.setBackend("cpu");
        const ref = run((t) => tf.add(tf.conv2d(t[0], t[1], 1, "same"), tf.conv2d(t[2], t[3], 1, "same")));
        await useBackend(backend);
        const got = run((t) =>
          conv2dSum([
            [t[0], t[1]],
            [t[2], t[3]],
          ]),
        );
        for (let i = 0; i < ref.length; i++) expect(relDiff(got[i], ref[i])).toBeLessThan(1e-4);
      }
      await tf.setBackend("cpu");
    });
  }
});
