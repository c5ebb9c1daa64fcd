/**
 * Update validation, verdict by verdict (src/aggregation/validate.ts): the exact code and reason of
 * every check, the order the checks run in, and each bound at its edge (a norm equal to the bound
 * passes, one ulp above fails). Written against the survivors of `npm run test:mutation`: a
 * validation that silently lets one of these through is a hole in the coordinator.
 */
import { describe, expect, it } from "vitest";
import type { TensorSchema } from "../../../src/aggregation/strategy.js";
import {
  checkScalars,
  checkTensorSpecs,
  type TensorSpec,
  UPDATE_METRICS,
  updateScalarRules,
  validateUpdate,
} from "../../../src/aggregation/validate.js";
import type { NamedTensor } from "../../../src/model/api.js";
import { METHODS } from "../../../src/study/methods.js";

const t = (name: string, shape: number[], data: number[]): NamedTensor => ({
  name,
  shape,
  data: Float32Array.from(data),
});
const schema: TensorSchema = {
  tensors: [
    { name: "shared/w", shape: [2, 3] },
    { name: "shared/b", shape: [3] },
  ],
};
const good = (w = 1, b = 1): NamedTensor[] => [
  t("shared/w", [2, 3], new Array(6).fill(w)),
  t("shared/b", [3], new Array(3).fill(b)),
];
const spec = (name: string, shape: number[], dtype?: string): TensorSpec => ({ name, shape, dtype });

describe("checkTensorSpecs", () => {
  it("accepts exactly the schema, in any order, float32 or float16 by default", () => {
    expect(checkTensorSpecs([spec("shared/b", [3]), spec("shared/w", [2, 3])], schema)).toEqual({ ok: true });
    expect(
      checkTensorSpecs([spec("shared/w", [2, 3], "float16"), spec("shared/b", [3], "float32")], schema),
    ).toEqual({ ok: true });
  });

  it("refuses any other dtype, naming the allowed ones", () => {
    expect(checkTensorSpecs([spec("shared/w", [2, 3], "bfloat16"), spec("shared/b", [3])], schema)).toEqual({
      ok: false,
      code: "FJ_AGG_DTYPE",
      reason: "dtype bfloat16, expected float32 or float16",
    });
    expect(
      checkTensorSpecs([spec("shared/w", [2, 3], "float16"), spec("shared/b", [3])], schema, ["float32"]),
    ).toEqual({ ok: false, code: "FJ_AGG_DTYPE", reason: "dtype float16, expected float32" });
  });

  it("refuses a domain tensor before anything else about the names, even as the first tensor", () => {
    expect(checkTensorSpecs([spec("domain/knee/bn/gamma", [3]), ...schema.tensors], schema)).toEqual({
      ok: false,
      code: "FJ_AGG_DOMAIN_TENSOR",
      reason:
        "tensor domain/knee/bn/gamma is not shared/…: domain-specific parameters never leave their site",
    });
    // a domain tensor after an unknown shared one is still reported as a domain tensor
    expect(
      checkTensorSpecs([spec("shared/extra", [1]), spec("domain/ankle/head/w", [1])], schema),
    ).toMatchObject({ ok: false, code: "FJ_AGG_DOMAIN_TENSOR" });
  });

  it("refuses unknown, duplicated, misshapen and missing tensors, each with its own reason", () => {
    const cases: [TensorSpec[], string, string][] = [
      [
        [...schema.tensors, spec("shared/extra", [1])],
        "FJ_AGG_UNKNOWN_TENSOR",
        "unexpected tensor shared/extra",
      ],
      [
        [spec("shared/w", [2, 3]), spec("shared/w", [2, 3]), spec("shared/b", [3])],
        "FJ_AGG_DUPLICATE_TENSOR",
        "tensor shared/w twice",
      ],
      // same rank, one dimension differs
      [
        [spec("shared/w", [2, 4]), spec("shared/b", [3])],
        "FJ_AGG_SHAPE",
        "tensor shared/w has shape [2,4], expected [2,3]",
      ],
      // same element count, another rank
      [
        [spec("shared/w", [6]), spec("shared/b", [3])],
        "FJ_AGG_SHAPE",
        "tensor shared/w has shape [6], expected [2,3]",
      ],
      [
        [spec("shared/w", [2, 3, 1]), spec("shared/b", [3])],
        "FJ_AGG_SHAPE",
        "tensor shared/w has shape [2,3,1], expected [2,3]",
      ],
      [[spec("shared/w", [2, 3])], "FJ_AGG_MISSING_TENSOR", "tensor shared/b is missing (1/2 sent)"],
      [[], "FJ_AGG_MISSING_TENSOR", "tensor shared/w is missing (0/2 sent)"],
    ];
    for (const [specs, code, reason] of cases)
      expect(checkTensorSpecs(specs, schema), reason).toEqual({ ok: false, code, reason });
  });

  it("an empty schema accepts only an empty set", () => {
    expect(checkTensorSpecs([], { tensors: [] })).toEqual({ ok: true });
    expect(checkTensorSpecs([spec("shared/w", [1])], { tensors: [] })).toMatchObject({
      code: "FJ_AGG_UNKNOWN_TENSOR",
    });
  });
});

