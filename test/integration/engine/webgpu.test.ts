/**
 * The webgpu engine (Dawn; here OpenGL ES over Mesa llvmpipe) computes what the cpu backend
 * computes: one training step's losses and the gradients of every trainable variable of both
 * phases of dsl+msc+mjap (relative 1e-4), and the trainer's steps, validation, embeddings and
 * predictions — with no synchronous device read and tf.memory() flat.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { JOINTS, type Joint } from "../../../src/joints.js";
import type { LossComponents } from "../../../src/model/api.js";
import { oneHotFloat } from "../../../src/model/engine/one-hot.js";
import { tf } from "../../../src/model/engine/tf.js";
import { PAPER_LABELS } from "../../../src/model/labels.js";
import type { ForwardContext } from "../../../src/model/layers/context.js";
import { domainCrossEntropy } from "../../../src/model/losses/ce.js";
import { anatomicalPriorLoss } from "../../../src/model/losses/mjap.js";
import { multiScaleContrastive } from "../../../src/model/losses/msc.js";
import { AttUNet } from "../../../src/model/nets/att-unet.js";
import { MultiJointAutoEncoder } from "../../../src/model/nets/auto-encoder.js";
import { ParamStore } from "../../../src/model/params.js";
import { SegmentationTrainer } from "../../../src/model/trainer.js";
import { TABLE1 } from "../../../src/study/config.js";
import { testTrainerConfig, toyData, toySampler } from "../../unit/model/helpers.js";
import { webgpuEngine } from "./webgpu-engine.js";

const joints: Joint[] = ["knee", "ankle"];
const SIZE = 16;
const PER = 2;
const RELATIVE = 1e-4;

async function on(backend: "cpu" | "webgpu"): Promise<void> {
  await tf.setBackend(backend);
  expect(tf.getBackend()).toBe(backend);
}

const maxAbs = (x: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
};

/**
 * max |a − b| / max(max |b|, floor), b the cpu reference. The floor is for gradients that are sums
 * cancelling to almost nothing: their float32 rounding error scales with the summands, not with
 * the result (cpu and wasm differ by 4e-4 relative on a BN γ gradient of 5e-6 in this step).
 */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 0): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  for (let i = 0; i < b.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  const scale = Math.max(maxAbs(b), floor);
  return scale === 0 ? diff : diff / scale;
}

interface StepValues {
  losses: Record<string, number>;
  /** Gradients by variable name, per phase. */
  grads: { ae: Map<string, Float32Array>; seg: Map<string, Float32Array> };
}

/**
 * One step of both phases of dsl+msc+mjap, as the trainer composes them, on the current backend:
 * AE phase L_CE + λ1·L_MSC on one-hot masks; SEG phase L_CE + λ2·L_MSC + λ3·L_MJAP with F frozen.
 * Same seeds, same slices on every backend. Returns the loss terms and every gradient by name.
 */
