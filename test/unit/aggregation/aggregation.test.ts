import { describe, expect, it } from "vitest";
import { localOnly } from "../../../src/aggregation/local-only.js";
import { createStrategy } from "../../../src/aggregation/strategies/index.js";
import type { TensorSchema } from "../../../src/aggregation/strategy.js";
import { validateUpdate } from "../../../src/aggregation/validate.js";
import type { NamedTensor } from "../../../src/model/api.js";
import { parseStudyConfig, type StudyConfigInput } from "../../../src/study/config.js";

const t = (name: string, shape: number[], values: number[]): NamedTensor => ({
  name,
  shape,
  data: Float32Array.from(values),
});
const set = (a: number, b: number) => [t("shared/w", [2], [a, a + 1]), t("shared/b", [1], [b])];
const schemaOf = (tensors: NamedTensor[]): TensorSchema => ({
  tensors: tensors.map((x) => ({ name: x.name, shape: [...x.shape] })),
});
const study = (over: Partial<StudyConfigInput> = {}) =>
  parseStudyConfig({
    study: "t",
    method: "dsl",
    sites: [
      { name: "a", joint: "ankle" },
      { name: "b", joint: "knee" },
    ],
    rounds: 3,
    localSteps: 7,
    ...over,
  });
const fedAvg = (weighting: "samples" | "uniform" = "samples") =>
  createStrategy(study({ strategy: { name: "fedavg", weighting } }));
const ctx = { fold: 0, phase: "seg" as const, round: 1, rounds: 3 };

describe("FedAvg over shared tensors", () => {
  it("weights by samples or uniformly", () => {
    const schema = schemaOf(set(0, 0));
    const bySamples = fedAvg("samples").begin(schema);
    bySamples.add({ site: "a", samples: 1, tensors: set(0, 10) });
    bySamples.add({ site: "b", samples: 3, tensors: set(4, 2) });
    const r = bySamples.result();
    expect(Array.from(r[0].data)).toEqual([3, 4]);
    expect(r[1].data[0]).toBe(4);
    expect(bySamples.totalSamples).toBe(4);
    const uniform = fedAvg("uniform").begin(schema);
    uniform.add({ site: "a", samples: 1, tensors: set(0, 10) });
    uniform.add({ site: "b", samples: 3, tensors: set(4, 2) });
    expect(Array.from(uniform.result()[0].data)).toEqual([2, 3]);
  });

  it("keeps O(|Θ|) state whatever the number of sites, and restores from a snapshot", () => {
    const s = fedAvg("samples");
    const schema = schemaOf(set(0, 0));
    const agg = s.begin(schema);
    agg.add({ site: "s0", samples: 2, tensors: set(1, 1) });
    const bytes = () => Buffer.concat(agg.snapshot());
    const size1 = bytes().length;
    for (let i = 1; i < 50; i++) agg.add({ site: `s${i}`, samples: 2, tensors: set(1, 1) });
    // only the site list grows (names), never the tensor accumulators
    expect(bytes().length - size1).toBeLessThan(50 * 8);
    const restored = s.restore(schema, bytes());
    restored.add({ site: "late", samples: 2, tensors: set(52, 52) });
    agg.add({ site: "late", samples: 2, tensors: set(52, 52) });
    expect(Array.from(restored.result()[0].data)).toEqual(Array.from(agg.result()[0].data));
    expect(restored.sites.length).toBe(51);
  });

  it("refuses an update whose tensors differ from the schema", () => {
    const agg = fedAvg().begin(schemaOf(set(0, 0)));
    expect(() => agg.add({ site: "x", samples: 1, tensors: [t("shared/w", [2], [1, 2])] })).toThrowError(
      /1 tensors, expected 2/,
    );
    expect(() => agg.result()).toThrowError(/no update/);
  });

  it("aggregate() returns the round's weighted mean as Θ_{r+1}; instructions come from the study config", () => {
    const s = fedAvg("uniform");
    const agg = s.begin(schemaOf(set(0, 0)));
    agg.add({ site: "a", samples: 1, tensors: set(0, 10) });
    agg.add({ site: "b", samples: 3, tensors: set(4, 2) });
    const state = s.initialize(set(9, 9));
    const next = s.aggregate(agg, set(9, 9), state, ctx);
    expect(Array.from(next.model[0].data)).toEqual([2, 3]);
    expect(next.state).toEqual({ tensors: [], scalars: {} });
    const ins = s.configureTrain(ctx, ["a", "b"]);
    expect(ins).toEqual({
      a: { steps: 7, lr: 5e-4, embed: false },
      b: { steps: 7, lr: 5e-4, embed: false },
    });
    // embeddings only where the phase's loss has a contrastive term and the study exchanges them
    const msc = createStrategy(study({ method: "dsl+msc" }));
    expect(msc.configureTrain(ctx, ["a"]).a.embed).toBe(true);
    const off = createStrategy(study({ method: "dsl+msc", embeddings: { enabled: false } }));
    expect(off.configureTrain(ctx, ["a"]).a.embed).toBe(false);
    expect(s.configureEvaluate({ fold: 0, rounds: 3 }, ["a"])).toEqual({ a: { round: 3 } });
  });

  it("methods that federate nothing aggregate nothing", () => {
    const s = localOnly(study({ method: "individual" }));
    const agg = s.begin({ tensors: [] });
    agg.add({ site: "a", samples: 5, tensors: [] });
    expect(s.aggregate(agg, [], s.initialize([]), ctx).model).toEqual([]);
    expect(() => agg.add({ site: "b", samples: 5, tensors: set(1, 1) })).toThrowError(/federates no tensors/);
  });
});

describe("update validation", () => {
  const schema = schemaOf(set(0, 0));
  const opts = { schema, maxNorm: 100 };
  it("accepts a well-formed update and reports its norm", () => {
    const v = validateUpdate(set(1, 2), opts);
    expect(v).toEqual({ ok: true, norm: Math.sqrt(1 + 4 + 4) });
  });
  it("rejects with a code and a reason", () => {
    const cases: [NamedTensor[], string, RegExp][] = [
      [
        [...set(1, 1), t("domain/knee/bn/gamma", [1], [1])],
        "FJ_AGG_DOMAIN_TENSOR",
        /domain\/knee\/bn\/gamma is not shared/,
      ],
      [
        [t("shared/w", [1, 2], [1, 2]), t("shared/b", [1], [1])],
        "FJ_AGG_SHAPE",
        /shape \[1,2\], expected \[2\]/,
      ],
      [
        [t("shared/w", [2], [1, Number.NaN]), t("shared/b", [1], [1])],
        "FJ_AGG_NONFINITE",
        /NaN at element 1/,
      ],
      [[t("shared/w", [2], [1, 2])], "FJ_AGG_MISSING_TENSOR", /shared\/b is missing/],
      [
        [...set(1, 1), t("shared/extra", [1], [1])],
        "FJ_AGG_UNKNOWN_TENSOR",
        /unexpected tensor shared\/extra/,
      ],
      [set(1000, 1), "FJ_AGG_NORM", /exceeds the bound 100/],
    ];
    for (const [tensors, code, reason] of cases) {
      const v = validateUpdate(tensors, opts);
      expect(v.ok).toBe(false);
      if (!v.ok) {
        expect(v.code).toBe(code);
        expect(v.reason).toMatch(reason);
      }
    }
    const dt = validateUpdate(set(1, 1), { ...opts, dtypes: ["float64"] });
    expect(dt.ok ? "" : dt.code).toBe("FJ_AGG_DTYPE");
  });
});