describe("validateUpdate", () => {
  const opts = { schema, maxNorm: 3 };

  it("accepts a well-formed update and reports its L2 norm over the whole set", () => {
    expect(validateUpdate(good(1, 1), opts)).toEqual({ ok: true, norm: 3 });
    expect(validateUpdate(good(0.5, -1), { schema, maxNorm: 100 })).toEqual({
      ok: true,
      norm: Math.sqrt(6 * 0.25 + 3),
    });
  });

  it("a norm equal to the bound passes, one just above fails with the norm and the bound", () => {
    expect(validateUpdate(good(1, 1), { schema, maxNorm: 3 })).toEqual({ ok: true, norm: 3 });
    expect(validateUpdate(good(1, 1), { schema, maxNorm: 2.9999 })).toEqual({
      ok: false,
      code: "FJ_AGG_NORM",
      reason: "L2 norm 3.000 exceeds the bound 2.9999",
    });
  });

  it("refuses non-finite values naming the tensor, the value and the element", () => {
    const cases: [number, string][] = [
      [Number.NaN, "tensor shared/b has NaN at element 2"],
      [Number.POSITIVE_INFINITY, "tensor shared/b has Infinity at element 2"],
      [Number.NEGATIVE_INFINITY, "tensor shared/b has -Infinity at element 2"],
    ];
    for (const [v, reason] of cases) {
      const tensors = good();
      (tensors[1] as NamedTensor).data[2] = v;
      expect(validateUpdate(tensors, { schema, maxNorm: 1e30 })).toEqual({
        ok: false,
        code: "FJ_AGG_NONFINITE",
        reason,
      });
    }
  });

  it("checks the header's dtypes first, against float32 and float16 unless told otherwise", () => {
    expect(validateUpdate(good(), { ...opts, dtypes: ["float32", "float16"] })).toEqual({
      ok: true,
      norm: 3,
    });
    expect(validateUpdate(good(), { ...opts, dtypes: ["float32", "float64"] })).toEqual({
      ok: false,
      code: "FJ_AGG_DTYPE",
      reason: "dtype float64, expected float32 or float16",
    });
    expect(validateUpdate(good(), { ...opts, dtypes: ["float16"], allowedDtypes: ["float32"] })).toEqual({
      ok: false,
      code: "FJ_AGG_DTYPE",
      reason: "dtype float16, expected float32",
    });
    // a wrong dtype wins over a domain tensor and a huge norm: the header is refused first
    expect(
      validateUpdate([...good(1e6), t("domain/knee/x", [1], [1])], { ...opts, dtypes: ["int8"] }),
    ).toMatchObject({ code: "FJ_AGG_DTYPE" });
  });

  it("names and shapes are checked before values: a misnamed set is not summed", () => {
    expect(validateUpdate([t("domain/knee/bn/gamma", [1], [Number.NaN]), ...good()], opts)).toEqual({
      ok: false,
      code: "FJ_AGG_DOMAIN_TENSOR",
      reason:
        "tensor domain/knee/bn/gamma is not shared/…: domain-specific parameters never leave their site",
    });
    expect(validateUpdate([good()[0] as NamedTensor], opts)).toMatchObject({ code: "FJ_AGG_MISSING_TENSOR" });
  });
});

