import type { Joint } from "../../joints.js";
import { conv2d, conv2dSum } from "../engine/conv.js";
import { tf } from "../engine/tf.js";
import type { ParamStore } from "../params.js";
import type { ForwardContext } from "./context.js";
import { DomainBatchNorm } from "./dsbn.js";

/** 3×3 conv without bias (Θ, `shared/<path>/kernel`) → DSBN (Γ_k) → ReLU. */
export class ConvBnRelu {
  private readonly kernel: tf.Variable;
  private readonly bn: DomainBatchNorm;

  constructor(
    params: ParamStore,
    path: string,
    cin: number,
    cout: number,
    sharedBn: boolean,
    kernelSize = 3,
  ) {
    this.kernel = params.create(`shared/${path}/kernel`, [kernelSize, kernelSize, cin, cout], "he");
    this.bn = new DomainBatchNorm(params, `${path}/bn`, cout, sharedBn);
  }

  build(joints: readonly Joint[]): void {
    this.bn.build(joints);
  }

  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    return this.bn.apply(conv2d(x, this.kernel as tf.Tensor as tf.Tensor4D), ctx, { relu: true });
  }

  /**
   * Same as `apply(concat(parts, channels))` without materialising the concatenation: the
   * convolution of a channel concatenation is the sum of convolutions with the kernel's
   * input-channel blocks (saves a concat forward and a split backward per decoder level).
   */
  applyConcat(parts: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D {
    const k = this.kernel as tf.Tensor as tf.Tensor4D;
    const [kh, kw, , cout] = k.shape;
    let start = 0;
    const terms = parts.map((p): [tf.Tensor4D, tf.Tensor4D] => {
      const cin = p.shape[3];
      const block = tf.slice(k, [0, 0, start, 0], [kh, kw, cin, cout]);
      start += cin;
      return [p, block];
    });
    return this.bn.apply(conv2dSum(terms), ctx, { relu: true });
  }
}

/** Two ConvBnRelu: one level of the U-Net. */
export class DoubleConv {
  private readonly a: ConvBnRelu;
  private readonly b: ConvBnRelu;

  constructor(params: ParamStore, path: string, cin: number, cout: number, sharedBn: boolean) {
    this.a = new ConvBnRelu(params, `${path}/conv1`, cin, cout, sharedBn);
    this.b = new ConvBnRelu(params, `${path}/conv2`, cout, cout, sharedBn);
  }

  build(joints: readonly Joint[]): void {
    this.a.build(joints);
    this.b.build(joints);
  }

  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    return this.b.apply(this.a.apply(x, ctx), ctx);
  }

  /** `apply(concat(parts, channels))` without the concatenation (see ConvBnRelu.applyConcat). */
  applyConcat(parts: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D {
    return this.b.apply(this.a.applyConcat(parts, ctx), ctx);
  }
}
