import { fjError } from "../errors.js";
import { type NamedTensor, type Scope, scopeOf } from "./api.js";
import { type Initializer, initialValues } from "./architecture.js";
import { tf } from "./engine/tf.js";

let storeSerial = 0;

/**
 * tfjs registers variables in one global table by name, so two stores in one process (two sites
 * in a simulation, the "individual" method's per-joint networks, tests) cannot both use the bare
 * partition name. The store keys everything by the partition name; the engine name gets a
 * `#<n>` suffix when the bare name is taken.
 */
function engineName(name: string): string {
  if (!(name in tf.engine().registeredVariables)) return name;
  let candidate: string;
  do candidate = `${name}#${++storeSerial}`;
  while (candidate in tf.engine().registeredVariables);
  return candidate;
}

interface Entry {
  variable: tf.Variable;
  trainable: boolean;
}

/**
 * All variables of a network, by partition name (`shared/…`, `domain/<joint>/…`). Layers create
 * their variables here; optimisers, checkpoints and the federation read them by name, never by
 * position.
 */
export class ParamStore {
  private readonly entries = new Map<string, Entry>();
  private readonly seed: number;

  /** `seed` seeds every variable's initial values together with its name (./architecture.ts). */
  constructor(seed = 0) {
    this.seed = seed;
  }

  /** Creates (or returns the existing) variable `name`. */
  create(name: string, shape: number[], init: Initializer, trainable = true): tf.Variable {
    const existing = this.entries.get(name);
    if (existing) {
      if (existing.variable.shape.join() !== shape.join()) {
        throw fjError(
          "FJ_MODEL_SHAPE",
          `variable ${name} exists with shape [${existing.variable.shape}], asked [${shape}]`,
        );
      }
      return existing.variable;
    }
    scopeOf(name);
    const values = initialValues({ name, shape, init }, this.seed);
    const initial = tf.tensor(values, shape, "float32");
    const variable = tf.variable(initial, trainable, engineName(name));
    initial.dispose(); // the variable holds its own reference: its buffer stays unshared

    this.entries.set(name, { variable, trainable });
    return variable;
  }

  /** Name, shape and trainability of every variable, in creation order. */
  specs(): { name: string; shape: number[]; trainable: boolean }[] {
    return [...this.entries.entries()].map(([name, e]) => ({
      name,
      shape: [...e.variable.shape],
      trainable: e.trainable,
    }));
  }

  get(name: string): tf.Variable {
    const e = this.entries.get(name);
    if (!e) throw fjError("FJ_MODEL_UNKNOWN_VARIABLE", `no variable named ${name}`);
    return e.variable;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  names(filter: (name: string, scope: Scope, trainable: boolean) => boolean = () => true): string[] {
    return [...this.entries.entries()].filter(([n, e]) => filter(n, scopeOf(n), e.trainable)).map(([n]) => n);
  }

  /** Trainable variables whose scope matches (for the optimiser's var list). */
  trainable(filter: (name: string, scope: Scope) => boolean = () => true): tf.Variable[] {
    return [...this.entries.entries()]
      .filter(([n, e]) => e.trainable && filter(n, scopeOf(n)))
      .map(([, e]) => e.variable);
  }

  /** Reads variables out as plain named arrays (copies), asynchronously: no synchronous device read. */
  read(names: string[]): Promise<NamedTensor[]> {
    return Promise.all(
      names.map(async (name) => {
        const v = this.get(name);
        return { name, shape: [...v.shape], data: (await v.data()) as Float32Array };
      }),
    );
  }

  /** Overwrites variables from named arrays; every name and shape must match. */
  write(tensors: NamedTensor[]): void {
    for (const t of tensors) {
      const v = this.entries.get(t.name)?.variable;
      if (!v) throw fjError("FJ_MODEL_UNKNOWN_VARIABLE", `tensor ${t.name} has no variable in this model`);
      if (v.shape.join() !== t.shape.join() || t.data.length !== v.size) {
        throw fjError(
          "FJ_MODEL_SHAPE",
          `tensor ${t.name} has shape [${t.shape}], the model expects [${v.shape}]`,
        );
      }
    }
    for (const t of tensors) {
      const v = this.get(t.name);
      tf.tidy(() => v.assign(tf.tensor(t.data, v.shape, "float32")));
    }
  }

  count(names: string[]): number {
    return names.reduce((n, name) => n + this.get(name).size, 0);
  }

  dispose(): void {
    for (const e of this.entries.values()) e.variable.dispose();
    this.entries.clear();
  }
}
