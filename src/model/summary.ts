import { JOINTS, type Joint } from "../joints.js";
import {
  attUNetVariables,
  autoEncoderVariables,
  isSharedName,
  type NetSpec,
  scaleDims,
  type VariableSpec,
} from "./architecture.js";
import type { LabelSpec } from "./labels.js";

export type Arch = "att-unet" | "ae";

export interface ModelSummary {
  arch: Arch;
  base: number;
  depth: number;
  /** The "shared" baseline (one batch norm, one union head) instead of DSL. */
  sharedNorm: boolean;
  /** Trainable shared parameters Θ. */
  sharedParams: number;
  /** Trainable domain-specific parameters Γ_k per joint (DSBN γ/β, heads, AE input/output layers). */
  domainParams: Partial<Record<Joint, number>>;
  /** Running statistics per joint (not trainable, never transmitted). */
  domainStats: Partial<Record<Joint, number>>;
  /** sharedParams + Σ_k domainParams. */
  totalParams: number;
  /** Σ_k domainParams / totalParams (paper §3.3: ≤ 3 %). */
  domainFraction: number;
  /** Channels of each of the 2·depth − 1 scales (the embeddings' dimensions). */
  scales: number[];
}

/** Counts the network's variables by partition scope, from its architecture (nothing is built). */
export function modelSummary(
  arch: Arch,
  options: {
    base: number;
    depth: number;
    joints: Joint[];
    labels: Partial<Record<Joint, LabelSpec>>;
    sharedNorm?: boolean;
  },
): ModelSummary {
  const sharedNorm = options.sharedNorm ?? false;
  const net: NetSpec = {
    base: options.base,
    depth: options.depth,
    classes: Object.fromEntries(
      JOINTS.filter((j) => options.labels[j]).map((j) => [j, options.labels[j]!.classes]),
    ),
    sharedNorm,
  };
  const vars =
    arch === "ae" ? autoEncoderVariables(net, options.joints) : attUNetVariables(net, options.joints);
  const size = (v: VariableSpec) => v.shape.reduce((a, b) => a * b, 1);
  const sum = (pred: (v: VariableSpec) => boolean) => vars.filter(pred).reduce((n, v) => n + size(v), 0);
  const sharedParams = sum((v) => v.trainable && isSharedName(v.name));
  const domainParams: Partial<Record<Joint, number>> = {};
  const domainStats: Partial<Record<Joint, number>> = {};
  for (const j of options.joints) {
    const mine = (v: VariableSpec) => v.name.startsWith(`domain/${j}/`);
    domainParams[j] = sum((v) => v.trainable && mine(v));
    domainStats[j] = sum((v) => !v.trainable && mine(v));
  }
  const domainTotal = Object.values(domainParams).reduce<number>((a, b) => a + (b ?? 0), 0);
  const totalParams = sharedParams + domainTotal;
  return {
    arch,
    base: options.base,
    depth: options.depth,
    sharedNorm,
    sharedParams,
    domainParams,
    domainStats,
    totalParams,
    domainFraction: totalParams > 0 ? domainTotal / totalParams : 0,
    scales: scaleDims(options.base, options.depth),
  };
}
