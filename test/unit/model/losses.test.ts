import { beforeAll, describe, expect, it } from "vitest";
import { initEngine } from "../../../src/model/engine/backend.js";
import { tf } from "../../../src/model/engine/tf.js";
import { domainCrossEntropy } from "../../../src/model/losses/ce.js";
import { anatomicalPriorLoss } from "../../../src/model/losses/mjap.js";
import { contrastiveScale, multiScaleContrastive } from "../../../src/model/losses/msc.js";
import { mulberry32 } from "../../../src/random.js";

const s = Math.SQRT1_2;

/**
 * Eq. 5 for one scale, as loops over plain arrays: for each anchor i with positives P_i (same
 * domain, batch or bank, not i), −1/|P_i| Σ_p log(exp(z_i·c_p/τ) / Σ_{a≠i} exp(z_i·c_a/τ)),
 * averaged over the anchors that have a positive.
 */
function mscReference(
  z: number[][],
  doms: number[],
  bank: number[][],
  bankDoms: number[],
  tau: number,
): number {
  const cand = [...z, ...bank];
  const candDoms = [...doms, ...bankDoms];
  const dot = (a: number[], b: number[]) => a.reduce((acc, x, k) => acc + x * b[k], 0);
  let sum = 0;
  let anchors = 0;
  z.forEach((zi, i) => {
    const positives = cand.map((_, j) => j).filter((j) => j !== i && candDoms[j] === doms[i]);
    if (positives.length === 0) return;
    const denom = cand.reduce((acc, c, j) => (j === i ? acc : acc + Math.exp(dot(zi, c) / tau)), 0);
    const l = positives.reduce((acc, p) => acc - Math.log(Math.exp(dot(zi, cand[p]) / tau) / denom), 0);
    sum += l / positives.length;
    anchors++;
  });
  return anchors === 0 ? 0 : sum / anchors;
}
const value = (t: tf.Scalar) => {
  const v = t.dataSync()[0];
  t.dispose();
  return v;
};

