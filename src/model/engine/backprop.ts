import { tf } from "./tf.js";

/**
 * Reverse-mode gradients that free memory as they go. tfjs's own `engine.gradients` keeps every
 * gradient tensor, every intermediate of every custom gradient and every tensor saved for the
 * backward pass until the whole backward pass ends, so a training step peaks at roughly the
 * forward activations plus all their gradients. This driver walks the same tape in the same
 * order with the same gradient functions, and after each node disposes what no later node can
 * need: the gradients of the node's outputs (only the node itself consumes them), the tensors
 * the node saved for its gradient, and every intermediate its gradient function made. The peak
 * becomes the saved activations plus the gradients in flight — PyTorch's profile.
 *
 * It reads tfjs-core 4.22's engine internals (the tape, `startTape`/`endTape`), typed here by
 * `EngineInternals`; nested gradients (a gradient inside a gradient) use tfjs's own driver.
 */

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
  gradients<T extends tf.Tensor>(
    f: () => T,
    xs: tf.Tensor[],
    dy?: T,
    allowNoGradients?: boolean,
  ): { value: T; grads: (tf.Tensor | null)[] };
}

/**
 * Runs fn with the gradient tape paused: its kernels are neither recorded nor save tensors for a
 * backward pass. For bookkeeping inside a loss function that no gradient flows through (batch
 * norm running statistics): without it every such kernel clones its inputs onto the tape.
 */
export function withoutTape<T>(fn: () => T): T {
  const state = (tf.engine() as unknown as EngineInternals).state;
  const depth = state.gradientDepth;
  state.gradientDepth = 0;
  try {
    return fn();
  } finally {
    state.gradientDepth = depth;
  }
}

/** The nodes on a path from some x to y, inputs pruned to those that depend on an x (tfjs's rule). */
function pathNodes(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodeFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      for (const o of node.outputs) fromX.add(o.id);
      nodeFromX.add(node.id);
    }
  }
  const toY = new Set([y.id]);
  const nodeToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toY.has(o.id))) {
      for (const t of Object.values(node.inputs)) toY.add(t.id);
      nodeToY.add(node.id);
    }
  }
  return tape
    .filter((n) => nodeFromX.has(n.id) && nodeToY.has(n.id))
    .map((n) => ({
      ...n,
      inputs: Object.fromEntries(Object.entries(n.inputs).filter(([, t]) => fromX.has(t.id))),
    }));
}

/**
 * value = f(), grads[i] = ∂value/∂xs[i] (null where value does not depend on xs[i]). Same
 * results as `tf.engine().gradients(f, xs, undefined, true)`, with the memory released early.
 */
export function gradientsFreeingMemory(
  f: () => tf.Scalar,
  xs: tf.Tensor[],
): { value: tf.Scalar; grads: (tf.Tensor | null)[] } {
  const engine = tf.engine() as unknown as EngineInternals;
  if (engine.state.gradientDepth > 0 || engine.state.activeTape)
    return engine.gradients(f, xs, undefined, true);
  const y = engine.scopedRun(
    () => engine.startTape(),
    () => engine.endTape(),
    () => engine.tidy("forward", f),
  );
  // (startTape set the tape; TypeScript still narrows it to null from the check above.)
  const fullTape = (engine.state.activeTape as TapeNode[] | null) ?? [];
  const nodes = pathNodes(fullTape, xs, y);
  const grads = engine.tidy("backward", () => {
    const grad = new Map<number, tf.Tensor>();
    grad.set(y.id, tf.onesLike(y));
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i];
      if (!node.gradient)
        throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
      const dys = node.outputs.map((o) => grad.get(o.id) ?? null);
      const names = Object.keys(node.inputs);
      const dxs = tf.tidy(() => {
        const fns = node.gradient!(dys);
        return names.map((name) => {
          if (!(name in fns)) {
            throw new Error(
              `Cannot backprop through input ${name}. Available gradients found: ${Object.keys(fns)}.`,
            );
          }
          return fns[name]();
        });
      });
      // The outputs' gradients are consumed; a dx that is one of them changes owner instead.
      for (const o of node.outputs) {
        const dy = grad.get(o.id);
        grad.delete(o.id);
        if (dy && !dxs.includes(dy)) dy.dispose();
      }
      for (const t of node.saved ?? []) if (!dxs.includes(t)) t.dispose();
      const taken = new Set<tf.Tensor>();
      names.forEach((name, k) => {
        const x = node.inputs[name];
        let dx = dxs[k];
        if (dx.dtype !== "float32") {
          throw new Error(
            `Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`,
          );
        }
        if (!tf.util.arraysEqual(dx.shape, x.shape)) {
          throw new Error(
            `Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`,
          );
        }
        if (taken.has(dx)) dx = dx.clone();
        taken.add(dx);
        const previous = grad.get(x.id);
        if (!previous) grad.set(x.id, dx);
        else {
          grad.set(x.id, tf.add(previous, dx));
          previous.dispose();
          dx.dispose();
        }
      });
    }
    const out = xs.map((x) => grad.get(x.id) ?? null);
    for (const [id, t] of grad) if (!xs.some((x) => x.id === id)) t.dispose();
    return out as tf.Tensor[];
  });
  for (const node of fullTape) for (const t of node.saved ?? []) if (!grads.includes(t)) t.dispose();
  engine.state.activeTape = null;
  return { value: y, grads };
}
