import type { Joint } from "../../joints.js";
import { type BatchNormOptions, batchNormTrain, runningAverage } from "../engine/batch-norm.js";
import { tf } from "../engine/tf.js";
import type { ParamStore } from "../params.js";
import { equalGroups, type ForwardContext } from "./context.js";

export const BN_EPSILON = 1e-5;
/** PyTorch's convention: running = (1 − m)·running + m·batch, with the unbiased batch variance. */
export const BN_MOMENTUM = 0.1;

/**
 * Domain-specific batch normalisation (DSBN): one γ, β, running mean and running variance per
 * domain, named `domain/<joint>/<path>/{gamma,beta,moving_mean,moving_variance}`. With
 * `shared: true` it is an ordinary batch norm named `shared/<path>/…` (the paper's "shared"
 * baseline). Feeding domain A never reads or moves domain B's variables.
 */
export class DomainBatchNorm {
  constructor(
    private readonly params: ParamStore,
    private readonly path: string,
    private readonly channels: number,
    private readonly shared: boolean,
  ) {}

  private prefix(joint: Joint): string {
    return this.shared ? `shared/${this.path}` : `domain/${joint}/${this.path}`;
  }

  /** Variables of one domain (created on first use, so a site only ever holds its own). */
  private vars(joint: Joint) {
    const p = this.prefix(joint);
    const c = [this.channels];
    return {
      gamma: this.params.create(`${p}/gamma`, c, "ones"),
      beta: this.params.create(`${p}/beta`, c, "zeros"),
      mean: this.params.create(`${p}/moving_mean`, c, "zeros", false),
      variance: this.params.create(`${p}/moving_variance`, c, "ones", false),
    };
  }

  /** Creates the variables of these domains without running anything. */
  build(joints: readonly Joint[]): void {
    for (const j of joints) this.vars(j);
  }

  /** Normalises x; with `relu` the ReLU that follows is fused in (same values as tf.relu after it). */
  apply(x: tf.Tensor4D, ctx: ForwardContext, options: BatchNormOptions = {}): tf.Tensor4D {
    const groups = this.shared ? [{ joint: ctx.groups[0].joint, count: x.shape[0] }] : ctx.groups;
    if (!ctx.training) {
      return this.concat(
        this.split(x, groups).map((part, i) => {
          const v = this.vars(groups[i].joint);
          const y = tf.batchNorm(part, v.mean, v.variance, v.beta, v.gamma, BN_EPSILON) as tf.Tensor4D;
          return options.relu ? tf.relu(y) : y;
        }),
      );
    }
    if (groups.length === 1 || equalGroups({ ...ctx, groups }))
      return this.trainGroups(x, groups, ctx, options);
    return this.concat(
      this.split(x, groups).map((part, i) => this.trainGroups(part, [groups[i]], ctx, options)),
    );
  }

  /** Equal-sized domain groups: one reshape to [D, n·H, W, C] and one normalisation for all. */
  private trainGroups(
    x: tf.Tensor4D,
    groups: { joint: Joint; count: number }[],
    ctx: ForwardContext,
    options: BatchNormOptions,
  ): tf.Tensor4D {
    const [n, h, w, c] = x.shape;
    const d = groups.length;
    const m = (n / d) * h * w;
    const vs = groups.map((g) => this.vars(g.joint));
    const stack = (key: "gamma" | "beta") =>
      (d === 1
        ? vs[0][key].reshape([1, 1, 1, c])
        : tf.stack(vs.map((v) => v[key])).reshape([d, 1, 1, c])) as tf.Tensor4D;
    const grouped = x.reshape([d, (n / d) * h, w, c]) as tf.Tensor4D;
    const { y, mean, variance } = batchNormTrain(grouped, stack("gamma"), stack("beta"), BN_EPSILON, options);
    const unbiased = m > 1 ? m / (m - 1) : 1;
    const momentum = ctx.statMomentum ?? BN_MOMENTUM;
    vs.forEach((v, i) => {
      ctx.statUpdates.push(
        { variable: v.mean, value: tf.keep(runningAverage(v.mean, mean, i, 1, momentum)) },
        { variable: v.variance, value: tf.keep(runningAverage(v.variance, variance, i, unbiased, momentum)) },
      );
    });
    tf.dispose([mean, variance]);
    return y.reshape([n, h, w, c]);
  }

  private split(x: tf.Tensor4D, groups: { count: number }[]): tf.Tensor4D[] {
    if (groups.length === 1) return [x];
    return tf.split(
      x,
      groups.map((g) => g.count),
      0,
    ) as tf.Tensor4D[];
  }

  private concat(parts: tf.Tensor4D[]): tf.Tensor4D {
    return parts.length === 1 ? parts[0] : tf.concat(parts, 0);
  }
}

/** Applies and disposes the running-stat updates a training forward pass left in the context. */
export function applyStatUpdates(ctx: ForwardContext): void {
  for (const u of ctx.statUpdates) {
    u.variable.assign(u.value);
    u.value.dispose();
  }
  ctx.statUpdates.length = 0;
}
