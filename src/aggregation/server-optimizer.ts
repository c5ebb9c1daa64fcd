/**
 * The server side of adaptive federated optimisation (Reddi et al. 2021, "Adaptive Federated
 * Optimization", arXiv 2003.00295, Algorithm 2): a round's results combine into a pseudo-gradient
 * g_r, which a server optimiser applies to Θ_r — FedAvg is server SGD with step 1 on
 * g_r = Θ_r − mean_k Θ_r^k, FedAvgM adds momentum, FedAdam / FedYogi keep Adam / Yogi moments
 * over Θ. Pure functions over named Float32Arrays (float64 arithmetic, float32 results), state
 * O(|Θ|), no tfjs: the coordinator runs them.
 *
 * Running statistics (`trainable: false` in the schema: the "shared" baseline's one batch norm)
 * are not optimised: they take the round's mean, whatever the update kind.
 */
import { fjError } from "../errors.js";
import type { NamedTensor } from "../model/api.js";
import type { StrategyState, TensorSchema, UpdateKind } from "./strategy.js";

/** A round's combined result split into the pseudo-gradient and the statistics' mean. */
export interface PseudoGradient {
  /** g_r per trainable tensor, in schema order. */
  gradient: Map<string, Float32Array>;
  /** Mean of each non-trainable tensor (running statistics). */
  statistics: Map<string, Float32Array>;
}

function byName(tensors: readonly NamedTensor[], what: string): Map<string, NamedTensor> {
  const m = new Map(tensors.map((t) => [t.name, t]));
  if (m.size !== tensors.length) throw fjError("FJ_AGG_SCHEMA", `${what}: a tensor name repeats`);
  return m;
}

/**
 * g_r from Θ_r and the round's combination (weighted mean) of what the sites sent: Θ_r − mean for
 * models, the mean itself for gradients (FedSGD).
 */
export function pseudoGradient(
  schema: TensorSchema,
  current: readonly NamedTensor[],
  combined: readonly NamedTensor[],
  update: UpdateKind,
): PseudoGradient {
  const cur = byName(current, "Θ_r");
  const mean = byName(combined, "round result");
  const gradient = new Map<string, Float32Array>();
  const statistics = new Map<string, Float32Array>();
  for (const spec of schema.tensors) {
    const m = mean.get(spec.name);
    const c = cur.get(spec.name);
    if (!m || !c || m.data.length !== c.data.length) {
      throw fjError("FJ_AGG_SCHEMA", `tensor ${spec.name}: missing or of another size in Θ_r or the round`);
    }
    if (spec.trainable === false) {
      statistics.set(spec.name, m.data);
      continue;
    }
    if (update === "gradient") {
      gradient.set(spec.name, m.data);
      continue;
    }
    const g = new Float32Array(m.data.length);
    for (let i = 0; i < g.length; i++) g[i] = c.data[i] - m.data[i];
    gradient.set(spec.name, g);
  }
  return { gradient, statistics };
}

/** Θ_{r+1} = Θ_r − direction (per trainable tensor); statistics take their mean. */
export function applyStep(
  schema: TensorSchema,
  current: readonly NamedTensor[],
  g: PseudoGradient,
  direction: (name: string, gradient: Float32Array) => Float64Array | Float32Array,
): NamedTensor[] {
  const cur = byName(current, "Θ_r");
  return schema.tensors.map((spec) => {
    const c = cur.get(spec.name)!;
    const stat = g.statistics.get(spec.name);
    if (stat) return { name: spec.name, shape: [...spec.shape], data: Float32Array.from(stat) };
    const d = direction(spec.name, g.gradient.get(spec.name)!);
    const data = new Float32Array(c.data.length);
    for (let i = 0; i < data.length; i++) data[i] = c.data[i] - d[i];
    return { name: spec.name, shape: [...spec.shape], data };
  });
}

/**
 * Named moment buffers of a server state (`<prefix>/<tensor name>`), created as zeros on first
 * use for the trainable tensors of the schema; returned buffers are fresh copies.
 */
export function moments(
  state: StrategyState,
  prefix: string,
  schema: TensorSchema,
): Map<string, Float32Array> {
  const have = new Map(state.tensors.filter((t) => t.name.startsWith(`${prefix}/`)).map((t) => [t.name, t]));
  const out = new Map<string, Float32Array>();
  for (const spec of schema.tensors) {
    if (spec.trainable === false) continue;
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const t = have.get(`${prefix}/${spec.name}`);
    if (t && t.data.length !== size) {
      throw fjError(
        "FJ_AGG_SNAPSHOT",
        `server state ${prefix}/${spec.name}: ${t.data.length} values, expected ${size}`,
      );
    }
    out.set(spec.name, t ? Float32Array.from(t.data) : new Float32Array(size));
  }
  return out;
}

