import { gradientsFreeingMemory } from "./backprop.js";
import { nativeAdamStep } from "./native/index.js";
import { tf } from "./tf.js";

type NamedWeight = { name: string; tensor: tf.Tensor };

/**
 * Adam (Kingma & Ba), PyTorch's defaults and bias correction. A drop-in tf.Optimizer: on the
 * native backend each variable is updated in place by one native call instead of ~15 tfjs
 * kernels; elsewhere it runs the same arithmetic with tfjs ops. Gradients come from
 * ./backprop.ts, which frees the backward pass's memory as it goes. Moment buffers are named
 * after their variable, so optimizer state can be checkpointed per partition scope.
 */
export class Adam extends tf.Optimizer {
  static get className(): string {
    return "FedjointAdam";
  }

  private step = 0;
  /** Variable updates done in place by the native kernel (the rest ran as tfjs ops). */
  nativeUpdates = 0;
  private readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();

  constructor(
    /** Mutable: a federated round's instructions may set the phase's rate. */
    public learningRate: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = 1e-8,
  ) {
    super();
  }

  private state(name: string, variable: tf.Variable) {
    let s = this.moments.get(name);
    if (!s) {
      const zeros = (suffix: string) => {
        const initial = tf.zerosLike(variable);
        // engine names are global: a second optimiser over the same variable gets a suffix
        const base = `${name}/adam_${suffix}`;
        let engineName = base;
        for (let i = 1; engineName in tf.engine().registeredVariables; i++) engineName = `${base}#${i}`;
        const buffer = tf.variable(initial, false, engineName);
        initial.dispose(); // unshared buffers can be updated in place
        return buffer;
      };
      s = { m: zeros("m"), v: zeros("v") };
      this.moments.set(name, s);
    }
    return s;
  }

  /** tf.Optimizer's `variableGrads`, through the memory-freeing backward pass. */
  override computeGradients(
    f: () => tf.Scalar,
    varList?: tf.Variable[],
  ): { value: tf.Scalar; grads: tf.NamedTensorMap } {
    const vars = (varList ?? Object.values(tf.engine().registeredVariables)).filter((v) => v.trainable);
    if (vars.length === 0) throw new Error("Adam.minimize: no trainable variables");
    const { value, grads } = gradientsFreeingMemory(f, vars);
    if (!grads.some((g) => g !== null)) {
      throw new Error("Adam.minimize: the loss does not depend on any of the variables");
    }
    if (value.rank !== 0) throw new Error(`Adam.minimize: the loss must be a scalar, got rank ${value.rank}`);
    const named: tf.NamedTensorMap = {};
    vars.forEach((v, i) => {
      const g = grads[i];
      if (g) named[v.name] = g;
    });
    return { value, grads: named };
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedWeight[]): void {
    const entries: [string, tf.Tensor][] = Array.isArray(variableGradients)
      ? variableGradients.map((e) => [e.name, e.tensor])
      : Object.entries(variableGradients);
    this.step++;
    const h = {
      lr: this.learningRate,
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
      step: this.step,
    };
    const c1 = 1 / (1 - this.beta1 ** this.step);
    const c2 = 1 / (1 - this.beta2 ** this.step);
    for (const [name, grad] of entries) {
      const variable = tf.engine().registeredVariables[name];
      if (!variable || grad == null) continue;
      const { m, v } = this.state(name, variable);
      if (nativeAdamStep(variable, grad, m, v, h)) {
        this.nativeUpdates++;
        continue;
      }
      // float32 ops in the native kernel's order and with its constants (β and 1 − β rounded as
      // float32 registers hold them): every engine takes the same Adam step as the coordinator's
      // server Adam (src/aggregation/server-optimizer.ts) on the same gradient
      tf.tidy(() => {
        const f = Math.fround;
        const b1 = f(this.beta1);
        const b2 = f(this.beta2);
        const mNew = tf.add(tf.mul(m, b1), tf.mul(grad, f(1 - b1)));
        const vNew = tf.add(tf.mul(v, b2), tf.mul(tf.mul(grad, f(1 - b2)), grad));
        const update = tf.div(
          tf.mul(tf.mul(mNew, f(c1)), f(this.learningRate)),
          tf.add(tf.sqrt(tf.mul(vNew, f(c2))), f(this.epsilon)),
        );
        variable.assign(tf.sub(variable, update));
        m.assign(mNew);
        v.assign(vNew);
      });
    }
    this.incrementIterations();
  }

  override async getWeights(): Promise<NamedWeight[]> {
    const weights: NamedWeight[] = [{ name: "iter", tensor: tf.scalar(this.step, "int32") }];
    for (const [name, s] of this.moments) {
      weights.push({ name: `${name}/adam_m`, tensor: s.m }, { name: `${name}/adam_v`, tensor: s.v });
    }
    return weights;
  }

  override async setWeights(weightValues: NamedWeight[]): Promise<void> {
    for (const { name, tensor } of weightValues) {
      if (name === "iter") {
        this.step = (await tensor.data())[0];
        continue;
      }
      const match = /^(.*)\/adam_(m|v)$/.exec(name);
      const variable = match ? tf.engine().registeredVariables[match[1]] : undefined;
      if (!match || !variable) continue;
      const s = this.state(match[1], variable);
      (match[2] === "m" ? s.m : s.v).assign(tensor);
    }
  }

  override dispose(): void {
    for (const s of this.moments.values()) tf.dispose([s.m, s.v]);
    this.moments.clear();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }
}
