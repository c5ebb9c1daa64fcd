/**
 * What a study config's `strategy:` block turns into (src/aggregation/strategies): each strategy's
 * defaults, the bounds of every parameter at their edges, the name the study and its model card
 * show, its initial server state, and the small decisions inside (FedAvg's plain mean, Krum's
 * neighbourhood and m, the trimmed mean's cut). The maths of each step is in strategies.test.ts
 * and robust.test.ts.
 */
import { describe, expect, it } from "vitest";
import { trimmedMean } from "../../../src/aggregation/strategies/fedtrimmedavg.js";
import {
  createStrategy,
  STRATEGY_NAMES,
  strategyConfigSchema,
} from "../../../src/aggregation/strategies/index.js";
import { krumOrder } from "../../../src/aggregation/strategies/krum.js";
import type { SiteResult, TensorSchema } from "../../../src/aggregation/strategy.js";
import type { NamedTensor } from "../../../src/model/api.js";
import { parseStudyConfig, type StudyConfigInput } from "../../../src/study/config.js";

const study = (strategy: StudyConfigInput["strategy"], localSteps = 5) =>
  parseStudyConfig({
    study: "t",
    method: "dsl",
    sites: [
      { name: "a", joint: "ankle" },
      { name: "b", joint: "knee" },
    ],
    rounds: 4,
    localSteps,
    training: { seg: { batch: 6, lr: 0.01 }, ae: { batch: 6, lr: 0.002 } },
    strategy,
  });
const accepts = (x: unknown) => strategyConfigSchema.safeParse(x).success;
const t = (name: string, values: number[]): NamedTensor => ({
  name,
  shape: [values.length],
  data: Float32Array.from(values),
});
const schema: TensorSchema = { tensors: [{ name: "shared/w", shape: [1] }] };
const ctx = { fold: 0, phase: "seg" as const, round: 0, rounds: 4 };

