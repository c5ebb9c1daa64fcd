import type { Joint } from "../../joints.js";
import { conv2d } from "../engine/conv.js";
import { tf } from "../engine/tf.js";
import type { ParamStore } from "../params.js";

/**
 * Domain-specific 1×1 output layer W_k, b_k with |C_k| + 1 classes (background first), named
 * `domain/<joint>/<path>/{kernel,bias}`; with `shared: true` one union head `shared/<path>/…`
 * over background + every joint's structures with distinct labels, 1 + Σ_k |C_k| classes (the
 * paper's "shared" baseline; see `unionLabels` in ../labels.ts for the label mapping).
 */
export class DomainHead {
  constructor(
    private readonly params: ParamStore,
    private readonly path: string,
    private readonly cin: number,
    private readonly classes: Readonly<Partial<Record<Joint, number>>>,
    private readonly shared: boolean,
  ) {}

  classesOf(joint: Joint): number {
    const n = this.shared
      ? 1 + Object.values(this.classes).reduce<number>((a, c) => a + Math.max((c ?? 1) - 1, 0), 0)
      : this.classes[joint];
    if (!n) throw new Error(`head ${this.path} has no classes for joint ${joint}`);
    return n;
  }

  private vars(joint: Joint) {
    const p = this.shared ? `shared/${this.path}` : `domain/${joint}/${this.path}`;
    const n = this.classesOf(joint);
    return {
      kernel: this.params.create(`${p}/kernel`, [1, 1, this.cin, n], "glorot"),
      bias: this.params.create(`${p}/bias`, [n], "zeros"),
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
