/**
 * The trainer's L_MSC really uses the other sites' embeddings: two identical trainers (same seed,
 * same Θ_0, same first batch) take one step, one with a bank of another domain's vectors and one
 * without: the cross-entropy is identical and L_MSC is larger with the extra negatives (the value of
 * the term with a bank is checked against a loop reference in losses.test.ts). A trainer that
 * dropped the bank would give equal values.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { EmbeddingBank } from "../../../src/model/api.js";
import { initEngine } from "../../../src/model/engine/backend.js";
import { SegmentationTrainer } from "../../../src/model/trainer.js";
import { testTrainerConfig, toyData, toySampler } from "./helpers.js";

const make = () =>
  new SegmentationTrainer(
    testTrainerConfig("dsl+msc", ["knee"], { base: 4, depth: 3, size: 16, segBatch: 4, seed: 9 }),
    toyData(["knee"], 16, 6, 2),
    { makeSampler: toySampler },
  );

describe("L_MSC in a federated step", () => {
  beforeAll(async () => {
    await initEngine("wasm");
  });

  it("differs with and without the bank on the same batch, and grows with other-domain negatives", async () => {
    const donor = new SegmentationTrainer(
      testTrainerConfig("dsl+msc", ["ankle"], { base: 4, depth: 3, size: 16, seed: 3 }),
      toyData(["ankle"], 16, 6, 2),
      { makeSampler: toySampler },
    );
    const own = await donor.embeddings("seg", { count: 6, seed: 2 });
    donor.dispose();
    // as a site receives it: anonymous negatives (domain −1)
    const bank: EmbeddingBank = {
      scales: own.scales.map((s) => ({ ...s, domains: new Int32Array(s.count).fill(-1) })),
    };
    const a = make();
    const b = make();
    const withBank = await a.trainSteps("seg", { steps: 1, bank });
    const without = await b.trainSteps("seg", { steps: 1 });
    // same batch, same Θ: the cross-entropy is identical, the contrastive term is not
    expect(withBank.loss.ce).toBe(without.loss.ce);
    expect(withBank.loss.msc).toBeDefined();
    expect(without.loss.msc).toBeDefined();
    expect(withBank.loss.msc! - without.loss.msc!).toBeGreaterThan(1e-3);
    a.dispose();
    b.dispose();
  });
});
