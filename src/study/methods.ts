/**
 * MethodSpec: what each of the paper's methods (Tables 2–3 rows) trains, federates and adds to the
 * loss. The one place that knows what a method name means; everything else asks this module.
 * No tfjs here: the coordinator reads it too.
 *
 * | method        | phases   | federated                          | SEG loss terms              |
 * |---------------|----------|------------------------------------|-----------------------------|
 * | individual    | seg      | nothing (each site alone)          | L_CE                        |
 * | shared        | seg      | everything (one BN, one union head)| L_CE                        |
 * | dsl           | seg      | Θ (all conv kernels)               | L_CE                        |
 * | dsl+ssc       | seg      | Θ                                  | L_CE + λ_SSC·L_SSC          |
 * | dsl+msc       | seg      | Θ                                  | L_CE + λ2·L_MSC             |
 * | dsl+mjap      | ae, seg  | Θ and Θ_AE                         | L_CE + λ3·L_MJAP            |
 * | dsl+msc+mjap  | ae, seg  | Θ and Θ_AE                         | L_CE + λ2·L_MSC + λ3·L_MJAP |
 *
 * The AE phase (multi-joint auto-encoder on one-hot masks) always trains L_CE + λ1·L_MSC.
 */

export const METHODS = [
  "individual",
  "shared",
  "dsl",
  "dsl+ssc",
  "dsl+msc",
  "dsl+mjap",
  "dsl+msc+mjap",
] as const;
export type Method = (typeof METHODS)[number];

/** Training phase of a fold: the multi-joint auto-encoder (only for +mjap methods) then segmentation. */
export type Phase = "ae" | "seg";
export const PHASES = ["ae", "seg"] as const satisfies readonly Phase[];

/**
 * What crosses the wire in a round:
 * - `theta`: the shared convolution weights Θ only (DSBN and heads stay at the site);
 * - `all`: every variable (the "shared" baseline, whose variables are all shared/…);
 * - `nothing`: no tensors at all (individual training; rounds only pace the sites).
 */
export type Federation = "theta" | "all" | "nothing";

/** Which hyper-parameter weighs a contrastive term (fields of the study's `training` block). */
export type ContrastiveWeight = "lambdaAeMsc" | "lambdaMsc" | "lambdaSsc";

/** A contrastive term: its weight and the scales it applies to. */
export interface ContrastiveTerm {
  weight: ContrastiveWeight;
  /** `all`: the 2·depth−1 scales (L_MSC); `bottleneck`: the deepest scale only (L_SSC). */
  scales: "all" | "bottleneck";
}

export interface PhaseSpec {
  /** λ·L_MSC / λ·L_SSC of this phase, or none. */
  contrastive?: ContrastiveTerm;
  /** λ3·L_MJAP with the frozen auto-encoder's encoder (SEG phase of +mjap methods). */
  mjap: boolean;
}

export interface MethodSpec {
  name: Method;
  /** Phases of one fold, in order. */
  phases: readonly Phase[];
  federation: Federation;
  /** One batch norm and one union head for every domain (the "shared" baseline) instead of DSBN. */
  sharedNorm: boolean;
  /** Whether centralised training pools the joints into one model (false: one model per joint). */
  pooled: boolean;
  phase: Readonly<Record<Phase, PhaseSpec>>;
}

const AE: PhaseSpec = { contrastive: { weight: "lambdaAeMsc", scales: "all" }, mjap: false };
const PLAIN: PhaseSpec = { mjap: false };
const MSC: ContrastiveTerm = { weight: "lambdaMsc", scales: "all" };

const SPECS: Readonly<Record<Method, MethodSpec>> = {
  individual: {
    name: "individual",
    phases: ["seg"],
    federation: "nothing",
    sharedNorm: false,
    pooled: false,
    phase: { ae: AE, seg: PLAIN },
  },
  shared: {
    name: "shared",
    phases: ["seg"],
    federation: "all",
    sharedNorm: true,
    pooled: true,
    phase: { ae: AE, seg: PLAIN },
  },
  dsl: {
    name: "dsl",
    phases: ["seg"],
    federation: "theta",
    sharedNorm: false,
    pooled: true,
    phase: { ae: AE, seg: PLAIN },
  },
  "dsl+ssc": {
    name: "dsl+ssc",
    phases: ["seg"],
    federation: "theta",
    sharedNorm: false,
    pooled: true,
    phase: { ae: AE, seg: { contrastive: { weight: "lambdaSsc", scales: "bottleneck" }, mjap: false } },
  },
  "dsl+msc": {
    name: "dsl+msc",
    phases: ["seg"],
    federation: "theta",
    sharedNorm: false,
    pooled: true,
    phase: { ae: AE, seg: { contrastive: MSC, mjap: false } },
  },
  "dsl+mjap": {
    name: "dsl+mjap",
    phases: ["ae", "seg"],
    federation: "theta",
    sharedNorm: false,
    pooled: true,
    phase: { ae: AE, seg: { mjap: true } },
  },
  "dsl+msc+mjap": {
    name: "dsl+msc+mjap",
    phases: ["ae", "seg"],
    federation: "theta",
    sharedNorm: false,
    pooled: true,
    phase: { ae: AE, seg: { contrastive: MSC, mjap: true } },
  },
};

export function isMethod(value: string): value is Method {
  return (METHODS as readonly string[]).includes(value);
}

/** The spec of a method. */
export function methodSpec(method: Method): MethodSpec {
  return SPECS[method];
}

/** Whether a method trains the multi-joint auto-encoder (and so has an "ae" phase). */
export function hasPhase(method: Method, phase: Phase): boolean {
  return SPECS[method].phases.includes(phase);
}

/** Whether Θ (or anything) travels between sites and coordinator. */
export function federates(method: Method): boolean {
  return SPECS[method].federation !== "nothing";
}

/**
 * Whether sites exchange anonymised embeddings in a phase: only when the phase has a contrastive
 * term whose denominator the other sites' vectors extend, and only when the method federates.
 */
export function exchangesEmbeddings(method: Method, phase: Phase): boolean {
  const spec = SPECS[method];
  return (
    spec.federation !== "nothing" &&
    spec.phases.includes(phase) &&
    spec.phase[phase].contrastive !== undefined
  );
}

/** 0-based scale indices of a contrastive term for a network of `depth` levels (2·depth−1 scales). */
export function contrastiveScales(
  term: ContrastiveTerm,
  depth: number,
  override?: readonly number[],
): number[] {
  if (override && override.length > 0) return [...override];
  return term.scales === "bottleneck" ? [depth - 1] : Array.from({ length: 2 * depth - 1 }, (_, i) => i);
}
