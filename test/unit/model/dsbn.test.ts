import { beforeAll, describe, expect, it } from "vitest";
import type { Joint } from "../../../src/joints.js";
import { initEngine } from "../../../src/model/engine/backend.js";
import { tf } from "../../../src/model/engine/tf.js";
import type { ForwardContext } from "../../../src/model/layers/context.js";
import { applyStatUpdates, DomainBatchNorm } from "../../../src/model/layers/dsbn.js";
import { domainCrossEntropy } from "../../../src/model/losses/ce.js";
import { AttUNet } from "../../../src/model/nets/att-unet.js";
import { MultiJointAutoEncoder } from "../../../src/model/nets/auto-encoder.js";
import { ParamStore } from "../../../src/model/params.js";

const read = (p: ParamStore, name: string) => Array.from(p.get(name).dataSync());

describe("DSBN keeps every domain's statistics and affine parameters apart", () => {
  beforeAll(async () => {
    await initEngine("auto");
  });

  it("feeding domain A never moves domain B's running stats or γ/β", () => {
    const p = new ParamStore(1);
    const bn = new DomainBatchNorm(p, "t/bn", 3, false);
    bn.build(["ankle", "knee"]);
    const knee = ["gamma", "beta", "moving_mean", "moving_variance"].map((k) => `domain/knee/t/bn/${k}`);
    const before = knee.map((n) => read(p, n));
    const x = tf.add(tf.mul(tf.randomNormal([4, 5, 5, 3], 0, 1, "float32", 3), 2), 1) as tf.Tensor4D;
    const opt = tf.train.adam(0.1);
    for (let i = 0; i < 3; i++) {
      const ctx: ForwardContext = { groups: [{ joint: "ankle", count: 4 }], training: true, statUpdates: [] };
      opt.minimize(
        () => tf.mean(tf.square(tf.sub(bn.apply(x, ctx), 0.5))) as tf.Scalar,
        false,
        p.trainable(),
      );
      applyStatUpdates(ctx);
    }
    expect(knee.map((n) => read(p, n))).toEqual(before);
    expect(read(p, "domain/ankle/t/bn/moving_mean")).not.toEqual([0, 0, 0]);
    expect(read(p, "domain/ankle/t/bn/gamma")).not.toEqual([1, 1, 1]);
    opt.dispose();
    x.dispose();
    p.dispose();
  });

  it("a mixed batch gives each domain the statistics of its own samples only", () => {
    const stats = (groups: { joint: Joint; count: number }[], x: tf.Tensor4D) => {
      const p = new ParamStore(1);
      const bn = new DomainBatchNorm(p, "t/bn", 2, false);
      bn.build(["ankle", "knee"]);
      const ctx: ForwardContext = { groups, training: true, statUpdates: [] };
      tf.tidy(() => bn.apply(x, ctx));
      applyStatUpdates(ctx);
      const out = {
        ankle: read(p, "domain/ankle/t/bn/moving_mean"),
        knee: read(p, "domain/knee/t/bn/moving_mean"),
      };
      p.dispose();
      return out;
    };
    const a = tf.randomNormal([2, 4, 4, 2], 3, 1, "float32", 5) as tf.Tensor4D;
    const k = tf.randomNormal([2, 4, 4, 2], -2, 1, "float32", 6) as tf.Tensor4D;
    const mixed = tf.concat([a, k], 0) as tf.Tensor4D;
    const both = stats(
      [
        { joint: "ankle", count: 2 },
        { joint: "knee", count: 2 },
      ],
      mixed,
    );
    const alone = stats([{ joint: "ankle", count: 2 }], a);
    for (const [i, v] of both.ankle.entries()) expect(v).toBeCloseTo(alone.ankle[i], 5);
    expect(both.knee[0]).toBeLessThan(0);
    expect(alone.knee).toEqual([0, 0]);
    tf.dispose([a, k, mixed]);
  });
});

describe("parameter partition: gradients", () => {
  it("reach every shared variable and only the active domain's variables (Att-UNet and AE)", () => {
    const p = new ParamStore(2);
    const classes = { ankle: 4, knee: 5, shoulder: 3 };
    const net = new AttUNet(p, { base: 4, depth: 3, inChannels: 1, classes, sharedNorm: false });
    net.build(["ankle", "knee", "shoulder"]);
    const x = tf.randomNormal([2, 8, 8, 1], 0, 1, "float32", 7) as tf.Tensor4D;
    const y = tf.tensor3d(
      Int32Array.from({ length: 128 }, (_, i) => i % 4),
      [2, 8, 8],
      "int32",
    );
    const ctx: ForwardContext = { groups: [{ joint: "ankle", count: 2 }], training: true, statUpdates: [] };
    const { grads } = tf.variableGrads(
      () => domainCrossEntropy(net.apply(x, ctx).logits, [y]),
      p.trainable(),
    );
    for (const u of ctx.statUpdates) u.value.dispose();
    const norm = (n: string) => (grads[n] ? tf.sum(tf.abs(grads[n])).dataSync()[0] : 0);
    const shared = p.names((_, s, t) => t && s === "shared");
    expect(shared.length).toBeGreaterThan(10);
    for (const n of shared) expect(norm(n), n).toBeGreaterThan(0);
    for (const n of p.names((_, s, t) => t && s !== "shared" && s.domain === "ankle"))
      expect(norm(n), n).toBeGreaterThan(0);
    for (const n of p.names((_, s) => s !== "shared" && s.domain !== "ankle")) expect(norm(n), n).toBe(0);
    tf.dispose([x, y, ...Object.values(grads)]);

    const q = new ParamStore(3);
    const ae = new MultiJointAutoEncoder(q, { base: 4, depth: 3, classes, sharedNorm: false });
    ae.build(["ankle", "knee", "shoulder"]);
    const yk = tf.tensor3d(
      Int32Array.from({ length: 128 }, (_, i) => (i >> 3) % 5),
      [2, 8, 8],
      "int32",
    );
    const onehot = tf.cast(tf.oneHot(yk, 5), "float32") as tf.Tensor4D;
    const actx: ForwardContext = { groups: [{ joint: "knee", count: 2 }], training: true, statUpdates: [] };
    const ag = tf.variableGrads(
      () => domainCrossEntropy(ae.apply([onehot], actx).logits, [yk]),
      q.trainable(),
    ).grads;
    for (const u of actx.statUpdates) u.value.dispose();
    const anorm = (n: string) => (ag[n] ? tf.sum(tf.abs(ag[n])).dataSync()[0] : 0);
    for (const n of q.names((_, s, t) => t && s === "shared")) expect(anorm(n), n).toBeGreaterThan(0);
    for (const n of q.names((_, s, t) => t && s !== "shared" && s.domain === "knee"))
      expect(anorm(n), n).toBeGreaterThan(0);
    for (const n of q.names((_, s) => s !== "shared" && s.domain !== "knee")) expect(anorm(n), n).toBe(0);
    expect(q.names().every((n) => n.includes("/ae/"))).toBe(true);
    tf.dispose([yk, onehot, ...Object.values(ag)]);
    p.dispose();
    q.dispose();
  });
});
