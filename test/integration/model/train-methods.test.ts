/**
 * `trainCentralised` for the other methods on tiny phantoms (a few steps each): the individual
 * scheme trains one model and one checkpoint per joint, the shared baseline one union model, and
 * dsl+ssc reports the contrastive term; every run writes summary.json, epochs.jsonl and its final
 * network as a model directory (RUN/model[-<joint>]) that `fedjoint segment` reads and that
 * predicts exactly what the trainer predicts.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTrainSites, trainCentralised } from "../../../src/cli/commands/train.js";
import { synthesizeDataset } from "../../../src/data/phantoms.js";
import type { Joint } from "../../../src/joints.js";
import { silentLogger } from "../../../src/log.js";
import { readCheckpoint } from "../../../src/model/checkpoint.js";
import { initEngine } from "../../../src/model/engine/backend.js";
import { tf } from "../../../src/model/engine/tf.js";
import { PAPER_LABELS } from "../../../src/model/labels.js";
import { readModelDir } from "../../../src/model/model-dir.js";
import { SegmentationTrainer, trainerConfig } from "../../../src/model/trainer.js";
import { SegmentationNetwork } from "../../../src/segment/network.js";
import { parseStudyConfig, type StudyConfig } from "../../../src/study/config.js";
import type { Method } from "../../../src/study/methods.js";
import { foldData, samplerFactory } from "../../../src/study/site-data.js";

const JOINTS: Joint[] = ["ankle", "knee", "shoulder"];
let tmp: string;

const studyOf = (method: Method): StudyConfig =>
  parseStudyConfig({
    study: "t",
    method,
    sites: JOINTS.map((j) => ({ name: j, joint: j })),
    rounds: 2,
    aeRounds: 1,
    localSteps: 2,
    aeLocalSteps: 1,
    seed: 3,
    model: { size: 32, base: 4, depth: 3 },
    training: { seg: { batch: 6 }, ae: { batch: 6 } },
  });

const run = async (method: Method, out: string) => {
  const study = studyOf(method);
  return trainCentralised({
    study,
    sites: await loadTrainSites(
      study,
      JOINTS.map((j) => path.join(tmp, j)),
    ),
    fold: 1,
    out: path.join(tmp, out),
    progress: false,
    log: silentLogger,
  });
};

describe("fedjoint train: individual, shared, dsl+ssc", () => {
  beforeAll(async () => {
    await initEngine("auto");
    tmp = await mkdtemp(path.join(tmpdir(), "fj-train-methods-"));
    for (const joint of JOINTS) {
      await synthesizeDataset({ joint, subjects: 3, size: 32, seed: 5, out: path.join(tmp, joint) });
    }
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it("individual: one model and checkpoint per joint", async () => {
    const s = await run("individual", "ind");
    expect(Object.keys(s.checkpoints).sort()).toEqual(JOINTS);
    expect(s.epochs.filter((e) => e.phase === "seg")).toHaveLength(6);
    const knee = await readCheckpoint(s.checkpoints.knee);
    expect(knee.tensors.some((t) => t.name.startsWith("domain/ankle/"))).toBe(false);
    expect(knee.tensors.some((t) => t.name.startsWith("domain/knee/"))).toBe(true);
    expect(s.splits.knee!.train).toHaveLength(1);
    expect(s.splits.knee!.validation).not.toBe(s.splits.knee!.test);
    expect(Object.keys(s.models).sort()).toEqual(JOINTS);
    const model = await readModelDir(s.models.knee);
    expect(path.basename(s.models.knee)).toBe("model-knee");
    expect(model.card.joints).toEqual(["knee"]);
    expect(Object.keys(model.card.labels)).toEqual(["knee"]);
    expect(model.card.source).toMatchObject({
      kind: "centralised",
      method: "individual",
      strategy: null,
      fold: 1,
    });
    expect(tf.memory().numTensors).toBe(0);
  });

  it("the model directory predicts exactly what the trained network predicts (pooled dsl and the shared union head)", async () => {
    for (const method of ["dsl", "shared"] as const) {
      const s = await run(method, `${method}-model`);
      const study = studyOf(method);
      const model = await readModelDir(s.models.multi);
      expect(model.card.joints).toEqual(JOINTS);
      expect(model.card.network.sharedNorm).toBe(method === "shared");
      expect(() => new SegmentationNetwork(model)).toThrow(/serves ankle, knee, shoulder: pass --joint/);
      const sites = await loadTrainSites(
        study,
        JOINTS.map((j) => path.join(tmp, j)),
      );
      const data = Object.fromEntries(
        sites.map((x) => [x.spec.joint, foldData(x.data, x.spec.name, study.seed, 1)]),
      );
      const trainer = new SegmentationTrainer(trainerConfig(study, JOINTS, PAPER_LABELS), data, {
        makeSampler: samplerFactory(study.training),
      });
      await trainer.loadCheckpoint(s.checkpoints.multi);
      for (const j of JOINTS) {
        const net = new SegmentationNetwork(model, j);
        const images = data[j]!.val.images;
        const a = await trainer.predictSlices(j, images);
        const b = await net.predict(images);
        expect(Buffer.from(b).equals(Buffer.from(a)), `${method} ${j}`).toBe(true);
        expect(Math.max(...b)).toBeLessThan(PAPER_LABELS[j].classes);
        net.dispose();
      }
      trainer.dispose();
    }
    expect(tf.memory().numTensors).toBe(0);
  });

  it("shared: one union model, no domain variables; dsl+ssc logs L_SSC", async () => {
    const shared = await run("shared", "shared");
    const ck = await readCheckpoint(shared.checkpoints.multi);
    expect(ck.tensors.every((t) => t.name.startsWith("shared/"))).toBe(true);
    expect(ck.tensors.find((t) => t.name === "shared/head/kernel")!.shape).toEqual([1, 1, 4, 10]);
    expect(Object.keys(shared.dice)).toEqual(JOINTS);
    const ssc = await run("dsl+ssc", "ssc");
    expect(ssc.epochs.at(-1)!.loss.msc).toBeGreaterThan(0);
    const summary = JSON.parse(await readFile(path.join(tmp, "ssc", "summary.json"), "utf8"));
    expect(summary.method).toBe("dsl+ssc");
    expect(summary.best.multi.checkpoint).toMatch(/checkpoint-best$/);
  });
});
