import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelError } from "../../../src/errors.js";
import { readCheckpoint, tensorsDigest, writeCheckpoint } from "../../../src/model/checkpoint.js";
import { initEngine } from "../../../src/model/engine/backend.js";
import { tf } from "../../../src/model/engine/tf.js";
import { labelSpecFromDatasetJson, PAPER_LABELS, unionLabels } from "../../../src/model/labels.js";
import { SegmentationTrainer } from "../../../src/model/trainer.js";
import { testTrainerConfig, toyData, toySampler } from "./helpers.js";

let dir: string;
const make = (
  method: "dsl+mjap" | "dsl",
  joints: ("ankle" | "knee" | "shoulder")[],
  seed: number,
  base = 4,
) =>
  new SegmentationTrainer(
    testTrainerConfig(method, joints, { base, depth: 3, size: 16, seed, segBatch: 2 * joints.length }),
    toyData(joints, 16, 4, 2),
    { makeSampler: toySampler },
  );

describe("checkpoints", () => {
  beforeAll(async () => {
    await initEngine("auto");
    dir = await mkdtemp(path.join(os.tmpdir(), "fj-ckpt-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("round-trip all / shared / one domain, with names, shapes, dtype and SHA-256 in the manifest", async () => {
    const a = make("dsl+mjap", ["ankle", "knee"], 1);
    await a.trainSteps("seg", { steps: 1 });
    const all = await a.saveCheckpoint(path.join(dir, "all"), "all");
    expect(all.tensors.every((t) => t.dtype === "float32")).toBe(true);
    expect(all.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(all.tensors.some((t) => t.name.startsWith("shared/ae/"))).toBe(true);
    const shared = await a.saveCheckpoint(path.join(dir, "shared"), "shared");
    expect(shared.tensors.every((t) => t.name.startsWith("shared/"))).toBe(true);
    const knee = await a.saveCheckpoint(path.join(dir, "knee"), { domain: "knee" });
    expect(knee.tensors.every((t) => t.name.startsWith("domain/knee/"))).toBe(true);
    expect(knee.tensors.some((t) => t.name.endsWith("moving_variance"))).toBe(true);

    const b = make("dsl+mjap", ["ankle", "knee"], 99);
    await b.loadCheckpoint(path.join(dir, "shared"));
    expect((await b.sharedTensors("seg")).map((t) => Array.from(t.data))).toEqual(
      (await a.sharedTensors("seg")).map((t) => Array.from(t.data)),
    );
    expect((await b.domainTensors("seg"))[0].data).not.toEqual((await a.domainTensors("seg"))[0].data);
    await b.loadCheckpoint(path.join(dir, "all"));
    expect((await b.domainTensors("seg")).map((t) => Array.from(t.data))).toEqual(
      (await a.domainTensors("seg")).map((t) => Array.from(t.data)),
    );
    // A site holding only the knee loads the knee checkpoint.
    const site = make("dsl+mjap", ["knee"], 5);
    await site.loadCheckpoint(path.join(dir, "knee"));
    const want = (await a.domainTensors("seg")).filter((t) => t.name.startsWith("domain/knee/"));
    expect((await site.domainTensors("seg")).map((t) => Array.from(t.data))).toEqual(
      want.map((t) => Array.from(t.data)),
    );
    for (const t of [a, b, site]) t.dispose();
    expect(tf.memory().numTensors).toBe(0);
  });

  it("rejects mismatches with a clear ModelError", async () => {
    const small = make("dsl", ["ankle"], 1, 4);
    const wide = make("dsl", ["ankle"], 1, 8);
    await small.saveCheckpoint(path.join(dir, "small"), "all");
    await expect(wide.loadCheckpoint(path.join(dir, "small"))).rejects.toThrow(
      /shape \[3,3,1,4\].*expects \[3,3,1,8\]/,
    );
    const ae = make("dsl+mjap", ["ankle"], 1, 4);
    await expect(ae.loadCheckpoint(path.join(dir, "small"))).rejects.toThrow(/lacks shared\/ae\//);
    await expect(small.loadCheckpoint(path.join(dir, "knee"))).rejects.toThrow(ModelError);
    // Corrupt one byte: the checksum catches it.
    const bin = await readFile(path.join(dir, "small", "tensors.bin"));
    bin[10] ^= 0xff;
    await writeFile(path.join(dir, "small", "tensors.bin"), bin);
    await expect(readCheckpoint(path.join(dir, "small"))).rejects.toThrow(/SHA-256/);
    await expect(readCheckpoint(path.join(dir, "missing"))).rejects.toThrow(/manifest/);
    await expect(
      writeCheckpoint(
        path.join(dir, "bad"),
        [{ name: "domain/knee/x", shape: [1], data: new Float32Array(1) }],
        "shared",
      ),
    ).rejects.toThrow(/outside the checkpoint scope shared/);
    for (const t of [small, wide, ae]) t.dispose();
  });
});

describe("labels", () => {
  it("reads dataset.json labels and builds the shared baseline's union space", () => {
    expect(labelSpecFromDatasetJson({ background: 0, humerus: 1, scapula: 2 })).toEqual(
      PAPER_LABELS.shoulder,
    );
    expect(() => labelSpecFromDatasetJson({ background: 0, femur: 2 }, "knee/dataset.json")).toThrow(
      /knee\/dataset.json: .*1 is missing/,
    );
    expect(() => labelSpecFromDatasetJson({ background: 0, femur: "1" })).toThrow(/labels.femur/);
    const u = unionLabels(PAPER_LABELS);
    expect(u.classes).toBe(10);
    expect(u.offset).toEqual({ ankle: 0, knee: 3, shoulder: 7 });
    expect(u.names[8]).toBe("shoulder/humerus");
  });
});

describe("tensorsDigest", () => {
  const a = { name: "domain/knee/bn/gamma", shape: [3], data: Float32Array.from([1, 2, 3]) };
  const b = { name: "domain/knee/head/kernel", shape: [1, 2], data: Float32Array.from([0.5, -0.25]) };
  it("does not depend on order and changes with one bit, a shape or a name", () => {
    const d = tensorsDigest([a, b]);
    expect(d).toMatch(/^[0-9a-f]{64}$/);
    expect(tensorsDigest([b, a])).toBe(d);
    const flipped = Float32Array.from(a.data);
    new Uint32Array(flipped.buffer)[2] ^= 1;
    expect(tensorsDigest([{ ...a, data: flipped }, b])).not.toBe(d);
    expect(tensorsDigest([a, { ...b, shape: [2, 1] }])).not.toBe(d);
    expect(tensorsDigest([a, { ...b, name: "domain/knee/head/bias" }])).not.toBe(d);
    expect(tensorsDigest([a])).not.toBe(d);
  });
});
