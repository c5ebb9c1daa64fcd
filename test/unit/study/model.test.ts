/**
 * The study's networks as data (src/study/model.ts): what each method federates, phase by phase —
 * the convolution kernels for DSL, every variable for "shared", nothing for individual training or
 * a phase the method does not run — with the schema the coordinator checks updates against and the
 * seeded Θ_0 it serves. The counts are the paper's (Table 1: 8,713,744 shared parameters).
 */
import { describe, expect, it } from "vitest";
import { isShared, scopeOf } from "../../../src/model/api.js";
import { PAPER_LABELS } from "../../../src/model/labels.js";
import { parseStudyConfig, type StudyConfigInput } from "../../../src/study/config.js";
import { METHODS, type Method, methodSpec } from "../../../src/study/methods.js";
import {
  federatedSchema,
  federatedVariables,
  initialModel,
  netSpec,
  phaseVariables,
  studyLabels,
} from "../../../src/study/model.js";

const study = (method: Method, over: Partial<StudyConfigInput> = {}) =>
  parseStudyConfig({
    study: "t",
    method,
    sites: [
      { name: "a", joint: "ankle" },
      { name: "k", joint: "knee" },
      { name: "s", joint: "shoulder" },
    ],
    rounds: 1,
    localSteps: 1,
    model: { base: 32, depth: 5, size: 256 },
    ...over,
  });
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const total = (vs: { shape: readonly number[] }[]) => vs.reduce((n, v) => n + size(v.shape), 0);

describe("the study's networks", () => {
  it("serves the paper's label sets of the study's joints, and describes the network from the config", () => {
    const two = study("dsl", {
      sites: [
        { name: "a", joint: "ankle" },
        { name: "k", joint: "knee" },
      ],
    });
    expect(studyLabels(two)).toEqual({ ankle: PAPER_LABELS.ankle, knee: PAPER_LABELS.knee });
    expect(netSpec(two, studyLabels(two))).toEqual({
      base: 32,
      depth: 5,
      classes: { ankle: 4, knee: 5 },
      sharedNorm: false,
    });
    expect(netSpec(study("shared"), { knee: PAPER_LABELS.knee }).sharedNorm).toBe(true);
  });

  it("DSL federates exactly the convolution kernels: the paper's 8,713,744 shared parameters", () => {
    const cfg = study("dsl+msc+mjap");
    const seg = federatedVariables(cfg, "seg");
    expect(total(seg)).toBe(8_713_744);
    expect(new Set(seg.map((v) => v.role))).toEqual(new Set(["conv"]));
    expect(seg.every((v) => isShared(v.name) && v.trainable)).toBe(true);
    // every convolution of the network, and nothing else
    const all = phaseVariables(cfg, "seg", ["ankle", "knee", "shoulder"], studyLabels(cfg));
    expect(seg.map((v) => v.name)).toEqual(all.filter((v) => v.role === "conv").map((v) => v.name));
    expect(all.some((v) => v.role === "norm" && isShared(v.name))).toBe(false);
    for (const v of all.filter((x) => x.role !== "conv")) expect(scopeOf(v.name)).not.toBe("shared");
    // the auto-encoder's phase: its convolutions
    const ae = federatedVariables(cfg, "ae");
    expect(ae.length).toBeGreaterThan(0);
    expect(new Set(ae.map((v) => v.role))).toEqual(new Set(["conv"]));
    expect(ae.map((v) => v.name)).not.toEqual(seg.map((v) => v.name));
  });

  it("shared federates every variable, running statistics included; individual and absent phases nothing", () => {
    const shared = study("shared");
    const vars = federatedVariables(shared, "seg");
    const all = phaseVariables(shared, "seg", ["ankle", "knee", "shoulder"], studyLabels(shared));
    expect(vars.map((v) => v.name)).toEqual(all.map((v) => v.name));
    expect(new Set(vars.map((v) => v.role))).toEqual(new Set(["conv", "norm", "head"]));
    expect(vars.some((v) => !v.trainable)).toBe(true);
    // the schema marks the running statistics as not trainable, and only them
    const schema = federatedSchema(shared, "seg");
    expect(schema.tensors.filter((t) => t.trainable === false).map((t) => t.name)).toEqual(
      vars.filter((v) => !v.trainable).map((v) => v.name),
    );
    expect(schema.tensors.filter((t) => "trainable" in t && t.trainable !== false)).toEqual([]);
    expect(federatedVariables(study("individual"), "seg")).toEqual([]);
    for (const m of METHODS) {
      if (!methodSpec(m).phases.includes("ae")) expect(federatedVariables(study(m), "ae"), m).toEqual([]);
    }
  });

  it("the schema is the federated variables' names and shapes (copies), Θ_0 is seeded by the study", () => {
    const cfg = study("dsl", { model: { base: 4, depth: 3, size: 32 }, seed: 5 });
    const vars = federatedVariables(cfg, "seg");
    const schema = federatedSchema(cfg, "seg");
    expect(schema.tensors).toEqual(vars.map((v) => ({ name: v.name, shape: [...v.shape] })));
    schema.tensors[0]?.shape.push(7);
    expect(federatedSchema(cfg, "seg").tensors[0]?.shape).toEqual(vars[0]?.shape);
    const theta = initialModel(cfg, "seg");
    expect(theta.map((x) => [x.name, x.shape])).toEqual(vars.map((v) => [v.name, [...v.shape]]));
    expect(theta.every((x, i) => x.data.length === size(vars[i]?.shape ?? []))).toBe(true);
    const again = initialModel(cfg, "seg");
    expect(again.map((x) => Array.from(x.data))).toEqual(theta.map((x) => Array.from(x.data)));
    const other = initialModel(study("dsl", { model: { base: 4, depth: 3, size: 32 }, seed: 6 }), "seg");
    const kernel = theta.findIndex((x) => x.name.endsWith("/kernel"));
    expect(Array.from(other[kernel]?.data ?? [])).not.toEqual(Array.from(theta[kernel]?.data ?? []));
    // kernels drawn, biases zero
    expect(theta[kernel]?.data.some((v) => v !== 0)).toBe(true);
    for (const b of theta.filter((x) => x.name.endsWith("/bias")))
      expect(b.data.every((v) => v === 0)).toBe(true);
  });

  it("every method's federated variables of every phase are named shared/… (the architecture's guard holds)", () => {
    for (const m of METHODS)
      for (const p of methodSpec(m).phases)
        expect(
          federatedVariables(study(m), p).filter((v) => !isShared(v.name)),
          `${m}/${p}`,
        ).toEqual([]);
  });
});
