/**
 * Server optimisers and site instructions of every strategy (src/aggregation/strategies): the
 * maths against hand-computed steps, server state round-tripping through StrategyState (what the
 * coordinator persists), running statistics taking the mean, and what each strategy tells sites.
 */
import { describe, expect, it } from "vitest";
import { createStrategy } from "../../../src/aggregation/strategies/index.js";
import type {
  RoundContext,
  Strategy,
  StrategyState,
  TensorSchema,
} from "../../../src/aggregation/strategy.js";
import type { NamedTensor } from "../../../src/model/api.js";
import { parseStudyConfig, type StudyConfigInput } from "../../../src/study/config.js";

const t = (name: string, values: number[]): NamedTensor => ({
  name,
  shape: [values.length],
  data: Float32Array.from(values),
});
const schema: TensorSchema = {
  tensors: [
    { name: "shared/w", shape: [2] },
    { name: "shared/bn/moving_mean", shape: [1], trainable: false },
  ],
};
const model = (w0: number, w1: number, stat: number) => [
  t("shared/w", [w0, w1]),
  t("shared/bn/moving_mean", [stat]),
];
const study = (strategy: StudyConfigInput["strategy"], over: Partial<StudyConfigInput> = {}) =>
  parseStudyConfig({
    study: "t",
    method: "dsl",
    sites: [
      { name: "a", joint: "ankle" },
      { name: "b", joint: "knee" },
    ],
    rounds: 4,
    localSteps: 5,
    training: { seg: { batch: 6, lr: 0.01 }, ae: { batch: 6, lr: 0.002 } },
    strategy,
    ...over,
  });
const ctx = (round: number, phase: "seg" | "ae" = "seg"): RoundContext => ({
  fold: 0,
  phase,
  round,
  rounds: 4,
});

/** One round: both sites send `sent[i]`, uniform weights unless the strategy weighs by samples. */
function round(s: Strategy, current: NamedTensor[], state: StrategyState, sent: NamedTensor[][], r = 0) {
  const agg = s.begin(schema);
  sent.forEach((tensors, i) => {
    agg.add({ site: ["a", "b"][i], samples: 6, tensors });
  });
  return s.aggregate(agg, current, state, ctx(r));
}
const values = (ts: NamedTensor[], name: string) => Array.from(ts.find((x) => x.name === name)!.data);
/** float32 server arithmetic (1 − β rounded to float32, as the native Adam kernel): 5 digits. */
const close = (a: number[], b: number[], digits = 5) => {
  a.forEach((v, i) => {
    expect(v).toBeCloseTo(b[i], digits);
  });
};

describe("FedAvg as server SGD", () => {
  it("lr 1 with models is the mean; another lr scales the pseudo-gradient; gradients are FedSGD", () => {
    const theta = model(1, 1, 0);
    const sent = [model(0, 2, 2), model(0, 4, 4)]; // mean w = [0, 3], mean stat 3
    const plain = createStrategy(study({ name: "fedavg", weighting: "uniform" }));
    const r1 = round(plain, theta, plain.initialize(theta), sent);
    close(values(r1.model, "shared/w"), [0, 3]);
    const half = createStrategy(study({ name: "fedavg", weighting: "uniform", lr: 0.5 }));
    const r2 = round(half, theta, half.initialize(theta), sent);
    close(values(r2.model, "shared/w"), [0.5, 2]); // Θ − 0.5·(Θ − mean)
    close(values(r2.model, "shared/bn/moving_mean"), [3]); // statistics: the mean, never stepped
    const sgd = createStrategy(
      study({ name: "fedavg", weighting: "uniform", update: "gradient", lr: 0.1 }, { localSteps: 1 }),
    );
    const r3 = round(sgd, theta, sgd.initialize(theta), sent);
    close(values(r3.model, "shared/w"), [1, 1 - 0.1 * 3]);
  });
});

describe("FedAvgM (server momentum)", () => {
  it("v ← β·v + g, Θ ← Θ − η·v, with v persisted in the server state between rounds", () => {
    const s = createStrategy(study({ name: "fedavgm", weighting: "uniform", lr: 0.5, momentum: 0.9 }));
    let theta = model(1, 1, 0);
    let state = s.initialize(theta);
    const r1 = round(s, theta, state, [model(0, 1, 0), model(0, 1, 0)]); // g = [1, 0]
    close(values(r1.model, "shared/w"), [0.5, 1]);
    expect(r1.state.tensors.map((x) => x.name)).toEqual(["momentum/shared/w"]);
    theta = r1.model;
    // the coordinator persists and reloads the state: a structured clone is what comes back
    state = structuredClone(r1.state);
    const r2 = round(s, theta, state, [model(0.5, 0, 0), model(0.5, 2, 0)], 1); // g = [0, 0]
    close(values(r2.model, "shared/w"), [0.5 - 0.5 * 0.9, 1]); // v = 0.9·[1, 0]
    expect(r2.state.scalars.rounds).toBe(2);
  });
});

