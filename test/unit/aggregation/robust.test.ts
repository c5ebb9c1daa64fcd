/**
 * Robust aggregation: coordinate-wise median, trimmed mean and Krum (as in Flower) against values
 * computed by hand, their snapshots, and the norm bound relative to the round's median update —
 * each with one site that replaces the global model.
 */
import { describe, expect, it } from "vitest";
import { normOutliers, withNormBound } from "../../../src/aggregation/norm-bound.js";
import { createStrategy } from "../../../src/aggregation/strategies/index.js";
import { krumOrder } from "../../../src/aggregation/strategies/krum.js";
import type { SiteResult, TensorSchema } from "../../../src/aggregation/strategy.js";
import type { NamedTensor } from "../../../src/model/api.js";
import { parseStudyConfig, type StudyConfigInput } from "../../../src/study/config.js";

const t = (name: string, values: number[]): NamedTensor => ({
  name,
  shape: [values.length],
  data: Float32Array.from(values),
});
/** A two-tensor Θ: w = [a, b], c = [c]. */
const theta = (a: number, b: number, c: number) => [t("shared/w", [a, b]), t("shared/c", [c])];
const schema: TensorSchema = {
  tensors: [
    { name: "shared/w", shape: [2] },
    { name: "shared/c", shape: [1] },
  ],
};
const result = (site: string, samples: number, tensors: NamedTensor[]): SiteResult => ({
  site,
  samples,
  tensors,
});
const study = (strategy: StudyConfigInput["strategy"], over: Partial<StudyConfigInput> = {}) =>
  parseStudyConfig({
    study: "t",
    method: "dsl",
    sites: [
      { name: "a", joint: "ankle" },
      { name: "b", joint: "knee" },
      { name: "c", joint: "shoulder" },
    ],
    rounds: 2,
    localSteps: 1,
    strategy,
    ...over,
  });
const ctx = { fold: 0, phase: "seg" as const, round: 0, rounds: 2 };
const expectClose = (got: number[], want: number[]) => {
  expect(got).toHaveLength(want.length);
  for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 6);
};
const values = (ts: readonly NamedTensor[]) => ts.flatMap((x) => Array.from(x.data));

/** Three honest results around Θ_r = (1, 1, 1), and one site that sends zeros with a huge count. */
const honest = [
  result("a", 4, theta(1.1, 0.9, 1.0)),
  result("b", 4, theta(0.9, 1.2, 1.1)),
  result("c", 4, theta(1.0, 1.0, 0.8)),
];
const attacker = result("x", 1e6, theta(0, 0, 0));
const current = theta(1, 1, 1);

