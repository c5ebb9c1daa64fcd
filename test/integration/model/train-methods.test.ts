/**
 * `trainCentralised` for the other methods on tiny phantoms (a few steps each): the individual
 * scheme trains one model and one checkpoint per joint, the shared baseline one union model, and
 * dsl+ssc reports the contrastive term; every run writes summary.json and epochs.jsonl.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { trainCentralised } from "../../../src/cli/commands/train.js";
import { synthesizeDataset } from "../../../src/data/phantoms.js";
import { silentLogger } from "../../../src/log.js";
import type { Joint, Method } from "../../../src/model/api.js";
import { readCheckpoint } from "../../../src/model/checkpoint.js";
import { initEngine } from "../../../src/model/engine/backend.js";
import { tf } from "../../../src/model/engine/tf.js";

const JOINTS: Joint[] = ["ankle", "knee", "shoulder"];
let tmp: string;

const run = (method: Method, out: string) =>
  trainCentralised({
    data: JOINTS.map((j) => path.join(tmp, j)),
    method,
    epochs: 2,
    aeEpochs: 1,
    stepsPerEpoch: 2,
    aeStepsPerEpoch: 1,
    fold: 1,
    out: path.join(tmp, out),
    overrides: { size: 32, base: 4, depth: 3, segBatch: 6, aeBatch: 6, seed: 3 },
    progress: false,
    log: silentLogger,
  });

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