describe("FedAdam and FedYogi (Reddi et al. 2021)", () => {
  it("FedAdam's first step is η·sign(g) with bias correction, and matches a hand-computed second step", () => {
    const s = createStrategy(study({ name: "fedadam", weighting: "uniform", lr: 0.1 }));
    const theta = model(1, 1, 0);
    const r1 = round(s, theta, s.initialize(theta), [model(0.8, 1.2, 5), model(0.8, 1.2, 7)]); // g = [0.2, −0.2]
    close(values(r1.model, "shared/w"), [0.9, 1.1]);
    close(values(r1.model, "shared/bn/moving_mean"), [6]);
    expect(r1.state.scalars.step).toBe(1);
    const g2 = [0.1, 0.3];
    const r2 = round(
      s,
      r1.model,
      structuredClone(r1.state),
      [model(0.9 - g2[0], 1.1 - g2[1], 0), model(0.9 - g2[0], 1.1 - g2[1], 0)],
      1,
    );
    const g1 = [0.2, -0.2];
    const expected = [0.9, 1.1].map((w, i) => {
      const m = 0.9 * (0.1 * g1[i]) + 0.1 * g2[i];
      const v = 0.999 * (0.001 * g1[i] ** 2) + 0.001 * g2[i] ** 2;
      return w - (0.1 * (m / (1 - 0.9 ** 2))) / (Math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8);
    });
    close(values(r2.model, "shared/w"), expected);
  });

  it("without bias correction and with Reddi's τ the first step is η·(1−β1)·g/(√((1−β2)g²)+τ)", () => {
    const s = createStrategy(
      study({ name: "fedadam", weighting: "uniform", lr: 1, epsilon: 1e-3, biasCorrection: false }),
    );
    const theta = model(0, 0, 0);
    const r = round(s, theta, s.initialize(theta), [model(-0.5, 0, 0), model(-0.5, 0, 0)]); // g = [0.5, 0]
    const step = (0.1 * 0.5) / (Math.sqrt(0.001 * 0.25) + 1e-3);
    close(values(r.model, "shared/w"), [-step, 0], 4);
  });

  it("FedYogi's second moment shrinks additively where FedAdam's decays", () => {
    const adam = createStrategy(study({ name: "fedadam", weighting: "uniform", lr: 0.1, beta2: 0.9 }));
    const yogi = createStrategy(study({ name: "fedyogi", weighting: "uniform", lr: 0.1, beta2: 0.9 }));
    const theta = model(0, 0, 0);
    /** Both sites send Θ − g: the pseudo-gradient is g. */
    const sending = (current: NamedTensor[], g: number) => {
      const w = values(current, "shared/w");
      return [0, 1].map(() => model(w[0] - g, w[1] - g, 0));
    };
    const v = (r: { state: StrategyState }) => r.state.tensors.find((x) => x.name === "v/shared/w")!.data[0];
    const a1 = round(adam, theta, adam.initialize(theta), sending(theta, 2));
    const y1 = round(yogi, theta, yogi.initialize(theta), sending(theta, 2));
    expect(v(y1)).toBeCloseTo(v(a1), 6); // v = 0 < g²: both add (1−β2)·g²
    const a2 = round(adam, a1.model, a1.state, sending(a1.model, 0.01), 1);
    const y2 = round(yogi, y1.model, y1.state, sending(y1.model, 0.01), 1);
    // v > g²: Adam v = 0.9·0.4 + 0.1·1e-4; Yogi v = 0.4 − 0.1·1e-4
    expect(v(a2)).toBeCloseTo(0.9 * 0.4 + 0.1 * 1e-4, 6);
    expect(v(y2)).toBeCloseTo(0.4 - 0.1 * 1e-4, 6);
  });

  it("the server rate defaults to the phase's training rate (SEG and AE)", () => {
    const s = createStrategy(
      study({ name: "fedadam", weighting: "uniform", update: "gradient" }, { localSteps: 1 }),
    );
    const theta = model(0, 0, 0);
    const sent = [model(1, -1, 0), model(1, -1, 0)];
    const seg = round(s, theta, s.initialize(theta), sent);
    close(values(seg.model, "shared/w"), [-0.01, 0.01]);
    const agg = s.begin(schema);
    agg.add({ site: "a", samples: 6, tensors: sent[0] });
    const ae = s.aggregate(agg, theta, s.initialize(theta), ctx(0, "ae"));
    close(values(ae.model, "shared/w"), [-0.002, 0.002]);
  });

  it("with models the default server rate is the training rate × the local steps; lr and aeLr override it per phase", () => {
    // models after 5 local steps: Θ − Θ' = g, the first bias-corrected Adam step is η·sign(g)
    const theta = model(0, 0, 0);
    const sent = [model(-1, 1, 0), model(-1, 1, 0)];
    const first = (config: StudyConfigInput["strategy"], phase: "seg" | "ae") => {
      const s = createStrategy(study(config, { localSteps: 5, aeLocalSteps: 5 }));
      const agg = s.begin(schema);
      for (const x of sent) agg.add({ site: "a", samples: 6, tensors: x });
      return values(s.aggregate(agg, theta, s.initialize(theta), ctx(0, phase)).model, "shared/w");
    };
    close(first({ name: "fedadam", update: "model" }, "seg"), [-0.05, 0.05]);
    close(first({ name: "fedadam", update: "model" }, "ae"), [-0.01, 0.01]);
    close(first({ name: "fedyogi", update: "model", lr: 0.3 }, "seg"), [-0.3, 0.3]);
    // aeLr is the AE phase's, lr the SEG phase's
    close(first({ name: "fedadam", update: "model", lr: 0.3, aeLr: 0.02 }, "ae"), [-0.02, 0.02]);
    close(first({ name: "fedadam", update: "model", aeLr: 0.02 }, "seg"), [-0.05, 0.05]);
  });
});

