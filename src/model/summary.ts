import { JOINTS, type Joint } from "../joints.js";
import type { LabelSpec } from "./labels.js";
import { AttUNet } from "./nets/att-unet.js";
import { MultiJointAutoEncoder } from "./nets/auto-encoder.js";
import { ParamStore } from "./params.js";

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

/** Builds the network once and counts its variables by partition scope. */
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
  const params = new ParamStore(0);
  const sharedNorm = options.sharedNorm ?? false;
  const classes = Object.fromEntries(
    JOINTS.filter((j) => options.labels[j]).map((j) => [j, options.labels[j]!.classes]),
  ) as Partial<Record<Joint, number>>;
  try {
    const net =
      arch === "ae"
        ? new MultiJointAutoEncoder(params, { base: options.base, depth: options.depth, classes, sharedNorm })
        : new AttUNet(params, {
            base: options.base,
            depth: options.depth,
            inChannels: 1,
            classes,
            sharedNorm,
          });
    net.build(options.joints);
    const sharedParams = params.count(params.names((_, s, t) => t && s === "shared"));
    const domainParams: Partial<Record<Joint, number>> = {};
    const domainStats: Partial<Record<Joint, number>> = {};
    for (const j of options.joints) {
      domainParams[j] = params.count(params.names((_, s, t) => t && s !== "shared" && s.domain === j));
      domainStats[j] = params.count(params.names((_, s, t) => !t && s !== "shared" && s.domain === j));
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
      scales: net.dims,
    };
  } finally {
    params.dispose();
  }
}
