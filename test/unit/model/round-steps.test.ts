/**
 * The trainer's federated-round options (RoundStepOptions) and local policies: FedSGD gradient
 * capture, the FedProx proximal term, Γ_k-only personalisation, the local Adam reset policies —
 * and, in one process, the exactness they exist for: three one-joint trainers sending FedSGD
 * gradients to server Adam (FedAdam, uniform) follow the pooled three-joint trainer step for step.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { createStrategy } from "../../../src/aggregation/strategies/index.js";
import type { Joint } from "../../../src/joints.js";
import type { NamedTensor } from "../../../src/model/api.js";
import { initEngine } from "../../../src/model/engine/backend.js";
import { tf } from "../../../src/model/engine/tf.js";
import { PAPER_LABELS } from "../../../src/model/labels.js";
import { SegmentationTrainer, trainerConfig } from "../../../src/model/trainer.js";
import { parseStudyConfig, type StudyConfigInput } from "../../../src/study/config.js";
import { federatedSchema } from "../../../src/study/model.js";
import { toyData, toySampler } from "./helpers.js";

const JOINTS: Joint[] = ["ankle", "knee", "shoulder"];
const DATA = toyData(JOINTS, 16, 6, 3);

const study = (over: Partial<StudyConfigInput> = {}) =>
  parseStudyConfig({
    study: "t",
    method: "dsl",
    sites: JOINTS.map((j) => ({ name: j, joint: j })),
    rounds: 6,
    localSteps: 1,
    seed: 5,
    model: { base: 4, depth: 3, size: 16 },
    training: { seg: { batch: 6, lr: 5e-3 }, perDomainGradients: true },
    strategy: { name: "fedadam", weighting: "uniform", update: "gradient" },
    ...over,
  });

const trainer = (joints: Joint[], s = study()) =>
  new SegmentationTrainer(
    trainerConfig(s, joints, PAPER_LABELS),
    Object.fromEntries(joints.map((j) => [j, DATA[j]])),
    { makeSampler: toySampler },
  );

function maxAbsDiff(a: readonly NamedTensor[], b: readonly NamedTensor[]): number {
  const byName = new Map(b.map((t) => [t.name, t]));
  let max = 0;
  for (const t of a) {
    const u = byName.get(t.name)!;
    for (let i = 0; i < t.data.length; i++) max = Math.max(max, Math.abs(t.data[i] - u.data[i]));
  }
  return max;
}
const trainable = (ts: NamedTensor[]) => ts.filter((t) => !/moving_(mean|variance)$/.test(t.name));

describe("federated round steps", () => {
  beforeAll(async () => {
    await initEngine("wasm");
  });

  it("FedSGD: the gradient is captured, Θ stays, Γ_k takes the Adam step the plain step takes", async () => {
    const a = trainer(["knee"]);
    const b = trainer(["knee"]);
    const theta0 = await a.sharedTensors("seg");
    const r = await a.trainSteps("seg", { steps: 1, round: { gradient: { lossWeight: 1 } } });
    await b.trainSteps("seg", { steps: 1 });
    expect(r.gradients!.map((g) => g.name).sort()).toEqual(theta0.map((t) => t.name).sort());
    expect(maxAbsDiff(await a.sharedTensors("seg"), theta0)).toBe(0);
    expect(maxAbsDiff(trainable(await a.domainTensors("seg")), trainable(await b.domainTensors("seg")))).toBe(
      0,
    );
    // the plain step moved Θ by Adam's first step, −lr·g/(|g| + ε): the captured g has its sign
    const moved = await b.sharedTensors("seg");
    let checked = 0;
    for (const g of r.gradients!) {
      const before = theta0.find((t) => t.name === g.name)!;
      const after = moved.find((t) => t.name === g.name)!;
      for (let i = 0; i < g.data.length; i++) {
        if (Math.abs(g.data[i]) < 1e-5) continue;
        expect(after.data[i] - before.data[i]).toBeCloseTo(-5e-3 * Math.sign(g.data[i]), 5);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
    const tensors = tf.memory().numTensors;
    await a.trainSteps("seg", { steps: 2, round: { gradient: { lossWeight: 0.5 } } });
    expect(tf.memory().numTensors).toBe(tensors);
    a.dispose();
    b.dispose();
  });

  it("FedProx: a large μ pulls Θ toward the anchor; personalisation moves Γ_k only", async () => {
    const a = trainer(["ankle"]);
    const theta0 = await a.sharedTensors("seg");
    const anchor = theta0.map((t) => ({ ...t, data: t.data.map((v) => v + 1) }));
    await a.trainSteps("seg", { steps: 1, round: { proximal: { mu: 1e4, anchor } } });
    // the proximal gradient μ·(Θ − Θ_r) = −μ dominates: every element moved up by lr
    for (const t of await a.sharedTensors("seg")) {
      const t0 = theta0.find((x) => x.name === t.name)!;
      for (let i = 0; i < t.data.length; i++) expect(t.data[i] - t0.data[i]).toBeCloseTo(5e-3, 5);
    }
    const theta1 = await a.sharedTensors("seg");
    const gamma1 = trainable(await a.domainTensors("seg"));
    const tensors = tf.memory().numTensors;
    await a.personalise("seg", { steps: 2, lr: 1e-2 });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(maxAbsDiff(await a.sharedTensors("seg"), theta1)).toBe(0);
    expect(maxAbsDiff(trainable(await a.domainTensors("seg")), gamma1)).toBeGreaterThan(1e-3);
    a.dispose();
  });

  it("local Adam policies: reset restarts the moments, reset-first-moment zeroes m and keeps v", async () => {
    const a = trainer(["shoulder"]);
    const kept = trainer(["shoulder"]);
    await a.trainSteps("seg", { steps: 3 });
    const moments = async (t: SegmentationTrainer) => {
      const w = await (t as unknown as { phases: Map<string, { optimizer: tf.Optimizer }> }).phases
        .get("seg")!
        .optimizer.getWeights();
      const out = Object.fromEntries(w.map((x) => [x.name, Array.from(x.tensor.dataSync())]));
      tf.dispose(w[0].tensor);
      return out;
    };
    const before = await moments(a);
    await a.resetOptimizer("seg", "reset-first-moment");
    const after = await moments(a);
    expect(after.iter).toEqual(before.iter);
    for (const [name, values] of Object.entries(after)) {
      if (name.endsWith("/adam_m")) expect(values.every((v) => v === 0)).toBe(true);
      if (name.endsWith("/adam_v")) expect(values).toEqual(before[name]);
    }
    // reset: the next step is a first step again (|ΔΘ| = lr wherever |g| ≫ ε); kept moments after
    // three steps give smaller, unequal steps
    const stepSizes = async (t: SegmentationTrainer) => {
      const w0 = await t.sharedTensors("seg");
      await t.trainSteps("seg", { steps: 1 });
      const w1 = await t.sharedTensors("seg");
      const d = w1.flatMap((x, k) => Array.from(x.data, (v, i) => Math.abs(v - w0[k].data[i])));
      return d.filter((x) => Math.abs(x - 5e-3) < 1e-5).length / d.length;
    };
    await kept.trainSteps("seg", { steps: 3 });
    expect(await stepSizes(kept)).toBeLessThan(0.5);
    await a.resetOptimizer("seg", "reset");
    expect(await stepSizes(a)).toBeGreaterThan(0.9);
    a.dispose();
    kept.dispose();
  });

  it("three FedSGD sites + server Adam (uniform, the phase's lr) = the pooled trainer, Θ and every Γ_k", async () => {
    // the setting: lr 5e-4, β 0.9/0.999, 20 rounds; pooled gradients per domain
    const s = study({ rounds: 20, training: { seg: { batch: 6, lr: 5e-4 }, perDomainGradients: true } });
    const pooled = trainer(JOINTS, s);
    const sites = JOINTS.map((j) => trainer([j], s));
    const strategy = createStrategy(s);
    const schema = federatedSchema(s, "seg");
    let theta = await sites[0].sharedTensors("seg");
    let state = strategy.initialize(theta);
    for (let round = 0; round < 20; round++) {
      const agg = strategy.begin(schema);
      const ins = strategy.configureTrain({ fold: 0, phase: "seg", round, rounds: 20 }, JOINTS);
      for (const [k, site] of sites.entries()) {
        site.setSharedTensors("seg", theta);
        const i = ins[JOINTS[k]];
        expect(i.update).toBe("gradient");
        const r = await site.trainSteps("seg", {
          steps: i.steps,
          lr: i.lr,
          round: { gradient: { lossWeight: i.lossWeight } },
        });
        agg.add({ site: JOINTS[k], samples: r.samples, tensors: r.gradients! });
      }
      const next = strategy.aggregate(agg, theta, state, { fold: 0, phase: "seg", round, rounds: 20 });
      theta = next.model;
      state = next.state;
      await pooled.trainSteps("seg", { steps: 1 });
    }
    expect(maxAbsDiff(theta, await sites[0].sharedTensors("seg"))).toBeGreaterThan(1e-4); // Θ_20 ≠ Θ_19
    expect(maxAbsDiff(theta, await pooled.sharedTensors("seg"))).toBe(0);
    const pooledGamma = trainable(await pooled.domainTensors("seg"));
    for (const site of sites) {
      const gamma = trainable(await site.domainTensors("seg"));
      expect(gamma.length).toBeGreaterThan(0);
      expect(maxAbsDiff(gamma, pooledGamma)).toBe(0);
    }
    for (const t of [pooled, ...sites]) t.dispose();
  });
});
