import { beforeAll, describe, expect, it } from "vitest";
import { JOINTS } from "../../../src/joints.js";
import { initEngine } from "../../../src/model/engine/backend.js";
import { tf } from "../../../src/model/engine/tf.js";
import { SegmentationTrainer } from "../../../src/model/trainer.js";
import { methodSpec } from "../../../src/study/methods.js";
import { testTrainerConfig, toyData, toySampler } from "./helpers.js";

const all = ["ankle", "knee", "shoulder"] as const;

describe("SegmentationTrainer", () => {
  beforeAll(async () => {
    await initEngine("auto");
  });

  it("keeps tf.memory().numTensors flat over steps of both phases, embeddings, validation", async () => {
    const t = new SegmentationTrainer(
      testTrainerConfig("dsl+msc+mjap", [...all], { base: 4, depth: 3, size: 16, segBatch: 6, aeBatch: 6 }),
      toyData([...all], 16, 6, 3),
      { makeSampler: toySampler },
    );
    expect(t.phaseList).toEqual(["ae", "seg"]);
    for (const phase of t.phaseList) {
      await t.trainSteps(phase, { steps: 1 });
      const before = tf.memory().numTensors;
      const seen: number[] = [];
      const r = await t.trainSteps(phase, { steps: 3, onStep: (i) => seen.push(i) });
      expect(tf.memory().numTensors).toBe(before);
      expect(seen).toEqual([0, 1, 2]);
      expect(r.samples).toBe(18);
      expect(r.loss.msc).toBeGreaterThan(0);
      // L_MJAP compares the AE's codes of prediction and truth: positive until they agree exactly
      if (phase === "seg") expect(r.loss.mjap).toBeGreaterThan(0);
      expect(r.loss.total).toBeCloseTo(
        r.loss.ce + (phase === "ae" ? 0.05 : 0.5) * r.loss.msc! + (phase === "seg" ? 0.1 * r.loss.mjap! : 0),
        4,
      );
      const bank = await t.embeddings(phase, { count: 5, seed: 1 });
      expect(bank.scales).toHaveLength(5);
      expect(bank.scales[2].dim).toBe(16);
      expect(bank.scales[2].count).toBe(15);
      const v = bank.scales[2].vectors;
      expect(Math.hypot(...v.subarray(0, 16))).toBeCloseTo(1, 4);
      expect(new Set(bank.scales[0].domains)).toEqual(new Set([0, 1, 2]));
      expect(tf.memory().numTensors).toBe(before);
    }
    const val = await t.validate("knee");
    expect(Object.keys(val.dice)).toEqual(["femur", "fibula", "patella", "tibia"]);
    expect(await t.predictSlices("shoulder", new Float32Array(2 * 256))).toHaveLength(512);
    t.dispose();
    expect(tf.memory().numTensors).toBe(0);
  });

  it("partitions Θ and Γ_k: shared names only in sharedTensors, one site's Θ fits another's", async () => {
    const cfg = (joint: (typeof all)[number]) =>
      testTrainerConfig("dsl+mjap", [joint], { base: 4, depth: 3, size: 16, seed: 7 });
    const knee = new SegmentationTrainer(cfg("knee"), toyData(["knee"], 16, 4, 2), {
      makeSampler: toySampler,
    });
    const ankle = new SegmentationTrainer(cfg("ankle"), toyData(["ankle"], 16, 4, 2), {
      makeSampler: toySampler,
    });
    for (const phase of methodSpec("dsl+mjap").phases) {
      const theta = await knee.sharedTensors(phase);
      expect(theta.every((t) => t.name.startsWith("shared/"))).toBe(true);
      expect((await knee.domainTensors(phase)).every((t) => t.name.startsWith("domain/knee/"))).toBe(true);
      expect((await ankle.domainTensors(phase)).every((t) => t.name.startsWith("domain/ankle/"))).toBe(true);
      // Same seed → same initial Θ at every site.
      expect((await ankle.sharedTensors(phase)).map((t) => t.data[0])).toEqual(theta.map((t) => t.data[0]));
    }
    await knee.trainSteps("seg", { steps: 1 });
    const theta = await knee.sharedTensors("seg");
    ankle.setSharedTensors("seg", theta);
    expect((await ankle.sharedTensors("seg")).map((t) => Array.from(t.data))).toEqual(
      theta.map((t) => Array.from(t.data)),
    );
    expect(() => ankle.setSharedTensors("seg", theta.slice(1))).toThrow(/is missing/);
    const kneeDomain = await knee.domainTensors("seg");
    expect(() => ankle.setDomainTensors("seg", kneeDomain)).toThrow(/not one of them/);
    await expect(ankle.validate("knee")).rejects.toThrow(/serves ankle, not knee/);
    knee.dispose();
    ankle.dispose();
  });

  it("uses bank negatives, and says once when L_MSC has one domain and no bank", async () => {
    const warnings: string[] = [];
    const log = {
      warn: (_o: unknown, msg: string) => warnings.push(msg),
    } as unknown as import("pino").Logger;
    const t = new SegmentationTrainer(
      testTrainerConfig("dsl+msc", ["knee"], { base: 4, depth: 3, size: 16, segBatch: 4 }),
      toyData(["knee"], 16, 4, 2),
      { makeSampler: toySampler, log },
    );
    await t.trainSteps("seg", { steps: 1 });
    await t.trainSteps("seg", { steps: 1 });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/in-batch terms only/);
    const other = new SegmentationTrainer(
      testTrainerConfig("dsl+msc", ["ankle"], { base: 4, depth: 3, size: 16 }),
      toyData(["ankle"], 16, 4, 2),
      { makeSampler: toySampler },
    );
    const bank = await other.embeddings("seg", { count: 6, seed: 3 });
    const before = tf.memory().numTensors;
    const r = await t.trainSteps("seg", { steps: 2, bank });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.loss.msc).toBeGreaterThan(0);
    const bad = { scales: [{ ...bank.scales[0], dim: 3 }] };
    await expect(t.trainSteps("seg", { steps: 1, bank: bad })).rejects.toThrow(/dim 3/);
    expect(bank.scales[0].domains.every((d) => d === JOINTS.indexOf("ankle"))).toBe(true);
    t.dispose();
    other.dispose();
  });

  it("shared baseline: one union head, no domain tensors, predictions mapped back to the joint's labels", async () => {
    const t = new SegmentationTrainer(
      testTrainerConfig("shared", ["knee", "shoulder"], { base: 4, depth: 3, size: 16 }),
      toyData(["knee", "shoulder"], 16, 4, 2),
      { makeSampler: toySampler },
    );
    expect(await t.domainTensors("seg")).toEqual([]);
    expect((await t.sharedTensors("seg")).find((x) => x.name === "shared/head/kernel")?.shape).toEqual([
      1, 1, 4, 10,
    ]);
    await t.trainSteps("seg", { steps: 1 });
    // A head that outputs one union class everywhere: the joint it belongs to gets that class's
    // own label value, every other joint background.
    const images = toyData(["shoulder"], 16, 2, 1).shoulder!.train.images;
    const theta = await t.sharedTensors("seg");
    const winning = (u: number) =>
      theta.map((x) =>
        x.name === "shared/head/kernel"
          ? { ...x, data: new Float32Array(x.data.length) }
          : x.name === "shared/head/bias"
            ? { ...x, data: Float32Array.from({ length: 10 }, (_, i) => (i === u ? 100 : 0)) }
            : x,
      );
    const labelsOf = async (joint: "knee" | "shoulder") => [...new Set(await t.predictSlices(joint, images))];
    const cases: [number, string, number, number][] = [
      // union class, its name, shoulder label, knee label
      [9, "shoulder/scapula", 2, 0],
      [8, "shoulder/humerus", 1, 0],
      [4, "knee/femur", 0, 1],
      [7, "knee/tibia", 0, 4],
      [3, "ankle/tibia", 0, 0],
      [0, "background", 0, 0],
    ];
    for (const [u, name, shoulder, knee] of cases) {
      expect(t.union?.names[u]).toBe(name);
      t.setSharedTensors("seg", winning(u));
      expect(await labelsOf("shoulder"), name).toEqual([shoulder]);
      expect(await labelsOf("knee"), name).toEqual([knee]);
    }
    t.dispose();
  });

  it("validation Dice is 2|P∩T|/(|P|+|T|) per label over the validation slices", async () => {
    const data = toyData(["knee"], 16, 4, 3);
    const t = new SegmentationTrainer(
      testTrainerConfig("dsl", ["knee"], { base: 4, depth: 3, size: 16 }),
      data,
      { makeSampler: toySampler },
    );
    const truth = data.knee!.val.labels;
    const count = (v: number) => truth.reduce((n, x) => n + (x === v ? 1 : 0), 0);
    const gamma = await t.domainTensors("seg");
    // every voxel predicted as label `winner` (the head's bias decides, its kernel is zero)
    for (const winner of [1, 3]) {
      t.setDomainTensors(
        "seg",
        gamma.map((x) =>
          x.name === "domain/knee/head/kernel"
            ? { ...x, data: new Float32Array(x.data.length) }
            : x.name === "domain/knee/head/bias"
              ? { ...x, data: Float32Array.from({ length: 5 }, (_, i) => (i === winner ? 100 : 0)) }
              : x,
        ),
      );
      const v = await t.validate("knee");
      const names = ["background", "femur", "fibula", "patella", "tibia"];
      const expected: Record<string, number> = {};
      for (let c = 1; c < 5; c++)
        expected[names[c] as string] = c === winner ? (2 * count(c)) / (count(c) + truth.length) : 0;
      expect(count(winner)).toBeGreaterThan(0);
      expect(v.joint).toBe("knee");
      expect(v.slices).toBe(3);
      for (const [name, d] of Object.entries(expected)) expect(v.dice[name], name).toBeCloseTo(d, 12);
      expect(v.mean).toBeCloseTo(Object.values(expected).reduce((a, b) => a + b, 0) / 4, 12);
    }
    t.dispose();
  });

  it("rejects bad configurations with one clear line", () => {
    const data = toyData(["knee"], 16, 2, 1);
    const mk =
      (o: object, method: "individual" | "dsl" = "dsl", joints: (typeof all)[number][] = ["knee"]) =>
      () =>
        new SegmentationTrainer(
          testTrainerConfig(method, joints, { base: 4, depth: 3, size: 16, ...o }),
          data,
        );
    expect(mk({ size: 18 })).toThrow(/divisible by 2\^\(depth−1\) = 4/);
    expect(mk({}, "individual", ["knee", "ankle"])).toThrow(/one joint per model/);
    expect(mk({ scales: [5] })).toThrow(/scale 5 does not exist/);
    expect(mk({}, "dsl", ["ankle"])).toThrow(/no data for ankle/);
  });
});
