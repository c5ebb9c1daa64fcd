import { fjError } from "../errors.js";
import type { Joint } from "../joints.js";
import { tf } from "./engine/tf.js";
import type { ForwardContext } from "./layers/context.js";
import type { AttUNet } from "./nets/att-unet.js";

/**
 * Inference of the segmentation network on 2D slices for `fedjoint segment`: the computation of
 * `SegmentationTrainer.predictSlices` (the same forward pass in inference mode, chunk by chunk with
 * the trainer's chunk size, argmax, the "shared" method's union mapping), so that a model directory
 * gives on an exam the labels its site evaluated, bit for bit. Inference statistics (DSBN running
 * mean/variance), no gradient, tensors disposed per chunk, no synchronous device read.
 */
export interface PredictOptions {
  /** Slice side in pixels (the network's input size). */
  size: number;
  /** Slices per forward pass (the trainer's: its per-step batch of the joints it serves). */
  chunk: number;
  /**
   * The "shared" method's union head: the joint's own labels sit at union values offset+1 …
   * offset+classes−1; any other union value (another joint's structure) becomes background.
   */
  union?: { offset: number; classes: number };
  /** Called after each forward pass with the slices done so far and the total. */
  onChunk?: (done: number, total: number) => void;
}

/** Argmax labels [count, size, size] of `net` for slices of `joint` (row-major, count·size² values). */
export async function predictLabels(
  net: AttUNet,
  joint: Joint,
  images: Float32Array,
  o: PredictOptions,
): Promise<Uint8Array> {
  const { size } = o;
  const px = size * size;
  const count = images.length / px;
  if (!Number.isInteger(count)) {
    throw fjError(
      "FJ_MODEL_SHAPE",
      `predict: ${images.length} values is not a whole number of ${size}×${size} slices`,
    );
  }
  if (!Number.isInteger(o.chunk) || o.chunk < 1) {
    throw fjError("FJ_MODEL_SHAPE", `predict: chunk is ${o.chunk}, expected an integer ≥ 1`);
  }
  const out = new Uint8Array(images.length);
  for (let s = 0; s < count; s += o.chunk) {
    const n = Math.min(o.chunk, count - s);
    const arg = tf.tidy(() => {
      const x = tf.tensor4d(images.subarray(s * px, (s + n) * px), [n, size, size, 1]);
      const ctx: ForwardContext = { groups: [{ joint, count: n }], training: false, statUpdates: [] };
      return tf.argMax(net.apply(x, ctx).logits[0], 3);
    });
    const values = await arg.data();
    arg.dispose();
    const base = s * px;
    if (o.union) {
      const { offset, classes } = o.union;
      for (let i = 0; i < values.length; i++) {
        const u = values[i];
        out[base + i] = u > offset && u < offset + classes ? u - offset : 0;
      }
    } else {
      for (let i = 0; i < values.length; i++) out[base + i] = values[i];
    }
    o.onChunk?.(s + n, count);
  }
  return out;
}