describe("strategy configs", () => {
  it("defaults to FedAdam; every strategy's defaults", () => {
    expect(strategyConfigSchema.parse(undefined)).toMatchObject({ name: "fedadam" });
    expect(STRATEGY_NAMES).toEqual([
      "fedavg",
      "fedavgm",
      "fedadam",
      "fedyogi",
      "fedprox",
      "fedmedian",
      "fedtrimmedavg",
      "krum",
    ]);
    const policy = { weighting: "samples" };
    expect(strategyConfigSchema.parse({ name: "fedavg" })).toMatchObject({
      ...policy,
      lr: 1,
      update: "model",
    });
    expect(strategyConfigSchema.parse({ name: "fedavgm" })).toMatchObject({
      ...policy,
      lr: 0.1,
      momentum: 0.9,
    });
    for (const name of ["fedadam", "fedyogi"] as const) {
      const p = strategyConfigSchema.parse({ name });
      expect(p).toMatchObject({
        weighting: "uniform",
        update: "auto",
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        biasCorrection: true,
      });
      expect(p).not.toHaveProperty("lr");
    }
    expect(strategyConfigSchema.parse({ name: "fedprox" })).toMatchObject({ mu: 0.01, update: "model" });
    expect(strategyConfigSchema.parse({ name: "fedtrimmedavg" })).toMatchObject({ beta: 0.2 });
    expect(strategyConfigSchema.parse({ name: "krum" })).toMatchObject({ byzantine: 1, keep: 0 });
  });

  it("bounds every parameter, edges included where the range is closed", () => {
    const edges: [Record<string, unknown>, boolean][] = [
      [{ name: "fedavg", lr: 100 }, true],
      [{ name: "fedavg", lr: 100.5 }, false],
      [{ name: "fedavg", lr: 0 }, false],
      [{ name: "fedavgm", momentum: 0 }, true],
      [{ name: "fedavgm", momentum: 0.999 }, true],
      [{ name: "fedavgm", momentum: 1 }, false],
      [{ name: "fedavgm", lr: 100 }, true],
      [{ name: "fedavgm", lr: 101 }, false],
      [{ name: "fedadam", lr: 100, aeLr: 100 }, true],
      [{ name: "fedadam", lr: 101 }, false],
      [{ name: "fedadam", aeLr: 0 }, false],
      [{ name: "fedadam", beta1: 0, beta2: 0 }, true],
      [{ name: "fedadam", beta1: 0.9999, beta2: 0.99999 }, true],
      [{ name: "fedadam", beta1: 1 }, false],
      [{ name: "fedadam", beta2: 1 }, false],
      [{ name: "fedyogi", beta1: -0.1 }, false],
      [{ name: "fedyogi", epsilon: 10 }, true],
      [{ name: "fedyogi", epsilon: 11 }, false],
      [{ name: "fedyogi", epsilon: 0 }, false],
      [{ name: "fedprox", mu: 0 }, true],
      [{ name: "fedprox", mu: 1000 }, true],
      [{ name: "fedprox", mu: 1001 }, false],
      [{ name: "fedprox", mu: -1 }, false],
      [{ name: "fedprox", update: "gradient" }, false],
      [{ name: "fedtrimmedavg", beta: 0 }, true],
      [{ name: "fedtrimmedavg", beta: 0.49 }, true],
      [{ name: "fedtrimmedavg", beta: 0.5 }, false],
      [{ name: "fedtrimmedavg", beta: -0.1 }, false],
      [{ name: "krum", byzantine: 255, keep: 256 }, true],
      [{ name: "krum", byzantine: 256 }, false],
      [{ name: "krum", keep: 257 }, false],
      [{ name: "krum", byzantine: 1.5 }, false],
      [{ name: "krum", keep: -1 }, false],
      [{ name: "fedmedian", update: "gradient" }, false],
      [{ name: "fedavg", unknown: 1 }, false],
      [{ name: "fedsgd" }, false],
    ];
    for (const [config, ok] of edges) expect(accepts(config), JSON.stringify(config)).toBe(ok);
  });

  it("names each strategy the way the study, its report and the model card show it", () => {
    const names = [
      [{ name: "fedavg" }, "fedavg(samples)"],
      [{ name: "fedavg", weighting: "uniform", update: "gradient" }, "fedavg(uniform, gradient)"],
      [{ name: "fedavgm", lr: 0.5, momentum: 0.8 }, "fedavgm(samples, lr 0.5, β 0.8)"],
      [{ name: "fedadam" }, "fedadam(uniform, auto)"],
      [{ name: "fedyogi", weighting: "samples", update: "model" }, "fedyogi(samples, model)"],
      [{ name: "fedprox", mu: 0.1 }, "fedprox(samples, μ 0.1)"],
      [{ name: "fedmedian" }, "fedmedian"],
      [{ name: "fedtrimmedavg", beta: 0.1 }, "fedtrimmedavg(β=0.1)"],
      [{ name: "krum", byzantine: 2 }, "krum(f=2)"],
      [{ name: "krum", byzantine: 1, keep: 3 }, "multi-krum(f=1,m=3)"],
    ] as const;
    for (const [config, name] of names)
      expect(
        createStrategy(study(config, "update" in config && config.update === "gradient" ? 1 : 5)).name,
      ).toBe(name);
  });

  it("starts each server state empty, with a step or round count where the optimiser keeps one", () => {
    const initial = (config: StudyConfigInput["strategy"]) => createStrategy(study(config)).initialize([]);
    expect(initial({ name: "fedavg" })).toEqual({ tensors: [], scalars: {} });
    expect(initial({ name: "fedavgm" })).toEqual({ tensors: [], scalars: { rounds: 0 } });
    expect(initial({ name: "fedadam" })).toEqual({ tensors: [], scalars: { step: 0 } });
    expect(initial({ name: "fedyogi" })).toEqual({ tensors: [], scalars: { step: 0 } });
    for (const name of ["fedprox", "fedmedian", "fedtrimmedavg", "krum"] as const)
      expect(initial({ name })).toEqual({ tensors: [], scalars: {} });
  });

  it("FedAvg at lr 1 with models returns the mean itself; another lr or gradients take a server step", () => {
    const run = (config: StudyConfigInput["strategy"], sent: number, current: number, localSteps = 5) => {
      const s = createStrategy(study(config, localSteps));
      const agg = s.begin(schema);
      agg.add({ site: "a", samples: 1, tensors: [t("shared/w", [sent])] });
      const out = s.aggregate(agg, [t("shared/w", [current])], s.initialize([]), ctx);
      return out.model[0]?.data[0];
    };
    expect(run({ name: "fedavg" }, 3, 1)).toBe(3);
    // lr 0.5: Θ + 0.5·(mean − Θ)
    expect(run({ name: "fedavg", lr: 0.5 }, 3, 1)).toBe(2);
    // gradients: Θ − lr·g
    expect(run({ name: "fedavg", update: "gradient" }, 0.25, 1, 1)).toBe(0.75);
    // auto with one local step is FedSGD too
    expect(run({ name: "fedavg", update: "auto" }, 0.25, 1, 1)).toBe(0.75);
    // auto with several local steps sends models: the mean
    expect(run({ name: "fedavg", update: "auto" }, 3, 1, 5)).toBe(3);
  });

  it("FedProx tells every site its μ; the others tell none", () => {
    const mu = (config: StudyConfigInput["strategy"]) =>
      Object.values(createStrategy(study(config)).configureTrain(ctx, ["a", "b"])).map((i) => i.proximalMu);
    expect(mu({ name: "fedprox", mu: 0.3 })).toEqual([0.3, 0.3]);
    expect(mu({ name: "fedavg" })).toEqual([0, 0]);
    expect(mu({ name: "krum" })).toEqual([0, 0]);
  });
});

describe("robust combiners' edges", () => {
  const r = (site: string, v: number, samples = 1): SiteResult => ({
    site,
    samples,
    tensors: [t("shared/w", [v])],
  });
  it("the trimmed mean cuts ⌊β·n⌋ from each end (none when β·n < 1)", () => {
    expect(trimmedMean(Float64Array.from([1, 2, 100]), 0.2)).toBe(103 / 3);
    expect(trimmedMean(Float64Array.from([1, 2, 3, 100, -50]), 0.2)).toBe(2);
    expect(trimmedMean(Float64Array.from([5, 1, 9, 3]), 0.25)).toBe(4);
    expect(trimmedMean(Float64Array.from([7]), 0.4)).toBe(7);
  });

  it("Krum scores by at least one neighbour, ties by order; m larger than n averages all", () => {
    // n = 2: n − f − 2 < 1, each score is the one distance: equal, ties keep the order
    expect(krumOrder([r("a", 0), r("b", 4)], 1)).toEqual([0, 1]);
    // n = 4, f = 0: two nearest neighbours each
    expect(krumOrder([r("a", 0), r("b", 1), r("c", 2), r("d", 10)], 0)).toEqual([1, 0, 2, 3]);
    const multi = createStrategy(study({ name: "krum", byzantine: 0, keep: 10 }));
    const agg = multi.begin(schema);
    for (const x of [r("a", 1, 1), r("b", 2, 1), r("c", 6, 2)]) agg.add(x);
    // every result, weighted by samples: (1 + 2 + 12) / 4
    expect(multi.aggregate(agg, [t("shared/w", [0])], multi.initialize([]), ctx).model[0]?.data[0]).toBe(
      3.75,
    );
  });
});
