import type { Joint } from "../../../src/joints.js";
import { PAPER_LABELS } from "../../../src/model/labels.js";
import {
  type JointData,
  type SamplerFactory,
  type TrainerConfig,
  type TrainerSlices,
  trainerConfig,
} from "../../../src/model/trainer.js";
import { mulberry32 } from "../../../src/random.js";
import { parseStudyConfig } from "../../../src/study/config.js";
import type { Method } from "../../../src/study/methods.js";

/**
 * Tiny synthetic slices: per joint a different background intensity and `classes−1` discs at
 * jittered places, one label each. Enough structure to learn, cheap to build.
 */
export function toySlices(joint: Joint, count: number, size: number, seed: number): TrainerSlices {
  const rand = mulberry32(seed);
  const classes = PAPER_LABELS[joint].classes;
  const shift = { ankle: -0.5, knee: 0.3, shoulder: 1 }[joint];
  const px = size * size;
  const images = new Float32Array(count * px);
  const labels = new Uint8Array(count * px);
  for (let n = 0; n < count; n++) {
    for (let i = 0; i < px; i++) images[n * px + i] = shift + 0.3 * (rand() - 0.5);
    for (let c = 1; c < classes; c++) {
      const angle = (2 * Math.PI * c) / (classes - 1) + 0.3 * (rand() - 0.5);
      const cy = size / 2 + (size / 4) * Math.sin(angle);
      const cx = size / 2 + (size / 4) * Math.cos(angle);
      const r = size * (0.1 + 0.04 * rand());
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          if ((y - cy) ** 2 + (x - cx) ** 2 <= r * r) {
            labels[n * px + y * size + x] = c;
            images[n * px + y * size + x] += 1 + 0.4 * c;
          }
        }
      }
    }
  }
  return { size, count, images, labels };
}

export function toyData(
  joints: Joint[],
  size: number,
  train = 12,
  val = 4,
): Partial<Record<Joint, JointData>> {
  return Object.fromEntries(
    joints.map((j, k) => [
      j,
      {
        train: toySlices(j, train, size, 100 + k),
        val: toySlices(j, val, size, 200 + k),
        labels: PAPER_LABELS[j],
      },
    ]),
  );
}

/** A seeded uniform sampler without augmentation (the real one lives in src/data/slices.ts). */
export const toySampler: SamplerFactory = (set, { batch, seed }) => {
  const rand = mulberry32(seed);
  const px = set.size * set.size;
  return {
    next() {
      const images = new Float32Array(batch * px);
      const labels = new Uint8Array(batch * px);
      for (let k = 0; k < batch; k++) {
        const i = Math.floor(rand() * set.count);
        images.set(set.images.subarray(i * px, (i + 1) * px), k * px);
        labels.set(set.labels.subarray(i * px, (i + 1) * px), k * px);
      }
      return { images, labels, n: batch };
    },
  };
};

export interface TestTrainerOptions {
  base?: number;
  depth?: number;
  size?: number;
  seed?: number;
  /** Pooled batch of the study, split between `joints` (each trainer joint is one study site). */
  segBatch?: number;
  aeBatch?: number;
  segLr?: number;
  aeLr?: number;
  scales?: number[];
}

/**
 * A trainer config through the study config, as every real caller builds one: a study whose
 * sites are exactly `joints` (so the batch splits between them), Table 1 defaults elsewhere.
 */
export function testTrainerConfig(
  method: Method,
  joints: Joint[],
  o: TestTrainerOptions = {},
): TrainerConfig {
  const study = parseStudyConfig({
    study: "test",
    method,
    sites: joints.map((j) => ({ name: j, joint: j })),
    rounds: 1,
    localSteps: 1,
    seed: o.seed ?? 0,
    model: { base: o.base ?? 4, depth: o.depth ?? 3, size: o.size ?? 16 },
    training: {
      seg: { batch: o.segBatch ?? 18, lr: o.segLr ?? 5e-4 },
      ae: { batch: o.aeBatch ?? 24, lr: o.aeLr ?? 1e-4 },
      ...(o.scales ? { scales: o.scales } : {}),
    },
  });
  return trainerConfig(study, joints, PAPER_LABELS);
}
