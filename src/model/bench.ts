import { mulberry32 } from "../random.js";
import { JOINTS, type Joint } from "./api.js";
import { Adam } from "./engine/adam.js";
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
 * shared/bench/torch_reference.py times. No value is read back inside the timed steps; the last
 * step's loss is awaited once at the end, so asynchronous backends are timed to completion.
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
  const step = (): tf.Scalar => {
    const ctx: ForwardContext = {
      groups: joints.map((joint) => ({ joint, count: per })),
      training: true,
      statUpdates: [],
    };
    const loss = optimizer.minimize(() => domainCrossEntropy(net.apply(x, ctx).logits, labels), true, vars);
    applyStatUpdates(ctx);
    if (!loss) throw new Error("benchTrainStep: minimize returned no loss");
    return loss;
  };
  // Untimed warm-up steps; the last one (not the first, which creates the optimiser state) is
  // profiled for the kernel count.
  for (let i = 1; i < o.warmup; i++) step().dispose();
  const profile = await tf.profile(() => {
    step().dispose();
  });
  const tensorsBefore = tf.memory().numTensors;
  const t0 = performance.now();
  let last: tf.Scalar | undefined;
  for (let i = 0; i < o.steps; i++) {
    last?.dispose();
    last = step();
  }
  await last?.data();
  const ms = (performance.now() - t0) / o.steps;
  last?.dispose();
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
