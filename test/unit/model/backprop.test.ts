import { describe, expect, it } from "vitest";
import { gradientsFreeingMemory, withoutTape } from "../../../src/model/engine/backprop.js";
import { tf } from "../../../src/model/engine/tf.js";

/**
 * A loss with fan-out (x used three times), a custom gradient, a reshape (its gradient returns a
 * view of dy), a variable the loss does not depend on and a non-float input.
 */
function setup() {
  const a = tf.variable(tf.randomNormal([4, 6], 0, 1, "float32", 1), true, `bp_a_${Math.random()}`);
  const b = tf.variable(tf.randomNormal([6, 3], 0, 1, "float32", 2), true, `bp_b_${Math.random()}`);
  const unused = tf.variable(tf.zeros([2]), true, `bp_unused_${Math.random()}`);
  const labels = tf.tensor1d([0, 2, 1, 1], "int32");
  const square = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([x]);
    return {
      value: tf.square(x),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(dy, tf.mul(saved[0], 2))],
    };
  });
  const f = () => {
    const h = tf.matMul(a, b);
    const z = tf.add(tf.relu(h), tf.mul(square(h), 0.1));
    const flat = tf.reshape(z, [12]).reshape([4, 3]);
    const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 3), flat);
    return tf.add(ce, tf.mean(tf.mul(h, h))) as tf.Scalar;
  };
  return { vars: [a, b, unused], f, dispose: () => tf.dispose([a, b, unused, labels]) };
}

describe("gradientsFreeingMemory (memory-freeing backward pass)", () => {
  it("gives tfjs's gradients, null where the loss does not depend on a variable, and leaks nothing", async () => {
    await tf.setBackend("cpu");
    const { vars, f, dispose } = setup();
    const ref = tf.engine().gradients(f, vars, undefined, true);
    const before = tf.memory().numTensors;
    const ours = gradientsFreeingMemory(f, vars);
    expect(ours.value.dataSync()[0]).toBeCloseTo(ref.value.dataSync()[0], 6);
    expect(ours.grads[2]).toBeNull();
    expect(ref.grads[2] ?? null).toBeNull();
    for (const i of [0, 1]) {
      const d = tf.tidy(() => tf.max(tf.abs(tf.sub(ours.grads[i]!, ref.grads[i]!))).dataSync()[0]);
      expect(d).toBeLessThan(1e-6);
    }
    tf.dispose([ours.value, ...ours.grads.filter((g): g is tf.Tensor => g !== null)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([ref.value, ...ref.grads.filter((g): g is tf.Tensor => g !== null)]);
    dispose();
  });

  it("peaks far lower than tfjs's driver when gradients make temporaries (freed node by node)", async () => {
    await tf.setBackend("cpu");
    const w = tf.variable(tf.fill([1, 64], 0.5), true, `bp_chain_${Math.random()}`);
    const x = tf.randomNormal([256, 64], 0, 1, "float32", 3);
    // y = x·w with a gradient that builds three full-size temporaries, as batch norm's does.
    const scale = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [h, v, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
      save([h, v]);
      const gradFunc = (dy: tf.Tensor, [hs, vs]: tf.Tensor[]) => {
        const t1 = tf.mul(dy, 1);
        const t2 = tf.add(t1, 0);
        const t3 = tf.mul(t2, hs);
        return [tf.mul(t2, vs), tf.sum(t3, 0, true)];
      };
      return { value: tf.mul(h, v), gradFunc };
    });
    const f = () => {
      let h = x as tf.Tensor;
      for (let i = 0; i < 12; i++) h = scale(h, w);
      return tf.mean(h) as tf.Scalar;
    };
    const peak = async (run: () => { value: tf.Tensor; grads: (tf.Tensor | null | undefined)[] }) => {
      const p = await tf.profile(() => {
        const r = run();
        tf.dispose([r.value, ...r.grads.filter((g): g is tf.Tensor => g != null)]);
      });
      return p.peakBytes;
    };
    const theirs = await peak(() => tf.engine().gradients(f, [w], undefined, true));
    const ours = await peak(() => gradientsFreeingMemory(f, [w]));
    expect(ours).toBeLessThan(theirs * 0.5);
    tf.dispose([w, x]);
  });

  it("withoutTape: ops inside record nothing (no gradient flows through them, nothing saved)", async () => {
    await tf.setBackend("cpu");
    const v = tf.variable(tf.ones([3]), true, `bp_tape_${Math.random()}`);
    const { grads } = gradientsFreeingMemory(() => {
      const side = withoutTape(() => tf.mul(v, 5));
      return tf.sum(tf.add(tf.mul(v, 2), side)) as tf.Scalar;
    }, [v]);
    expect(Array.from(grads[0]!.dataSync())).toEqual([2, 2, 2]);
    tf.dispose([v, grads[0]!]);
  });
});