async function stepValues(): Promise<StepValues> {
  const data = toyData(joints, SIZE, 4, 1);
  const classes = Object.fromEntries(joints.map((j) => [j, PAPER_LABELS[j].classes])) as Record<
    Joint,
    number
  >;
  const segStore = new ParamStore(21);
  const net = new AttUNet(segStore, { base: 4, depth: 3, inChannels: 1, classes, sharedNorm: false });
  net.build(joints);
  const aeStore = new ParamStore(22);
  const ae = new MultiJointAutoEncoder(aeStore, { base: 4, depth: 3, classes, sharedNorm: false });
  ae.build(joints);
  const groups = joints.map((joint) => ({ joint, count: PER }));
  const domains = Int32Array.from(joints.flatMap((j) => Array<number>(PER).fill(JOINTS.indexOf(j))));
  const px = SIZE * SIZE;
  const images = new Float32Array(joints.length * PER * px);
  for (const [k, j] of joints.entries())
    images.set(data[j]!.train.images.subarray(0, PER * px), k * PER * px);
  const labels = joints.map((j) =>
    tf.tensor3d(Int32Array.from(data[j]!.train.labels.subarray(0, PER * px)), [PER, SIZE, SIZE], "int32"),
  );
  const scales = net.dims.map((_, i) => i);
  const oneHots = () => labels.map((l, k) => oneHotFloat<tf.Rank.R4>(l, classes[joints[k]]));
  const byDomain = (t: tf.Tensor4D) => tf.split(t, [PER, PER], 0) as tf.Tensor4D[];
  const kept = new Map<string, tf.Scalar>();
  const keep = (name: string, t: tf.Scalar) => kept.set(name, tf.keep(t.clone()));
  const training = (): ForwardContext => ({ groups, training: true, statUpdates: [] });

  const aePhase = tf.variableGrads(() => {
    const out = ae.apply(oneHots(), training(), { embeddings: true });
    const ce = domainCrossEntropy(out.logits, labels);
    const msc = multiScaleContrastive(out.embeddings!, domains, { tau: TABLE1.tau, scales });
    keep("ae.ce", ce);
    keep("ae.msc", msc);
    return tf.add(ce, tf.mul(msc, TABLE1.lambdaAeMsc)) as tf.Scalar;
  }, aeStore.trainable());
  const segPhase = tf.variableGrads(() => {
    const x = tf.tensor4d(images, [joints.length * PER, SIZE, SIZE, 1]);
    const out = net.apply(x, training(), { embeddings: true });
    const ce = domainCrossEntropy(out.logits, labels);
    const msc = multiScaleContrastive(out.embeddings!, domains, { tau: TABLE1.tau, scales });
    const frozen: ForwardContext = { groups, training: false, statUpdates: [] };
    const pred = ae.encode(
      out.logits.map((l) => tf.softmax(l) as tf.Tensor4D),
      frozen,
    ).code;
    const truth = ae.encode(oneHots(), frozen).code;
    const mjap = anatomicalPriorLoss(byDomain(truth), byDomain(pred));
    keep("seg.ce", ce);
    keep("seg.msc", msc);
    keep("seg.mjap", mjap);
    return tf.addN([ce, tf.mul(msc, TABLE1.lambdaMsc), tf.mul(mjap, TABLE1.lambdaMjap)]) as tf.Scalar;
  }, segStore.trainable());

  const losses: Record<string, number> = {
    "ae.total": (await aePhase.value.data())[0],
    "seg.total": (await segPhase.value.data())[0],
  };
  for (const [name, t] of kept) losses[name] = (await t.data())[0];
  const grads = { ae: new Map<string, Float32Array>(), seg: new Map<string, Float32Array>() };
  for (const [store, phase, out] of [
    [aeStore, aePhase, grads.ae],
    [segStore, segPhase, grads.seg],
  ] as const) {
    for (const name of store.names((_, __, trainable) => trainable)) {
      const g = phase.grads[store.get(name).name];
      expect(g, `gradient of ${name}`).toBeDefined();
      out.set(name, (await g.data()) as Float32Array);
    }
  }
  tf.dispose([
    aePhase.value,
    segPhase.value,
    ...Object.values(aePhase.grads),
    ...Object.values(segPhase.grads),
  ]);
  tf.dispose([...kept.values(), ...labels]);
  segStore.dispose();
  aeStore.dispose();
  return { losses, grads };
}

const makeTrainer = () =>
  new SegmentationTrainer(
    testTrainerConfig("dsl+msc+mjap", joints, {
      base: 4,
      depth: 3,
      size: SIZE,
      segBatch: 4,
      aeBatch: 4,
      seed: 5,
    }),
    toyData(joints, SIZE, 6, 3),
    { makeSampler: toySampler },
  );

interface TrainerRun {
  steps: LossComponents[];
  dice: number;
  embeddings: Float32Array;
  prediction: Uint8Array;
}

/** Steps of both phases, then validation, embeddings and predictions, on the current backend. */
async function trainerRun(): Promise<TrainerRun> {
  const t = makeTrainer();
  const steps: LossComponents[] = [];
  for (const phase of t.phaseList) await t.trainSteps(phase, { steps: 2, onStep: (_, l) => steps.push(l) });
  const before = tf.memory().numTensors;
  await t.trainSteps("seg", { steps: 1, onStep: (_, l) => steps.push(l) });
  const dice = (await t.validate("knee")).mean;
  const bank = await t.embeddings("seg", { count: 3, seed: 1 });
  const prediction = await t.predictSlices("ankle", toyData(["ankle"], SIZE, 2, 1).ankle!.train.images);
  expect(tf.memory().numTensors).toBe(before);
  t.dispose();
  return { steps, dice, embeddings: bank.scales[2].vectors, prediction };
}

