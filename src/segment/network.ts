/**
 * A model directory's segmentation network, built for inference: the Att-UNet of its card with
 * the directory's Θ and Γ_k written into it, predicting as the trainer does (src/model/predict.ts).
 * Needs an initialised engine (src/model/engine/backend.ts).
 */
import { fjError } from "../errors.js";
import type { Joint } from "../joints.js";
import type { LabelSpec } from "../model/labels.js";
import { unionLabels } from "../model/labels.js";
import type { ModelDir } from "../model/model-dir.js";
import { AttUNet } from "../model/nets/att-unet.js";
import { ParamStore } from "../model/params.js";
import { predictLabels } from "../model/predict.js";

/** The joint to segment with `model`: `joint` if the model serves it, else its only joint. */
export function modelJoint(model: ModelDir, joint?: Joint): Joint {
  const joints = model.card.joints;
  const chosen = joint ?? (joints.length === 1 ? joints[0] : undefined);
  if (chosen === undefined) {
    throw fjError(
      "FJ_SEGMENT_JOINT",
      `${model.dir} serves ${joints.join(", ")}: pass --joint with the exam's joint`,
    );
  }
  if (!joints.includes(chosen)) {
    throw fjError(
      "FJ_SEGMENT_JOINT",
      `${model.dir} is a ${joints.join("/")} model, it has no ${chosen} domain (--joint ${chosen})`,
    );
  }
  return chosen;
}

export class SegmentationNetwork {
  readonly joint: Joint;
  readonly labels: LabelSpec;
  private readonly params: ParamStore;
  private readonly net: AttUNet;
  private readonly union?: { offset: number; classes: number };

  /** `joint`: which of the model's joints to segment (default: its only one). */
  constructor(
    readonly model: ModelDir,
    joint?: Joint,
  ) {
    const card = model.card;
    const chosen = modelJoint(model, joint);
    this.joint = chosen;
    this.labels = model.labels[chosen]!;
    if (card.network.sharedNorm) {
      const u = unionLabels(model.labels);
      this.union = { offset: u.offset[chosen]!, classes: this.labels.classes };
    }
    this.params = new ParamStore(card.source.seed);
    this.net = new AttUNet(this.params, { ...model.net, inChannels: 1 });
    this.net.build(card.joints);
    this.params.write(model.tensors);
  }

  /** Argmax labels [count, size, size] (the joint's own label values) of z-scored slices. */
  predict(images: Float32Array, onChunk?: (done: number, total: number) => void): Promise<Uint8Array> {
    const card = this.model.card;
    return predictLabels(this.net, this.joint, images, {
      size: card.input.size,
      chunk: card.inference.batch,
      union: this.union,
      onChunk,
    });
  }

  dispose(): void {
    this.params.dispose();
  }
}
