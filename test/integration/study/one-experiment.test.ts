import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { synthesizeDataset } from "../../../src/data/phantoms.js";
import type { NamedTensor } from "../../../src/model/api.js";
import { readCheckpoint } from "../../../src/model/checkpoint.js";
import { unpackTensorSet } from "../../../src/protocol/tensors.js";
import { loadStudyConfig } from "../../../src/study/config.js";
import { initialModel } from "../../../src/study/model.js";
import { fedjoint, maxAbsDiff } from "./helpers.js";

let tmp: string;

describe("one study config, federated on one site = pooled", () => {
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "fj-one-experiment-"));
    await synthesizeDataset({ joint: "knee", subjects: 4, size: 32, seed: 3, out: path.join(tmp, "knee") });
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it("gives the same Θ (AE and SEG) and the same trainable Γ after rounds × localSteps steps", async () => {
    const config = path.join(tmp, "study.yaml");
    await writeFile(
      config,
      [
        "study: one-site",
        "method: dsl+msc+mjap",
        "sites: [{ name: knee-hospital, joint: knee }]",
        "seed: 4",
        "rounds: 3",
        "localSteps: 4",
        "aeRounds: 2",
        "aeLocalSteps: 3",
        "model: { base: 4, depth: 3, size: 32 }",
        "training: { seg: { batch: 4, lr: 3.0e-3 }, ae: { batch: 4, lr: 3.0e-3 } }",
        "embeddings: { enabled: true, count: 6 }",
        "strategy: { name: fedavg }",
        "",
      ].join("\n"),
    );
    const data = path.join(tmp, "knee");
    fedjoint([
      "simulate",
      "--config",
      config,
      "--data",
      data,
      "--workdir",
      path.join(tmp, "fed"),
      "--backend",
      "wasm",
      "--json",
    ]);
    fedjoint([
      "train",
      "--config",
      config,
      "--data",
      data,
      "--out",
      path.join(tmp, "pooled"),
      "--backend",
      "wasm",
      "--json",
    ]);

    const state = path.join(tmp, "fed", "coordinator");
    const files = await readdir(state);
    const fedModel = async (phase: string, rounds: number) => {
      const f = `model-0-${phase}-${rounds}.bin`;
      expect(files, f).toContain(f);
      return unpackTensorSet(await readFile(path.join(state, f)), f);
    };
    const pooled = await readCheckpoint(path.join(tmp, "pooled", "checkpoint"));
    const pooledShared = (prefix: string) =>
      pooled.tensors.filter((t) => t.name.startsWith(prefix) && t.name.startsWith("shared/"));
    const seg = await fedModel("seg", 3);
    const ae = await fedModel("ae", 2);
    const pooledSeg = pooledShared("shared/").filter((t) => !t.name.startsWith("shared/ae/"));
    const pooledAe = pooledShared("shared/ae/");
    expect(seg.map((t) => t.name).sort()).toEqual(pooledSeg.map((t) => t.name).sort());
    expect(ae.map((t) => t.name).sort()).toEqual(pooledAe.map((t) => t.name).sort());
    // training moved Θ away from Θ_0 (the comparison is not between two untrained models)
    const study = await loadStudyConfig(config);
    expect(maxAbsDiff(seg, initialModel(study, "seg"))).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(seg, pooledSeg)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(ae, pooledAe)).toBeLessThanOrEqual(1e-6);

    // Γ_k of the site (its own state directory) against the pooled model's knee variables:
    // trainable DSBN γ/β, heads and AE input/output layers (running statistics are re-estimated
    // at the site for every new Θ, so they are not compared).
    const siteGamma = await readCheckpoint(path.join(tmp, "fed", "sites", "knee-hospital", "gamma-fold0"));
    const trainable = (ts: readonly NamedTensor[]) =>
      ts.filter((t) => t.name.startsWith("domain/knee/") && !/moving_(mean|variance)$/.test(t.name));
    expect(trainable(siteGamma.tensors).length).toBeGreaterThan(0);
    expect(maxAbsDiff(trainable(siteGamma.tensors), trainable(pooled.tensors))).toBeLessThanOrEqual(1e-6);
  }, 900_000);
});