/** The moment buffers as state tensors, in schema order. */
export function momentTensors(
  prefix: string,
  schema: TensorSchema,
  buffers: Map<string, Float32Array>,
): NamedTensor[] {
  return schema.tensors
    .filter((s) => buffers.has(s.name))
    .map((s) => ({ name: `${prefix}/${s.name}`, shape: [...s.shape], data: buffers.get(s.name)! }));
}

/** Server SGD with momentum β (Hsu et al. 2019): v ← β·v + g; Θ ← Θ − η·v. β = 0: plain SGD. */
export function momentumStep(
  schema: TensorSchema,
  current: readonly NamedTensor[],
  g: PseudoGradient,
  state: StrategyState,
  o: { lr: number; momentum: number },
): { model: NamedTensor[]; state: StrategyState } {
  if (o.momentum === 0) {
    const model = applyStep(schema, current, g, (_n, grad) => {
      const d = new Float64Array(grad.length);
      for (let i = 0; i < d.length; i++) d[i] = o.lr * grad[i];
      return d;
    });
    return {
      model,
      state: { tensors: [], scalars: { ...state.scalars, rounds: (state.scalars.rounds ?? 0) + 1 } },
    };
  }
  const v = moments(state, "momentum", schema);
  const model = applyStep(schema, current, g, (name, grad) => {
    const buf = v.get(name)!;
    const d = new Float64Array(grad.length);
    for (let i = 0; i < d.length; i++) {
      buf[i] = o.momentum * buf[i] + grad[i];
      d[i] = o.lr * buf[i];
    }
    return d;
  });
  return {
    model,
    state: {
      tensors: momentTensors("momentum", schema, v),
      scalars: { ...state.scalars, rounds: (state.scalars.rounds ?? 0) + 1 },
    },
  };
}

export interface AdaptiveOptions {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Adam's bias correction of both moments (PyTorch's Adam; off: Reddi et al.'s Algorithm 2 as printed). */
  biasCorrection: boolean;
  /** Second-moment rule: Adam v ← β2·v + (1−β2)·g²; Yogi v ← v − (1−β2)·g²·sign(v − g²). */
  rule: "adam" | "yogi";
}

/**
 * Server Adam / Yogi on the pseudo-gradient: m ← β1·m + (1−β1)·g, v by the rule, t ← t + 1,
 * Θ ← Θ − η·m̂ / (√v̂ + ε) with m̂ = m/(1−β1^t), v̂ = v/(1−β2^t) when bias-corrected. With
 * bias correction this is, element for element, the step of src/model/engine/adam.ts (PyTorch's
 * Adam, in the native kernel's float32 operation order): with FedSGD gradients the server step
 * is the pooled model's Adam step.
 */
export function adaptiveStep(
  schema: TensorSchema,
  current: readonly NamedTensor[],
  g: PseudoGradient,
  state: StrategyState,
  o: AdaptiveOptions,
): { model: NamedTensor[]; state: StrategyState } {
  const m = moments(state, "m", schema);
  const v = moments(state, "v", schema);
  const t = (state.scalars.step ?? 0) + 1;
  // float32 arithmetic, operation for operation as native/conv.cc's AdamStep (each result rounded
  // like its float registers): the server's Adam step on a gradient is the pooled optimiser's
  // step on the same gradient, bit for bit.
  const f = Math.fround;
  const b1 = f(o.beta1);
  const b2 = f(o.beta2);
  const lr = f(o.lr);
  const eps = f(o.epsilon);
  const c1 = o.biasCorrection ? f(1 / (1 - o.beta1 ** t)) : 1;
  const c2 = o.biasCorrection ? f(1 / (1 - o.beta2 ** t)) : 1;
  const oneMinusB1 = f(1 - b1);
  const oneMinusB2 = f(1 - b2);
  const model = applyStep(schema, current, g, (name, grad) => {
    const mb = m.get(name)!;
    const vb = v.get(name)!;
    const d = new Float32Array(grad.length);
    for (let i = 0; i < d.length; i++) {
      const gi = grad[i];
      const g2 = f(f(oneMinusB2 * gi) * gi);
      mb[i] = f(f(b1 * mb[i]) + f(oneMinusB1 * gi));
      vb[i] = o.rule === "adam" ? f(f(b2 * vb[i]) + g2) : f(vb[i] - f(g2 * Math.sign(f(vb[i] - f(gi * gi)))));
      d[i] = f(f(lr * f(mb[i] * c1)) / f(f(Math.sqrt(f(vb[i] * c2))) + eps));
    }
    return d;
  });
  return {
    model,
    state: {
      tensors: [...momentTensors("m", schema, m), ...momentTensors("v", schema, v)],
      scalars: { ...state.scalars, step: t },
    },
  };
}
