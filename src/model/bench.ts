import { JOINTS, type Joint } from "../joints.js";
import { mulberry32 } from "../random.js";
import { Adam } from "./engine/adam.js";
import { ReadBehind } from "./engine/readback.js";
import { tf } from "./engine/tf.js";
import type { ForwardContext } from "./layers/context.js";
import { applyStatUpdates } from "./layers/dsbn.js";
import { domainCrossEntropy } from "./losses/ce.js";
import { AttUNet } from "./nets/att-unet.js";
import { ParamStore } from "./params.js";

export interface TrainStepBenchOptions {
  base: number;
  depth: number;
  size: number;
  batch: number;
  domains: number;
  classes: number;
  steps: number;
  warmup: number;
}

export interface TrainStepBenchResult {
  backend: string;
  msPerStep: number;
  imagesPerSecond: number;
  images: number;
  sharedParams: number;
  totalParams: number;
  /** tfjs kernel calls (nested ones included) of one step, the last warm-up step. */
  kernelsPerStep: number;
  /** Peak resident set size of the process so far (MiB). */
  peakRssMB: number;
  numTensorsStable: boolean;
}

/**
 * One Adam step of the multi-domain Att-UNet on random data: the batch split equally between
 * domains (DSBN + head per domain), L_CE averaged per domain — exactly what
 * shared/bench/torch_reference.py times. No synchronous read inside a step: each loss is read one
 * behind (ReadBehind, as in trainSteps), and the timing ends when the last read is done, so
 * asynchronous backends are timed to completion.
 */
export async function benchTrainStep(o: TrainStepBenchOptions): Promise<TrainStepBenchResult> {
  if (o.domains < 1 || o.domains > JOINTS.length)
    throw new RangeError(`--domains must be 1..${JOINTS.length}`);
  const joints: Joint[] = JOINTS.slice(0, o.domains) as Joint[];
  const per = Math.max(Math.floor(o.batch / o.domains), 1);
  const images = per * o.domains;
  const params = new ParamStore(0);
  const classes = Object.fromEntries(joints.map((j) => [j, o.classes]));
  const net = new AttUNet(params, {
    base: o.base,
    depth: o.depth,
    inChannels: 1,
    classes,
    sharedNorm: false,
  });
  net.build(joints);
  const optimizer = new Adam(5e-4);
  const rand = mulberry32(1);
  const x = tf.tensor4d(
    Float32Array.from({ length: images * o.size * o.size }, () => rand() * 2 - 1),
    [images, o.size, o.size, 1],
  );
  const labels = joints.map(() =>
    tf.tensor3d(
      Int32Array.from({ length: per * o.size * o.size }, () => Math.floor(rand() * o.classes)),
      [per, o.size, o.size],
      "int32",
    ),
  );
  const vars = params.trainable();
  // Each step's loss is read asynchronously while the next step is queued, as in trainSteps; the
  // reads also bound the queued work, and the last one ends the timing once the device is done.
  const losses = new ReadBehind<void>(() => undefined);
  const step = () => {
    const ctx: ForwardContext = {
      groups: joints.map((joint) => ({ joint, count: per })),
      training: true,
      statUpdates: [],
    };
    const loss = optimizer.minimize(() => domainCrossEntropy(net.apply(x, ctx).logits, labels), true, vars);
    applyStatUpdates(ctx);
    return losses.push(loss ?? tf.scalar(Number.NaN), undefined);
  };
  // Untimed warm-up steps; the last one (not the first, which creates the optimiser state) is
  // profiled for the kernel count.
  for (let i = 1; i < o.warmup; i++) await step();
  const profile = await tf.profile(() => step());
  await losses.drain();
  const tensorsBefore = tf.memory().numTensors;
  const t0 = performance.now();
  for (let i = 0; i < o.steps; i++) await step();
  await losses.drain();
  const ms = (performance.now() - t0) / o.steps;
  const numTensorsStable = tf.memory().numTensors === tensorsBefore;
  const shared = params.names((_, scope) => scope === "shared");
  const result: TrainStepBenchResult = {
    backend: tf.getBackend(),
    msPerStep: Math.round(ms * 10) / 10,
    imagesPerSecond: Math.round((images * 100000) / ms) / 100,
    images,
    sharedParams: params.count(shared),
    totalParams: params.count(params.names((_, __, trainable) => trainable)),
    kernelsPerStep: profile.kernels.length,
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    numTensorsStable,
  };
  tf.dispose([x, ...labels]);
  optimizer.dispose();
  params.dispose();
  return result;
}
