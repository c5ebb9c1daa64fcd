import { describe, expect, it } from "vitest";
import { FedjointError } from "../../../src/errors.js";
import { CosineAccumulator, cosineTable } from "../../../src/eval/cosine.js";
import { stackLabels, stackProbabilities } from "../../../src/eval/stack.js";
import { distribution, meanStd, percentile } from "../../../src/eval/stats.js";
import { planFolds, sitePermutation } from "../../../src/study/folds.js";

describe("planFolds (leave-one-out across sites)", () => {
  const sites = [
    { site: "ankle-hospital", nExams: 5 },
    { site: "knee-hospital", nExams: 4 },
    { site: "shoulder-hospital", nExams: 7 },
  ];
  it("has min n_k folds; test π(i), validation π(i+1 mod n), train = rest", () => {
    const plan = planFolds({ sites, seed: 42 });
    expect(plan.nFolds).toBe(4);
    for (const { site, nExams } of sites) {
      const perm = plan.permutations[site];
      expect([...perm].sort((a, b) => a - b)).toEqual(Array.from({ length: nExams }, (_, i) => i));
      const tested = new Set<number>();
      for (const fold of plan.folds) {
        const f = fold.sites[site];
        expect(f.test).toBe(perm[fold.index]);
        expect(f.validation).toBe(perm[(fold.index + 1) % nExams]);
        expect(f.train).toEqual(
          Array.from({ length: nExams }, (_, i) => i).filter((e) => e !== f.test && e !== f.validation),
        );
        tested.add(f.test);
      }
      expect(tested.size).toBe(plan.nFolds); // every fold tests a different exam
    }
  });
  it("is deterministic per (seed, site) and independent of the other sites", () => {
    const a = planFolds({ sites, seed: "s1" });
    const b = planFolds({ sites: [sites[1]], seed: "s1" });
    expect(b.permutations["knee-hospital"]).toEqual(a.permutations["knee-hospital"]);
    expect(sitePermutation("s1", "knee-hospital", 4)).toEqual(a.permutations["knee-hospital"]);
    const c = planFolds({ sites, seed: "s2" });
    expect(JSON.stringify(c.permutations)).not.toEqual(JSON.stringify(a.permutations));
  });
  it("wraps validation around in the last fold of the smallest site", () => {
    const plan = planFolds({ sites: [{ site: "k", nExams: 3 }], seed: 1 });
    const p = plan.permutations.k;
    expect(plan.folds[2].sites.k).toMatchObject({ test: p[2], validation: p[0] });
  });
  it("accepts fewer folds and rejects bad input with one-line errors", () => {
    expect(planFolds({ sites, seed: 1, folds: 2 }).folds.length).toBe(2);
    expect(() => planFolds({ sites, seed: 1, folds: 5 })).toThrow(/expected an integer in 1..4/);
    expect(() => planFolds({ sites: [{ site: "a", nExams: 2 }], seed: 1 })).toThrow(FedjointError);
    expect(() => planFolds({ sites: [sites[0], sites[0]], seed: 1 })).toThrow(/twice/);
  });
});

describe("statistics", () => {
  it("meanStd uses ddof 0 like numpy.std; percentile is numpy's linear", () => {
    expect(meanStd([1, 2, 3, 4])).toEqual({ mean: 2.5, std: Math.sqrt(1.25), n: 4 });
    // numpy.percentile([1,2,3,4,10], [16, 84]) = [1.64, 6.16]
    expect(percentile([10, 1, 3, 2, 4], 16)).toBeCloseTo(1.64, 12);
    expect(percentile([10, 1, 3, 2, 4], 84)).toBeCloseTo(6.16, 12);
    expect(distribution([0.5]).p16).toBe(0.5);
    expect(Number.isNaN(meanStd([]).mean)).toBe(true);
  });
});

describe("cosine similarity tables", () => {
  const byDomain = new Map([
    [
      "ankle",
      {
        s1: [
          [1, 0],
          [0.8, 0.6],
          [0, 1],
        ],
      },
    ],
    [
      "knee",
      {
        s1: [
          [1, 0],
          [-1, 0],
        ],
      },
    ],
  ]);
  it("computes exact intra/inter means and stds", () => {
    const cells = cosineTable(byDomain);
    const get = (a: string, b: string) => cells.find((c) => c.domainA === a && c.domainB === b)!;
    // ankle intra pairs: 0.8, 0, 0.6 -> mean 1.4/3
    expect(get("ankle", "ankle").mean).toBeCloseTo(1.4 / 3, 12);
    expect(get("ankle", "ankle").pairs).toBe(3);
    // knee intra: -1
    expect(get("knee", "knee")).toMatchObject({ mean: -1, std: 0, pairs: 1, exhaustive: true });
    // inter: 1,-1,0.8,-0.8,0,0 -> mean 0, std sqrt((1+1+.64+.64)/6)
    expect(get("ankle", "knee").mean).toBeCloseTo(0, 12);
    expect(get("ankle", "knee").std).toBeCloseTo(Math.sqrt(3.28 / 6), 12);
    expect(get("knee", "ankle").mean).toBe(get("ankle", "knee").mean);
  });
  it("samples when there are more than maxPairs pairs and pools groups", () => {
    const acc = new CosineAccumulator({ maxPairs: 2, seed: 3 });
    acc.add(byDomain);
    acc.add(byDomain);
    const inter = acc.cells().find((c) => c.domainA === "ankle" && c.domainB === "knee")!;
    expect(inter.exhaustive).toBe(false);
    expect(inter.pairs).toBe(4);
  });
});

describe("stacking slices back to the original grid", () => {
  it("nearest-neighbour undoes an integer downsampling exactly", () => {
    // original 4×2 per slice, training 2×2 (rows×cols): cols 0,1 -> 0; 2,3 -> 1
    const slices = [new Uint8Array([1, 2, 3, 4]), new Uint8Array([0, 0, 5, 5])];
    const vol = stackLabels(slices, { dims: [4, 2, 2], trainSize: [2, 2] });
    expect([...vol]).toEqual([1, 1, 2, 2, 3, 3, 4, 4, 0, 0, 0, 0, 5, 5, 5, 5]);
  });
  it("bilinear + argmax on probabilities (channels last)", () => {
    // one slice 1 row × 2 cols, 2 classes: left col class 0, right col class 1; upsample to 4 cols
    const sl = new Float32Array([0.9, 0.1, 0.2, 0.8]);
    const vol = stackProbabilities([sl], 2, { dims: [4, 1, 1], trainSize: [1, 2] });
    expect([...vol]).toEqual([0, 0, 1, 1]);
    expect(() => stackProbabilities([sl, sl], 2, { dims: [4, 1, 1], trainSize: [1, 2] })).toThrow(/2 slices/);
  });
  it("supports other slicing axes", () => {
    const slices = [new Uint8Array([1, 2]), new Uint8Array([3, 4]), new Uint8Array([5, 6])];
    // axis 0: slice s = x, plane cols = y (2), rows = z (1)
    const vol = stackLabels(slices, { dims: [3, 2, 1], trainSize: [1, 2], axis: 0 });
    expect([...vol]).toEqual([1, 3, 5, 2, 4, 6]);
  });
});
