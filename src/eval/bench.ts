import { performance } from "node:perf_hooks";
import { hashSeed, mulberry32 } from "../random.js";
import { type Dims3, maskOf, type Spacing3 } from "../volume/grid.js";
import { binaryMetrics } from "./metrics.js";
import { postprocessLabels } from "./postprocess.js";
import { stackProbabilities } from "./stack.js";

/**
 * Timing of the evaluation pipeline on a synthetic volume (default 512×512×300, three "bones" of
 * realistic size plus speckle): stacking 256×256 probability slices back to the grid (bilinear +
 * argmax), post-processing (largest component + ball closing per label) and the 3D metrics.
 */
export interface EvalBenchOptions {
  dims?: Dims3;
  spacing?: Spacing3;
  trainSize?: number;
  seed?: number;
}

export interface EvalBenchResult {
  dims: Dims3;
  voxels: number;
  labels: number;
  stackSeconds: number;
  postprocessSeconds: number;
  metricsSeconds: number;
  totalSeconds: number;
  /** CPU time (user + system) of the three stages: what wall time would be on an idle core. */
  cpuSeconds: number;
  meanDice: number;
}

export function syntheticLabelMap(dims: Dims3, seed: number, shift = 0): Uint8Array {
  const [X, Y, Z] = dims;
  const out = new Uint8Array(X * Y * Z);
  const bones: { c: [number, number, number]; r: [number, number, number]; l: number }[] = [
    { c: [0.35, 0.4, 0.5], r: [0.12, 0.18, 0.35], l: 1 },
    { c: [0.65, 0.45, 0.45], r: [0.1, 0.12, 0.3], l: 2 },
    { c: [0.5, 0.75, 0.55], r: [0.15, 0.08, 0.25], l: 3 },
  ];
  for (const b of bones) {
    const cx = b.c[0] * X + shift;
    const cy = b.c[1] * Y;
    const cz = b.c[2] * Z;
    const rx = b.r[0] * X;
    const ry = b.r[1] * Y;
    const rz = b.r[2] * Z;
    for (let z = Math.max(0, Math.floor(cz - rz)); z < Math.min(Z, Math.ceil(cz + rz + 1)); z++)
      for (let y = Math.max(0, Math.floor(cy - ry)); y < Math.min(Y, Math.ceil(cy + ry + 1)); y++)
        for (let x = Math.max(0, Math.floor(cx - rx)); x < Math.min(X, Math.ceil(cx + rx + 1)); x++) {
          const d = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2;
          if (d <= 1) out[x + X * (y + Y * z)] = b.l;
        }
  }
  if (shift !== 0) {
    const rand = mulberry32(hashSeed("bench", seed));
    for (let k = 0; k < out.length / 2000; k++)
      out[Math.floor(rand() * out.length)] = 1 + Math.floor(rand() * 3);
  }
  return out;
}

export function benchEvaluation(options: EvalBenchOptions = {}): EvalBenchResult {
  const dims = options.dims ?? [512, 512, 300];
  const spacing = options.spacing ?? [0.3, 0.3, 0.6];
  const T = options.trainSize ?? 256;
  const seed = options.seed ?? 1;
  const [X, Y, Z] = dims;
  const gt = syntheticLabelMap(dims, seed);
  // A prediction at training size: one-hot-ish probabilities of a shifted, speckled label map.
  const predFull = syntheticLabelMap(dims, seed, 2);
  const C = 4;
  const slices: Float32Array[] = [];
  for (let z = 0; z < Z; z++) {
    const s = new Float32Array(T * T * C);
    for (let r = 0; r < T; r++) {
      const y = Math.min(Y - 1, Math.floor(((r + 0.5) * Y) / T));
      for (let c = 0; c < T; c++) {
        const x = Math.min(X - 1, Math.floor(((c + 0.5) * X) / T));
        const l = predFull[x + X * (y + Y * z)];
        for (let k = 0; k < C; k++) s[(r * T + c) * C + k] = k === l ? 0.9 : 0.1 / (C - 1);
      }
    }
    slices.push(s);
  }
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const pred = stackProbabilities(slices, C, { dims, trainSize: [T, T] });
  const t1 = performance.now();
  const labels = [1, 2, 3];
  const masks = postprocessLabels(pred, dims, labels);
  const t2 = performance.now();
  let dice = 0;
  for (const l of labels) dice += binaryMetrics(masks.get(l)!, maskOf(gt, l), dims, spacing).dice;
  const t3 = performance.now();
  const cpu = process.cpuUsage(c0);
  return {
    dims,
    voxels: X * Y * Z,
    labels: labels.length,
    stackSeconds: (t1 - t0) / 1000,
    postprocessSeconds: (t2 - t1) / 1000,
    metricsSeconds: (t3 - t2) / 1000,
    totalSeconds: (t3 - t0) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    meanDice: dice / labels.length,
  };
}
