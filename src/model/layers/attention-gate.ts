import type { Joint } from "../../joints.js";
import { conv2d, conv2dSum } from "../engine/conv.js";
import { tf } from "../engine/tf.js";
import type { ParamStore } from "../params.js";
import type { ForwardContext } from "./context.js";
import { DomainBatchNorm } from "./dsbn.js";

/**
 * Additive attention gate (Oktay et al. 2018) on a skip connection x, gated by the decoder
 * signal g: α = σ(DSBN(ψ ∗ ReLU(DSBN(W_x ∗ x + W_g ∗ g)))), output x·α. W_x, W_g, ψ are 1×1
 * convs without bias (shared); both norms are domain-specific.
 */
export class AttentionGate {
  private readonly wx: tf.Variable;
  private readonly wg: tf.Variable;
  private readonly psi: tf.Variable;
  private readonly bn: DomainBatchNorm;
  private readonly bnPsi: DomainBatchNorm;

  constructor(params: ParamStore, path: string, cx: number, cg: number, cint: number, sharedBn: boolean) {
    this.wx = params.create(`shared/${path}/wx`, [1, 1, cx, cint], "he");
    this.wg = params.create(`shared/${path}/wg`, [1, 1, cg, cint], "he");
    this.psi = params.create(`shared/${path}/psi`, [1, 1, cint, 1], "he");
    this.bn = new DomainBatchNorm(params, `${path}/bn`, cint, sharedBn);
    this.bnPsi = new DomainBatchNorm(params, `${path}/bn_psi`, 1, sharedBn);
  }

  build(joints: readonly Joint[]): void {
    this.bn.build(joints);
    this.bnPsi.build(joints);
  }

  apply(x: tf.Tensor4D, g: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    const k = (v: tf.Variable) => v as tf.Tensor as tf.Tensor4D;
    const a = this.bn.apply(
      conv2dSum([
        [x, k(this.wx)],
        [g, k(this.wg)],
      ]),
      ctx,
      { relu: true },
    );
    const alpha = tf.sigmoid(this.bnPsi.apply(conv2d(a, k(this.psi)), ctx));
    return tf.mul(x, alpha);
  }
}