describe("L_MSC (eq. 5)", () => {
  beforeAll(async () => {
    await initEngine("auto");
  });

  // 4 samples, 2 domains, τ = 0.5. Anchor 1 = (1,0): its positive (s,s) has similarity s, the
  // negatives 0 and −s, so ℓ₁ = −log(e^{2s} / (e^{2s} + e^0 + e^{−2s})); the four anchors are
  // symmetric up to rotation. Expected values computed by hand-written Python (loops, no tensors).
  const z = () => tf.tensor2d([1, 0, s, s, 0, 1, -s, s], [4, 2]);
  const domains = Int32Array.from([0, 0, 1, 1]);

  it("equals the hand-computed value on a 4-sample, 2-domain batch", () => {
    const anchor1 = -Math.log(Math.exp(2 * s) / (Math.exp(2 * s) + 1 + Math.exp(-2 * s)));
    const loss = value(contrastiveScale(z(), domains, 0.5));
    expect(loss).toBeCloseTo(0.5359693517993648, 5);
    expect(anchor1).toBeGreaterThan(0);
  });

  it("adds bank vectors as constant negatives (and same-domain bank vectors as positives)", () => {
    const bank = { vectors: tf.tensor2d([0, -1, -1, 0], [2, 2]), domains: Int32Array.from([1, 0]) };
    expect(value(contrastiveScale(z(), domains, 0.5, bank))).toBeCloseTo(2.3353290881383404, 5);
    tf.dispose(bank.vectors);
  });

  it("with a federated bank (other domains only) equals the loop reference, and differs from no bank", () => {
    // 6 anchors of 2 domains, 5 bank vectors of a third domain (another site), random unit vectors
    const rand = mulberry32(11);
    const unit = (n: number, d: number) =>
      Array.from({ length: n }, () => {
        const v = Array.from({ length: d }, () => rand() - 0.5);
        const norm = Math.hypot(...v);
        return v.map((x) => x / norm);
      });
    const anchors = unit(6, 4);
    const bankRows = unit(5, 4);
    const doms = Int32Array.from([0, 0, 0, 1, 1, 1]);
    const bankDoms = new Int32Array(5).fill(2);
    const tau = 0.1;
    const zt = tf.tensor2d(anchors);
    const bank = { vectors: tf.tensor2d(bankRows), domains: bankDoms };
    const withBank = value(contrastiveScale(zt, doms, tau, bank));
    const without = value(contrastiveScale(zt, doms, tau));
    expect(withBank).toBeCloseTo(mscReference(anchors, [...doms], bankRows, [...bankDoms], tau), 4);
    expect(without).toBeCloseTo(mscReference(anchors, [...doms], [], [], tau), 4);
    // extra negatives make every positive less probable
    expect(withBank).toBeGreaterThan(without + 1e-3);
    tf.dispose([zt, bank.vectors]);
  });

  it("gives the bank no gradient: only the anchors move", () => {
    const bankVectors = tf.tensor2d([0, -1, -1, 0], [2, 2]);
    const bankDomains = Int32Array.from([1, 0]);
    const zv = z();
    const [gz, gb] = tf.grads((x: tf.Tensor, b: tf.Tensor) =>
      contrastiveScale(x as tf.Tensor2D, domains, 0.5, { vectors: b as tf.Tensor2D, domains: bankDomains }),
    )([zv, bankVectors]);
    expect(gz.shape).toEqual([4, 2]);
    expect(tf.sum(tf.abs(gz)).dataSync()[0]).toBeGreaterThan(0);
    expect(gb.shape).toEqual([2, 2]);
    expect(Array.from(gb.dataSync())).toEqual([0, 0, 0, 0]);
    tf.dispose([gz, gb, zv, bankVectors]);
  });

  it("decreases when same-domain embeddings align", () => {
    const aligned = tf.tensor2d([1, 0, 1, 0, 0, 1, 0, 1], [4, 2]);
    const a = value(contrastiveScale(aligned, domains, 0.5));
    expect(a).toBeCloseTo(0.2395447662218845, 5);
    expect(a).toBeLessThan(0.5359693517993648);
    aligned.dispose();
  });

  it("averages the chosen scales; L_SSC is the bottleneck scale alone", () => {
    const e0 = z();
    const e1 = tf.tensor2d([1, 0, 1, 0, 0, 1, 0, 1], [4, 2]);
    const both = value(multiScaleContrastive([e0, e1], domains, { tau: 0.5, scales: [0, 1] }));
    expect(both).toBeCloseTo((0.5359693517993648 + 0.2395447662218845) / 2, 5);
    const ssc = value(multiScaleContrastive([e0, e1], domains, { tau: 0.5, scales: [1] }));
    expect(ssc).toBeCloseTo(0.2395447662218845, 5);
    expect(() => multiScaleContrastive([e0, e1], domains, { tau: 0.5, scales: [2] })).toThrow(/scale 2/);
    tf.dispose([e0, e1]);
  });

  it("skips anchors without positives and is 0 when no anchor has one", () => {
    const x = tf.tensor2d([1, 0, 0, 1], [2, 2]);
    expect(value(contrastiveScale(x, Int32Array.from([0, 1]), 0.1))).toBe(0);
    x.dispose();
  });
});

describe("L_MJAP (eq. 7) and L_CE (eq. 1)", () => {
  it("L_MJAP is zero for identical codes and the per-domain mean of squared differences otherwise", () => {
    const a = tf.randomNormal([2, 2, 2, 3], 0, 1, "float32", 1) as tf.Tensor4D;
    const b = tf.randomNormal([1, 2, 2, 3], 0, 1, "float32", 2) as tf.Tensor4D;
    expect(value(anatomicalPriorLoss([a, b], [a, b]))).toBe(0);
    const shifted = tf.add(a, 2) as tf.Tensor4D;
    // domain 0 differs by 2 everywhere (mean square 4), domain 1 not at all → (4 + 0) / 2.
    expect(value(anatomicalPriorLoss([a, b], [shifted, b]))).toBeCloseTo(2, 5);
    tf.dispose([a, b, shifted]);
  });

  it("L_CE weighs every domain equally whatever its share of the batch", () => {
    const l0 = tf.zeros([3, 1, 1, 2]) as tf.Tensor4D; // log 2 per pixel
    const l1 = tf.tensor4d([10, 0], [1, 1, 1, 2]); // ≈ 0 when label 0
    const y0 = tf.tensor3d([0, 1, 0], [3, 1, 1], "int32");
    const y1 = tf.tensor3d([0], [1, 1, 1], "int32");
    expect(value(domainCrossEntropy([l0, l1], [y0, y1]))).toBeCloseTo(
      (Math.log(2) + Math.log(1 + Math.exp(-10))) / 2,
      5,
    );
    tf.dispose([l0, l1, y0, y1]);
  });
});
