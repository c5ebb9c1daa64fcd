/**
 * The contract between the model (src/model: nets, losses, optimiser) and everything that drives
 * training: centralised `fedjoint train`, the federated site-client, and evaluation.
 *
 * Tensors that cross module boundaries are plain named Float32Arrays: the protocol layer never
 * sees tfjs, and the model never sees bytes on a wire. Joints and their labels: src/joints.ts.
 */
import { JOINTS, type Joint } from "../joints.js";

/**
 * Partition scope of a variable. Names are `shared/<path>` or `domain/<joint>/<path>`; the scope
 * is derived from the name and nothing else.
 */
export type Scope = "shared" | { domain: Joint };

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

const DOMAIN_NAME = new RegExp(`^domain/(${JOINTS.join("|")})/`);

/** Scope of a variable from its name: `shared/…` → shared, `domain/<joint>/…` → that joint. */
export function scopeOf(name: string): Scope {
  if (name.startsWith("shared/")) return "shared";
  const m = DOMAIN_NAME.exec(name);
  if (m) return { domain: m[1] as Joint };
  throw new Error(`variable '${name}' is neither shared/… nor domain/<joint>/…`);
}

export function isShared(name: string): boolean {
  return name.startsWith("shared/");
}

/** Per-scale unit vectors (no gradient) from other sites, used as extra L_MSC negatives. */
export interface EmbeddingBank {
  /** scale index s (0-based, 0..8 for depth 5) → vectors, each of length dims[s]. */
  scales: { scale: number; dim: number; vectors: Float32Array; count: number; domains: Int32Array }[];
}

/** Scalar loss components of a training span (means over steps). */
export interface LossComponents {
  total: number;
  ce: number;
  msc?: number;
  mjap?: number;
}