describe("checkScalars", () => {
  const rules = { loss: ["total", "ce"], metrics: ["compute_ms"], maxAbs: 10 };

  it("accepts the known names with finite values within the bound, the bound included", () => {
    expect(checkScalars({ total: 10, ce: -10 }, { compute_ms: 0 }, rules)).toEqual({ ok: true });
    expect(checkScalars({}, {}, rules)).toEqual({ ok: true });
  });

  it("refuses too many keys, unknown names, non-numbers and values beyond the bound", () => {
    const cases: [Record<string, number>, Record<string, number>, string][] = [
      [{ total: 1, ce: 1, msc: 1 }, {}, "loss has 3 keys, expected at most 2 (total, ce)"],
      [{ total: 1, msc: 1 }, {}, "loss.msc is not one of total, ce"],
      [{}, { gpu_ms: 1 }, "metrics.gpu_ms is not one of compute_ms"],
      [{ total: Number.NaN }, {}, "loss.total is NaN, expected a finite number within ±10"],
      [{ ce: Number.POSITIVE_INFINITY }, {}, "loss.ce is Infinity, expected a finite number within ±10"],
      [{ total: 10.5 }, {}, "loss.total is 10.5, expected a finite number within ±10"],
      [{}, { compute_ms: -11 }, "metrics.compute_ms is -11, expected a finite number within ±10"],
      [{ total: "1" as unknown as number }, {}, "loss.total is 1, expected a finite number within ±10"],
    ];
    for (const [loss, metrics, reason] of cases)
      expect(checkScalars(loss, metrics, rules), reason).toEqual({
        ok: false,
        code: "FJ_AGG_SCALARS",
        reason,
      });
  });

  it("cuts an unknown name to 64 characters in the reason", () => {
    const long = "x".repeat(200);
    expect(checkScalars({ [long]: 1 }, {}, rules)).toEqual({
      ok: false,
      code: "FJ_AGG_SCALARS",
      reason: `loss.${"x".repeat(64)} is not one of total, ce`,
    });
  });
});

describe("updateScalarRules", () => {
  it("allows exactly the loss terms of the method's phase and the site-client's metrics", () => {
    const losses = Object.fromEntries(
      METHODS.flatMap((m) =>
        (["ae", "seg"] as const).map((p) => [`${m}/${p}`, updateScalarRules(m, p).loss]),
      ),
    );
    expect(losses).toEqual({
      "individual/ae": ["total", "ce", "msc"],
      "individual/seg": ["total", "ce"],
      "shared/ae": ["total", "ce", "msc"],
      "shared/seg": ["total", "ce"],
      "dsl/ae": ["total", "ce", "msc"],
      "dsl/seg": ["total", "ce"],
      "dsl+msc/ae": ["total", "ce", "msc"],
      "dsl+msc/seg": ["total", "ce", "msc"],
      "dsl+mjap/ae": ["total", "ce", "msc"],
      "dsl+mjap/seg": ["total", "ce", "mjap"],
      "dsl+msc+mjap/ae": ["total", "ce", "msc"],
      "dsl+msc+mjap/seg": ["total", "ce", "msc", "mjap"],
      "dsl+ssc/ae": ["total", "ce", "msc"],
      "dsl+ssc/seg": ["total", "ce", "msc"],
    });
    const r = updateScalarRules("dsl", "seg");
    expect(r.metrics).toEqual(UPDATE_METRICS);
    expect(UPDATE_METRICS).toEqual(["compute_ms", "train_ms", "pull_ms", "val_dice_before"]);
    expect(r.maxAbs).toBe(1e12);
  });
});
