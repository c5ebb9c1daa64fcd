import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { synthesizeDataset } from "../../../src/data/phantoms.js";
import type { NamedTensor } from "../../../src/model/api.js";
import { readCheckpoint } from "../../../src/model/checkpoint.js";
import { unpackTensorSet } from "../../../src/protocol/tensors.js";
import { loadStudyConfig } from "../../../src/study/config.js";
import { initialModel } from "../../../src/study/model.js";
import { fedjoint, maxAbsDiff } from "../study/helpers.js";

const JOINTS = ["ankle", "knee", "shoulder"] as const;
const ROUNDS = 20;
let tmp: string;

describe("FedSGD + server Adam on three sites = pooled Adam with the batch split 6/6/6", () => {
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "fj-exactness-"));
    for (const [i, joint] of JOINTS.entries()) {
      await synthesizeDataset({ joint, subjects: 4, size: 32, seed: 20 + i, out: path.join(tmp, joint) });
    }
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  // the default CPU engine (native kernels, oneDNN convolutions) and wasm: each engine's Adam is
  // the server's float32 arithmetic, operation for operation (src/model/engine/adam.ts)
  it.each(["native", "wasm"])(
    `%s: gives the same Θ and the same trainable Γ_k at every site after ${ROUNDS} rounds`,
    async (engine) => {
      const config = path.join(tmp, `study-${engine}.yaml`);
      await writeFile(
        config,
        [
          `study: exactness-${engine}`,
          "method: dsl",
          `sites: [${JOINTS.map((j) => `{ name: ${j}-site, joint: ${j} }`).join(", ")}]`,
          "seed: 2",
          `rounds: ${ROUNDS}`,
          "localSteps: 1",
          "model: { base: 4, depth: 3, size: 32 }",
          "training: { seg: { batch: 18, lr: 5.0e-4 }, perDomainGradients: true }",
          "strategy: { name: fedadam, weighting: uniform, update: gradient, beta1: 0.9, beta2: 0.999 }",
          "",
        ].join("\n"),
      );
      const data = JOINTS.map((j) => path.join(tmp, j)).join(",");
      const backend = ["--backend", engine, "--json"];
      const run = path.join(tmp, engine);
      fedjoint([
        "simulate",
        "--config",
        config,
        "--data",
        data,
        "--workdir",
        path.join(run, "fed"),
        ...backend,
      ]);
      fedjoint(["train", "--config", config, "--data", data, "--out", path.join(run, "pooled"), ...backend]);

      const file = path.join(run, "fed", "coordinator", `model-0-seg-${ROUNDS}.bin`);
      const fed = unpackTensorSet(await readFile(file), file);
      const pooled = await readCheckpoint(path.join(run, "pooled", "checkpoint"));
      const pooledTheta = pooled.tensors.filter((t) => t.name.startsWith("shared/"));
      expect(fed.map((t) => t.name).sort()).toEqual(pooledTheta.map((t) => t.name).sort());
      const study = await loadStudyConfig(config);
      // 20 Adam steps of lr 5e-4 moved Θ (the comparison is not between two untrained models)
      expect(maxAbsDiff(fed, initialModel(study, "seg"))).toBeGreaterThan(5e-3);
      const theta = maxAbsDiff(fed, pooledTheta);
      const gamma: Record<string, number> = {};
      for (const joint of JOINTS) {
        const site = await readCheckpoint(path.join(run, "fed", "sites", `${joint}-site`, "gamma-fold0"));
        // trainable Γ_k: DSBN γ/β and the head (running statistics are re-estimated for each Θ)
        const trainable = (ts: readonly NamedTensor[]) =>
          ts.filter((t) => t.name.startsWith(`domain/${joint}/`) && !/moving_(mean|variance)$/.test(t.name));
        expect(trainable(site.tensors).length).toBeGreaterThan(0);
        gamma[joint] = maxAbsDiff(trainable(site.tensors), trainable(pooled.tensors));
      }
      process.stderr.write(
        `exactness (${engine}) after ${ROUNDS} rounds: max |ΔΘ| ${theta}, max |ΔΓ_k| ${JSON.stringify(gamma)}\n`,
      );
      expect(theta).toBeLessThanOrEqual(1e-5);
      for (const joint of JOINTS) expect(gamma[joint], joint).toBeLessThanOrEqual(1e-5);
    },
    1_200_000,
  );
});
