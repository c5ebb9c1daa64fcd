import type { Joint } from "../../joints.js";
import { scaleDims } from "../architecture.js";
import { maxPool2x, upsample2x } from "../engine/resample.js";
import { tf } from "../engine/tf.js";
import type { ForwardContext } from "../layers/context.js";
import { ConvBnRelu, DoubleConv } from "../layers/conv-bn-relu.js";
import { DomainConv } from "../layers/domain-conv.js";
import { DomainHead } from "../layers/head.js";
import type { ParamStore } from "../params.js";
import { l2Normalize } from "./att-unet.js";

export interface AutoEncoderConfig {
  /** Filters of the first level; level i has base·2^i (paper: 32 → 7.9M shared parameters). */
  base: number;
  /** Levels including the bottleneck (paper: 5 → 9 scales). */
  depth: number;
  /** One-hot input / output classes per joint, background included (|C_k| + 1). */
  classes: Readonly<Partial<Record<Joint, number>>>;
  /** The "shared" baseline: one batch norm, one input and one output layer over the union labels. */
  sharedNorm: boolean;
}

export interface AutoEncoderOutput {
  /** Reconstruction logits per domain group, in the order of ctx.groups: [n_k, H, W, |C_k|+1]. */
  logits: tf.Tensor4D[];
  /** z̃_s = L2-normalised GAP of each scale's activation, [N, d_s] (only when asked). */
  embeddings?: tf.Tensor2D[];
}

/**
 * Multi-joint auto-encoder AE = G∘F on one-hot label masks (paper §2.3, Fig. 3): the Att-UNet
 * without skip connections and attention gates. F = domain-specific 3×3 input layer (+ bias, ReLU)
 * on |C_k|+1 one-hot channels, then per level two 3×3 conv + DSBN + ReLU and 2×2 max-pool down to
 * the bottleneck (the anatomical code, a 2D feature map). G = per level nearest ×2 upsample + 3×3
 * conv + DSBN + ReLU and two conv blocks, then a domain-specific 1×1 output layer. Variables are
 * named `…/ae/…` so that they never collide with the segmentation network's. 2·depth − 1 scales
 * z̃_s like the Att-UNet's (base 32, depth 5: 7.85M shared parameters, paper Table 1: 7.9M).
 */
export class MultiJointAutoEncoder {
  readonly dims: number[];
  private readonly input: DomainConv;
  private readonly enc: DoubleConv[] = [];
  private readonly up: ConvBnRelu[] = [];
  private readonly dec: DoubleConv[] = [];
  readonly head: DomainHead;

  constructor(
    readonly params: ParamStore,
    readonly config: AutoEncoderConfig,
  ) {
    const { base, depth, sharedNorm } = config;
    const ch = Array.from({ length: depth }, (_, i) => base * 2 ** i);
    this.input = new DomainConv(params, "ae/input", config.classes, base, sharedNorm);
    let cin = base;
    ch.forEach((c, i) => {
      this.enc.push(new DoubleConv(params, `ae/enc${i}`, cin, c, sharedNorm));
      cin = c;
    });
    for (let l = depth - 2; l >= 0; l--) {
      this.up.push(new ConvBnRelu(params, `ae/up${l}`, ch[l + 1], ch[l], sharedNorm));
      this.dec.push(new DoubleConv(params, `ae/dec${l}`, ch[l], ch[l], sharedNorm));
    }
    this.head = new DomainHead(params, "ae/head", base, config.classes, sharedNorm);
    this.dims = scaleDims(base, depth);
  }

  build(joints: readonly Joint[]): void {
    this.input.build(joints);
    for (const layer of [...this.enc, ...this.up, ...this.dec]) layer.build(joints);
    this.head.build(joints);
  }

  /** One-hot width this joint's input layer expects. */
  inputClasses(joint: Joint): number {
    return this.input.inputsOf(joint);
  }

  /**
   * F: per-group one-hot (or soft) masks, in the order of ctx.groups, → the bottleneck code
   * [N, H/2^(depth−1), W/2^(depth−1), base·2^(depth−1)] and the encoder scales.
   */
  encode(masks: tf.Tensor4D[], ctx: ForwardContext): { code: tf.Tensor4D; scales: tf.Tensor4D[] } {
    const parts = masks.map((m, i) => tf.relu(this.input.apply(m, ctx.groups[i].joint)) as tf.Tensor4D);
    let h = parts.length === 1 ? parts[0] : (tf.concat(parts, 0) as tf.Tensor4D);
    const scales: tf.Tensor4D[] = [];
    this.enc.forEach((block, i) => {
      if (i > 0) h = maxPool2x(h);
      h = block.apply(h, ctx);
      scales.push(h);
    });
    return { code: h, scales };
  }

  /** G: code → reconstruction logits per group and the decoder scales. */
  decode(code: tf.Tensor4D, ctx: ForwardContext): { logits: tf.Tensor4D[]; scales: tf.Tensor4D[] } {
    let h = code;
    const scales: tf.Tensor4D[] = [];
    for (let i = 0; i < this.up.length; i++) {
      h = this.dec[i].apply(this.up[i].apply(upsample2x(h), ctx), ctx);
      scales.push(h);
    }
    const parts =
      ctx.groups.length === 1
        ? [h]
        : (tf.split(
            h,
            ctx.groups.map((g) => g.count),
            0,
          ) as tf.Tensor4D[]);
    return { logits: parts.map((p, i) => this.head.apply(p, ctx.groups[i].joint)), scales };
  }

  apply(
    masks: tf.Tensor4D[],
    ctx: ForwardContext,
    options: { embeddings?: boolean } = {},
  ): AutoEncoderOutput {
    const f = this.encode(masks, ctx);
    const g = this.decode(f.code, ctx);
    const out: AutoEncoderOutput = { logits: g.logits };
    if (options.embeddings) {
      out.embeddings = [...f.scales, ...g.scales].map((s) => l2Normalize(tf.mean(s, [1, 2]) as tf.Tensor2D));
    }
    return out;
  }
}