describe("webgpu engine (Dawn) against the cpu backend", () => {
  beforeAll(async () => {
    const engine = await webgpuEngine();
    expect(engine.backend).toBe("webgpu");
  });

  it("one training step: losses and every gradient of both phases match cpu (relative 1e-4)", async () => {
    await on("cpu");
    const cpu = await stepValues();
    await on("webgpu");
    const gpu = await stepValues();
    expect(Object.keys(gpu.losses).sort()).toEqual(Object.keys(cpu.losses).sort());
    for (const [name, value] of Object.entries(cpu.losses)) {
      expect(Number.isFinite(value), name).toBe(true);
      expect(relativeError([gpu.losses[name]], [value]), name).toBeLessThan(RELATIVE);
    }
    for (const phase of ["ae", "seg"] as const) {
      const [c, g] = [cpu.grads[phase], gpu.grads[phase]];
      expect([...g.keys()]).toEqual([...c.keys()]);
      expect(c.size).toBeGreaterThan(40);
      // The whole phase's gradient vector: relative L2 error.
      let diff2 = 0;
      let norm2 = 0;
      for (const [name, ref] of c) {
        const mine = g.get(name)!;
        for (let i = 0; i < ref.length; i++) {
          diff2 += (mine[i] - ref[i]) ** 2;
          norm2 += ref[i] ** 2;
        }
      }
      expect(Math.sqrt(diff2 / norm2), `${phase}: relative L2 error of the gradient`).toBeLessThan(RELATIVE);
      // Every variable: relative max error, floored at 1e-3 of the phase's largest gradient entry.
      const floor = 1e-3 * Math.max(...[...c.values()].map(maxAbs));
      let worst = { name: "", error: 0 };
      for (const [name, ref] of c) {
        const error = relativeError(g.get(name)!, ref, floor);
        if (error > worst.error) worst = { name, error };
      }
      expect(worst.error, `${phase}: worst gradient ${worst.name}`).toBeLessThan(RELATIVE);
    }
  }, 300_000);

  it("the trainer on webgpu: step losses match cpu, validation/embeddings/predictions agree, no synchronous device read", async () => {
    await on("cpu");
    const cpu = await trainerRun();
    await on("webgpu");
    // A read of a value that lives only on the device is a synchronous device read (in Node it
    // cannot even work: tfjs-backend-webgpu's readSync needs OffscreenCanvas).
    const backend = tf.backend() as unknown as {
      readSync(dataId: object): unknown;
      tensorMap: { get(dataId: object): { values: unknown } | undefined };
    };
    const readSync = backend.readSync;
    let deviceReads = 0;
    backend.readSync = function (this: typeof backend, dataId: object) {
      if (this.tensorMap.get(dataId)?.values == null) deviceReads++;
      return readSync.call(this, dataId);
    };
    let gpu: TrainerRun;
    try {
      gpu = await trainerRun();
    } finally {
      backend.readSync = readSync;
    }
    expect(deviceReads).toBe(0);
    expect(gpu.steps).toHaveLength(cpu.steps.length);
    cpu.steps.forEach((loss, i) => {
      for (const key of ["total", "ce", "msc", "mjap"] as const) {
        if (loss[key] === undefined) continue;
        expect(relativeError([gpu.steps[i][key]!], [loss[key]!]), `step ${i} ${key}`).toBeLessThan(RELATIVE);
      }
    });
    expect(Math.abs(gpu.dice - cpu.dice)).toBeLessThan(1e-3);
    expect(relativeError(gpu.embeddings, cpu.embeddings)).toBeLessThan(1e-3);
    const differ = gpu.prediction.reduce((n, v, i) => n + (v === cpu.prediction[i] ? 0 : 1), 0);
    expect(differ / cpu.prediction.length).toBeLessThan(1e-3);
  }, 300_000);
});