describe("FedProx and the site policy", () => {
  it("FedProx tells sites μ and takes the round's mean", () => {
    const s = createStrategy(study({ name: "fedprox", weighting: "uniform", mu: 0.05 }));
    expect(s.configureTrain(ctx(0), ["a", "b"]).a.proximalMu).toBe(0.05);
    const theta = model(1, 1, 0);
    const r = round(s, theta, s.initialize(theta), [model(0, 2, 2), model(0, 4, 4)]);
    close(values(r.model, "shared/w"), [0, 3]);
    expect(createStrategy(study({ name: "fedavg" })).configureTrain(ctx(0), ["a"]).a.proximalMu).toBe(0);
  });

  it("instructions carry the update kind, loss weight, optimiser policy, personalisation and validation cadence", () => {
    const s = createStrategy(
      study(
        {
          name: "fedadam",
          weighting: "uniform",
          update: "gradient",
          localOptimizer: "reset-first-moment",
          personalise: { steps: 3 },
          validateEvery: 2,
        },
        { localSteps: 1 },
      ),
    );
    const byRound = [0, 1, 2, 3].map((r) => s.configureTrain(ctx(r), ["a", "b"]).b);
    expect(byRound.map((i) => i.validate)).toEqual([true, false, true, true]); // every 2nd and the last
    expect(byRound[1]).toMatchObject({
      steps: 1,
      update: "gradient",
      lossWeight: 0.5,
      optimizer: "reset-first-moment",
      personalise: { steps: 3, lr: 0.01 },
    });
    // no personalisation or validation in auto-encoder rounds
    expect(s.configureTrain(ctx(0, "ae"), ["a"]).a).toMatchObject({
      validate: false,
      personalise: { steps: 0 },
    });
    expect(s.configureEvaluate({ fold: 0, rounds: 4 }, ["a"]).a).toEqual({
      round: 4,
      personalise: { steps: 3, lr: 0.01 },
    });
  });

  it("FedAdam and FedYogi send gradients when a round is one local step (update auto), models otherwise", () => {
    const one = createStrategy(study({ name: "fedadam" }, { localSteps: 1 }));
    expect(one.configureTrain(ctx(0), ["a"]).a.update).toBe("gradient");
    const five = createStrategy(study({ name: "fedyogi" }));
    expect(five.configureTrain(ctx(0), ["a"]).a.update).toBe("model");
    // FedAvg's default stays the model (its server step 1 on a gradient would be SGD with rate 1)
    expect(
      createStrategy(study({ name: "fedavg" }, { localSteps: 1 })).configureTrain(ctx(0), ["a"]).a.update,
    ).toBe("model");
  });

  it("FedSGD gradients need one local step per round (a one-line config error otherwise)", () => {
    expect(() => study({ name: "fedadam", update: "gradient" })).toThrowError(
      /study config: localSteps: 5 local steps: strategy.update gradient \(FedSGD\) sends one step's gradient, expected 1/,
    );
    // methods that federate nothing never send anything: no constraint
    expect(() => study({ name: "fedadam", update: "gradient" }, { method: "individual" })).not.toThrow();
    expect(() => study({ name: "fedprox", update: "gradient" } as never)).toThrowError(/strategy.update/);
  });
});