describe("robust strategies", () => {
  it("fedmedian is the coordinate-wise median, whatever one site sends", () => {
    const s = createStrategy(study({ name: "fedmedian" }));
    const round = s.begin(schema);
    for (const r of [...honest, attacker]) round.add(r);
    // per coordinate, 4 values: median = mean of the two middle ones
    const model = s.aggregate(round, current, s.initialize(current), ctx).model;
    const got = values(model);
    const want = [(0.9 + 1.0) / 2, (0.9 + 1.0) / 2, (0.8 + 1.0) / 2];
    expectClose(got, want);
    // odd count: the middle value
    const odd = s.begin(schema);
    for (const r of honest) odd.add(r);
    expect(values(odd.result())).toEqual(values(theta(1.0, 1.0, 1.0)));
  });

  it("fedtrimmedavg cuts ⌊β·n⌋ values at each end of every coordinate", () => {
    const s = createStrategy(study({ name: "fedtrimmedavg", beta: 0.25 }));
    const round = s.begin(schema);
    for (const r of [...honest, attacker]) round.add(r);
    // n = 4, cut 1 each end: mean of the two middle values
    const got = values(round.result());
    expectClose(got, [0.95, 0.95, 0.9]);
    const none = createStrategy(study({ name: "fedtrimmedavg", beta: 0 })).begin(schema);
    for (const r of honest) none.add(r);
    expect(values(none.result())[0]).toBeCloseTo(1.0, 6);
    expect(() => study({ name: "fedtrimmedavg", beta: 0.5 })).toThrowError(/strategy\.beta/);
  });

  it("krum picks the model closest to its n − f − 2 neighbours; multi-krum averages the m best", () => {
    const all = [...honest, attacker];
    // distances² to the others: the attacker is ≈ 3 from everyone, the honest ones ≤ 0.2
    const order = krumOrder(all, 1);
    expect(order.at(-1)).toBe(3);
    const krum = createStrategy(study({ name: "krum", byzantine: 1 }));
    const round = krum.begin(schema);
    for (const r of all) round.add(r);
    const chosen = values(round.result());
    expect(honest.map((h) => values(h.tensors).join())).toContain(chosen.join());
    const multi = createStrategy(study({ name: "krum", byzantine: 1, keep: 3 }));
    const r2 = multi.begin(schema);
    for (const r of all) r2.add(r);
    // the three honest models, equal samples: their mean
    const mean = [1.0, (0.9 + 1.2 + 1.0) / 3, (1.0 + 1.1 + 0.8) / 3];
    expectClose(values(r2.result()), mean);
  });

  it("restores a round from its snapshot byte for byte", () => {
    for (const strategy of [{ name: "fedmedian" }, { name: "krum" }, { name: "fedtrimmedavg" }] as const) {
      const s = createStrategy(study(strategy));
      const round = s.begin(schema);
      for (const r of [...honest, attacker]) round.add(r);
      const restored = s.restore(schema, Buffer.concat(round.snapshot()));
      expect(restored.sites).toEqual(["a", "b", "c", "x"]);
      expect(restored.totalSamples).toBe(12 + 1e6);
      expect(values(restored.result())).toEqual(values(round.result()));
      expect(() => s.restore(schema, Buffer.concat(round.snapshot()).subarray(0, 40))).toThrowError(
        /FJ_AGG_SNAPSHOT|aggregator snapshot/,
      );
    }
  });
});

describe("norm bound relative to the round's median update", () => {
  it("leaves out a result farther from Θ_r than c × the median distance, and says so", () => {
    const { kept, excluded, median } = normOutliers([...honest, attacker], current, 3);
    expect(kept.map((r) => r.site)).toEqual(["a", "b", "c"]);
    expect(excluded).toHaveLength(1);
    expect(excluded[0]).toMatchObject({ site: "x", code: "FJ_AGG_NORM_OUTLIER" });
    expect(excluded[0].reason).toMatch(/exceeds 3 × the round's median/);
    expect(median).toBeGreaterThan(0.1);
    expect(median).toBeLessThan(0.3);
  });

  it("wraps FedAvg: the outlier's declared samples do not matter, the others' weighted mean is Θ_{r+1}", () => {
    const fedavg = createStrategy(study({ name: "fedavg", weighting: "samples" }));
    const bounded = withNormBound(fedavg, 3);
    const round = bounded.begin(schema);
    for (const r of [...honest, attacker]) round.add(r);
    const out = bounded.aggregate(round, current, bounded.initialize(current), ctx);
    expect(out.excluded?.map((e) => e.site)).toEqual(["x"]);
    const mean = [1.0, (0.9 + 1.2 + 1.0) / 3, (1.0 + 1.1 + 0.8) / 3];
    expectClose(values(out.model), mean);
    // without the bound the attacker's 10⁶ samples would have carried the mean to ≈ 0
    const plain = fedavg.begin(schema);
    for (const r of [...honest, attacker]) plain.add(r);
    expect(Math.abs(values(plain.result())[0])).toBeLessThan(1e-3);
    // the bound off: the strategy itself, unchanged
    expect(withNormBound(fedavg, undefined)).toBe(fedavg);
    // snapshot of a bounded round restores every result
    const restored = bounded.restore(schema, Buffer.concat(round.snapshot()));
    expect(restored.sites).toEqual(["a", "b", "c", "x"]);
  });
});
