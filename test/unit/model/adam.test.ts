import "@tensorflow/tfjs-backend-wasm";
import { describe, expect, it } from "vitest";
import { Adam } from "../../../src/model/engine/adam.js";
import { useBackend } from "../../../src/model/engine/backend.js";
import { tf } from "../../../src/model/engine/tf.js";

/** Adam by hand in float64 (PyTorch's formula), for a quadratic loss ½·Σ(c·p²). */
function reference(p0: number[], c: number[], steps: number, lr: number): number[] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  for (let t = 1; t <= steps; t++) {
    for (let i = 0; i < p.length; i++) {
      const g = c[i] * p[i];
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      p[i] -= (lr * (m[i] / (1 - 0.9 ** t))) / (Math.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8);
    }
  }
  return p;
}

async function run(
  backend: "cpu" | "wasm" | "native",
  steps: number,
): Promise<{ values: number[]; leaked: number; native: number }> {
  await useBackend(backend);
  const p0 = [1, -2, 0.5, 3, -0.25, 0.125];
  const c = [1, 2, 3, 0.5, 4, 1];
  const initial = tf.tensor(p0);
  const w = tf.variable(initial, true, `adam_test_${backend}_${steps}`);
  initial.dispose();
  const cs = tf.tensor(c);
  const opt = new Adam(0.05);
  const step = () =>
    opt.minimize(() => tf.mul(0.5, tf.sum(tf.mul(cs, tf.square(w)))) as tf.Scalar, false, [w]);
  step(); // creates the moment buffers
  const before = tf.memory().numTensors;
  for (let i = 1; i < steps; i++) step();
  const after = tf.memory().numTensors;
  const values = Array.from(w.dataSync());
  const native = opt.nativeUpdates;
  tf.dispose([w, cs]);
  opt.dispose();
  return { values, leaked: after - before, native };
}

describe("Adam (engine optimiser)", () => {
  const expected = reference([1, -2, 0.5, 3, -0.25, 0.125], [1, 2, 3, 0.5, 4, 1], 25, 0.05);

  it("cpu: matches PyTorch's Adam formula", async () => {
    const { values, leaked, native } = await run("cpu", 25);
    expect(native).toBe(0);
    for (const [i, v] of values.entries()) expect(v).toBeCloseTo(expected[i], 4);
    expect(leaked).toBe(0);
  });

  it("wasm: tfjs ops, same formula", async () => {
    const { values, leaked, native } = await run("wasm", 25);
    expect(native).toBe(0);
    for (const [i, v] of values.entries()) expect(v).toBeCloseTo(expected[i], 4);
    expect(leaked).toBe(0);
  });

  it("native: in-place update from the second step on (the first replaces the variable's own array)", async () => {
    const { values, leaked, native } = await run("native", 25);
    for (const [i, v] of values.entries()) expect(v).toBeCloseTo(expected[i], 4);
    expect(leaked).toBe(0);
    expect(native).toBe(24);
  });
});
