import type { Joint } from "../../joints.js";
import { conv2d } from "../engine/conv.js";
import { tf } from "../engine/tf.js";
import type { ParamStore } from "../params.js";

/**
 * Domain-specific K×K convolution with bias whose input width depends on the joint: the
 * multi-joint auto-encoder's input layer on one-hot masks of |C_k| + 1 channels, named
 * `domain/<joint>/<path>/{kernel,bias}` (`shared/<path>/…` with `shared: true`, where every joint
 * feeds the union one-hot of 1 + Σ_k |C_k| channels, as the union head of ./head.ts).
 */
export class DomainConv {
  constructor(
    private readonly params: ParamStore,
    private readonly path: string,
    private readonly cin: Readonly<Partial<Record<Joint, number>>>,
    private readonly cout: number,
    private readonly shared: boolean,
    private readonly kernelSize = 3,
  ) {}

  inputsOf(joint: Joint): number {
    const n = this.shared
      ? 1 + Object.values(this.cin).reduce<number>((a, c) => a + Math.max((c ?? 1) - 1, 0), 0)
      : this.cin[joint];
    if (!n) throw new Error(`layer ${this.path} has no input width for joint ${joint}`);
    return n;
  }

  private vars(joint: Joint) {
    const p = this.shared ? `shared/${this.path}` : `domain/${joint}/${this.path}`;
    const k = this.kernelSize;
    return {
      kernel: this.params.create(`${p}/kernel`, [k, k, this.inputsOf(joint), this.cout], "he"),
      bias: this.params.create(`${p}/bias`, [this.cout], "zeros"),
    };
  }

  build(joints: readonly Joint[]): void {
    for (const j of joints) this.vars(j);
  }

  apply(x: tf.Tensor4D, joint: Joint): tf.Tensor4D {
    const v = this.vars(joint);
    return tf.add(conv2d(x, v.kernel as tf.Tensor as tf.Tensor4D), v.bias);
  }
}
