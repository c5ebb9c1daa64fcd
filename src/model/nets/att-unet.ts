import type { Joint } from "../../joints.js";
import { scaleDims } from "../architecture.js";
import { maxPool2x, upsample2x } from "../engine/resample.js";
import { tf } from "../engine/tf.js";
import { AttentionGate } from "../layers/attention-gate.js";
import type { ForwardContext } from "../layers/context.js";
import { ConvBnRelu, DoubleConv } from "../layers/conv-bn-relu.js";
import { DomainHead } from "../layers/head.js";
import type { ParamStore } from "../params.js";

export interface AttUNetConfig {
  /** Filters of the first level; level i has base·2^i (paper: 32). */
  base: number;
  /** Number of levels including the bottleneck (paper: 5 → 9 scales). */
  depth: number;
  /** Input channels (1 for MR). */
  inChannels: number;
  /** Output classes per joint, background included (|C_k| + 1). */
  classes: Readonly<Partial<Record<Joint, number>>>;
  /** The paper's "shared" baseline: one batch norm and one union head for every domain. */
  sharedNorm: boolean;
}

export interface AttUNetOutput {
  /** Logits per domain group, in the order of ctx.groups: [n_k, H, W, |C_k|+1]. */
  logits: tf.Tensor4D[];
  /** z_s = L2-normalised GAP of each scale's activation, [N, d_s] (only when asked). */
  embeddings?: tf.Tensor2D[];
}

export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.add(tf.norm(x, "euclidean", 1, true), 1e-12));
}

/**
 * Attention U-Net (Oktay et al. 2018) as in Boutillon et al. 2022: per level two 3×3 conv +
 * DSBN + ReLU, 2×2 max-pool; decoder = nearest ×2 upsample + 3×3 conv + DSBN + ReLU, additive
 * attention gate on the skip (F_int = F/2), concat [up, gated skip], two conv blocks; a 1×1
 * domain head. Identical to shared/bench/torch_reference.py.
 */
export class AttUNet {
  readonly dims: number[];
  private readonly enc: DoubleConv[] = [];
  private readonly up: ConvBnRelu[] = [];
  private readonly gate: AttentionGate[] = [];
  private readonly dec: DoubleConv[] = [];
  readonly head: DomainHead;

  constructor(
    readonly params: ParamStore,
    readonly config: AttUNetConfig,
  ) {
    const { base, depth, inChannels, sharedNorm } = config;
    const ch = Array.from({ length: depth }, (_, i) => base * 2 ** i);
    let cin = inChannels;
    ch.forEach((c, i) => {
      this.enc.push(new DoubleConv(params, `enc${i}`, cin, c, sharedNorm));
      cin = c;
    });
    for (let l = depth - 2; l >= 0; l--) {
      this.up.push(new ConvBnRelu(params, `up${l}`, ch[l + 1], ch[l], sharedNorm));
      this.gate.push(
        new AttentionGate(params, `gate${l}`, ch[l], ch[l], Math.max(Math.floor(ch[l] / 2), 1), sharedNorm),
      );
      this.dec.push(new DoubleConv(params, `dec${l}`, 2 * ch[l], ch[l], sharedNorm));
    }
    this.head = new DomainHead(params, "head", base, config.classes, sharedNorm);
    this.dims = scaleDims(base, depth);
  }

  /** Creates every domain variable of these joints (a site builds only its own). */
  build(joints: readonly Joint[]): void {
    for (const layer of [...this.enc, ...this.up, ...this.gate, ...this.dec]) layer.build(joints);
    this.head.build(joints);
  }

  apply(x: tf.Tensor4D, ctx: ForwardContext, options: { embeddings?: boolean } = {}): AttUNetOutput {
    const scales: tf.Tensor4D[] = [];
    const skips: tf.Tensor4D[] = [];
    let h = x;
    this.enc.forEach((block, i) => {
      h = block.apply(h, ctx);
      scales.push(h);
      if (i < this.enc.length - 1) {
        skips.push(h);
        h = maxPool2x(h);
      }
    });
    for (let i = 0; i < this.up.length; i++) {
      const skip = skips.pop()!;
      const g = this.up[i].apply(upsample2x(h), ctx);
      h = this.dec[i].applyConcat([g, this.gate[i].apply(skip, g, ctx)], ctx);
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
    const logits = parts.map((part, i) => this.head.apply(part, ctx.groups[i].joint));
    const out: AttUNetOutput = { logits };
    if (options.embeddings)
      out.embeddings = scales.map((s) => l2Normalize(tf.mean(s, [1, 2]) as tf.Tensor2D));
    return out;
  }
}
