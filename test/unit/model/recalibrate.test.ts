import { beforeAll, describe, expect, it } from "vitest";
import { initEngine } from "../../../src/model/engine/backend.js";
import { tf } from "../../../src/model/engine/tf.js";
import { SegmentationTrainer } from "../../../src/model/trainer.js";
import { testTrainerConfig, toyData, toySampler } from "./helpers.js";

const make = () =>
  new SegmentationTrainer(
    testTrainerConfig("dsl", ["knee"], { base: 4, depth: 3, size: 16, segBatch: 4, seed: 3 }),
    toyData(["knee"], 16, 6, 3),
    { makeSampler: toySampler },
  );

const runningStats = async (t: SegmentationTrainer) =>
  (await t.domainTensors("seg")).filter((x) => /moving_(mean|variance)$/.test(x.name));

describe("SegmentationTrainer.recalibrateNorms (new Θ, stale running statistics)", () => {
  beforeAll(async () => {
    await initEngine("auto");
  });

  it("re-estimates only the running statistics, for the current Θ, without leaking tensors", async () => {
    const site = make();
    const other = make();
    await other.trainSteps("seg", { steps: 3 }); // another site's Θ, far from this site's
    await site.trainSteps("seg", { steps: 1 });
    const trainable = (await site.domainTensors("seg")).filter((x) => !/moving_/.test(x.name));
    const before = await runningStats(site);
    site.setSharedTensors("seg", await other.sharedTensors("seg"));
    const tensors = tf.memory().numTensors;
    site.recalibrateNorms("seg", 4);
    expect(tf.memory().numTensors).toBe(tensors);
    const after = await runningStats(site);
    expect(after.map((x) => x.name)).toEqual(before.map((x) => x.name));
    // Statistics moved to the new Θ's activations; γ, β and heads did not move at all.
    const moved = after.some((x, i) => x.data.some((v, j) => Math.abs(v - before[i].data[j]) > 1e-4));
    expect(moved).toBe(true);
    (await site.domainTensors("seg"))
      .filter((x) => !/moving_/.test(x.name))
      .forEach((x, i) => {
        expect(Array.from(x.data)).toEqual(Array.from(trainable[i].data));
      });
    // A fresh site recalibrated on the same Θ ends with valid (positive) running variances.
    const again = make();
    again.setSharedTensors("seg", await other.sharedTensors("seg"));
    again.recalibrateNorms("seg", 4);
    const a = await runningStats(again);
    for (const variance of a.filter((x) => x.name.endsWith("moving_variance"))) {
      expect(Math.min(...variance.data)).toBeGreaterThan(0);
    }
    for (const t of [site, other, again]) t.dispose();
  });
});
