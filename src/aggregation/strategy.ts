/**
 * A federated-learning strategy, in the shape of Flower's `flwr/server/strategy/strategy.py`: the
 * strategy — not the coordinator — decides what each site does in a round (`configureTrain`,
 * `configureEvaluate`), how results combine (`begin` → a streaming `RoundAggregator`), and how the
 * global model and the strategy's own server state move (`aggregate`). The coordinator's Study
 * only drives the fold → phase → round cursor, keeps the ledger and persists what the strategy
 * returns. A new algorithm is one file in ./strategies and one line in its index.
 *
 * Memory: a round's results are folded in one at a time (O(|Θ|) whatever the number of sites);
 * aggregators and server state can be snapshotted for atomic persistence.
 */
import type { ErrorCode } from "../errors.js";
import type { NamedTensor } from "../model/api.js";
import type { StudyConfig } from "../study/config.js";
import type { Phase } from "../study/methods.js";

/**
 * Expected tensor names and shapes (in order) of one phase's Θ. `trainable: false` marks running
 * statistics (the "shared" baseline's one batch norm): a server optimiser never steps them, they
 * take the round's mean. Absent means trainable.
 */
export interface TensorSchema {
  tensors: { name: string; shape: number[]; trainable?: boolean }[];
}

/** One site's result of a training round, already validated against the schema. */
export interface SiteResult {
  site: string;
  /** Slices the site trained on in the round (bounded by its instructions). */
  samples: number;
  /** Θ_r^k as the site sent it. */
  tensors: readonly NamedTensor[];
}

/** A round of a (fold, phase) training. */
export interface RoundContext {
  fold: number;
  phase: Phase;
  /** 0-based index of the round within its phase. */
  round: number;
  /** Rounds of the phase. */
  rounds: number;
}

/**
 * What a site sends after its local steps: `model` = Θ_r^k, its Θ after the steps (the FedAvg
 * family; the server's pseudo-gradient is Θ_r − mean_k Θ_r^k); `gradient` = ∂L_k/∂Θ at Θ_r from
 * one step (FedSGD: Θ does not move at the site; the server optimiser steps on the mean gradient).
 */
export type UpdateKind = "model" | "gradient";
export const UPDATE_KINDS = ["model", "gradient"] as const satisfies readonly UpdateKind[];

/**
 * The site's local Adam state at the start of a round: `keep` (moments persist while Θ jumps to
 * the new aggregate), `reset` (fresh moments and step count every round), `reset-first-moment`
 * (m = 0, the second moment and its step count kept).
 */
export type LocalOptimizerPolicy = "keep" | "reset" | "reset-first-moment";
export const LOCAL_OPTIMIZER_POLICIES = [
  "keep",
  "reset",
  "reset-first-moment",
] as const satisfies readonly LocalOptimizerPolicy[];

/**
 * Γ_k personalisation: `steps` Adam steps on the site's own data that move only Γ_k (DSBN γ/β and
 * heads; Θ frozen at the new aggregate) before the site validates or evaluates. 0 = none.
 */
export interface Personalisation {
  steps: number;
  lr: number;
}

/** What a site is told to do in one training round. */
export interface TrainInstructions {
  /** Local optimiser steps. */
  steps: number;
  /** Local learning rate of the phase. */
  lr: number;
  /** Upload anonymised embeddings after training (phases whose loss has a contrastive term). */
  embed: boolean;
  /** What the site sends back: its model after the steps, or (FedSGD) the gradient of one step. */
  update: UpdateKind;
  /**
   * The site's weight w_k in the pooled objective L = Σ_k w_k·L_k that its aggregation weight
   * stands for (uniform: 1/K). In `gradient` mode Γ_k steps on ∂(w_k·L_k)/∂Γ_k = ∂L/∂Γ_k, exactly
   * what pooled training applies to Γ_k; Θ's gradient is sent unscaled (the server's weighted
   * mean applies w_k). Unused in `model` mode.
   */
  lossWeight: number;
  /** FedProx: μ of the proximal term (μ/2)·‖Θ − Θ_r‖² added to the local loss (0 = none). */
  proximalMu: number;
  /** The local Adam state at the start of the round. */
  optimizer: LocalOptimizerPolicy;
  /** Γ_k personalisation on the new Θ before this round's validation. */
  personalise: Personalisation;
  /** Whether the site validates Θ_r (+ Γ_k) before training and reports the Dice as a metric. */
  validate: boolean;
}

/** What a site is told when it evaluates a fold's final model. */
export interface EvaluateInstructions {
  /** Aggregations of the fold's final SEG model (the model the site pulls). */
  round: number;
  /** Γ_k personalisation on the final Θ before validation and the test exam. */
  personalise: Personalisation;
}

/** A strategy's server-side state between rounds (e.g. momentum or Adam moments over Θ). */
export interface StrategyState {
  tensors: NamedTensor[];
  scalars: Record<string, number>;
}

/** An accepted result that a strategy left out of the aggregate, and why. */
export interface Exclusion {
  site: string;
  code: ErrorCode;
  reason: string;
}

export interface RoundAggregator {
  /** The schema of the round's results. */
  readonly schema: TensorSchema;
  /** Folds one validated result in; throws if its names/shapes differ from the schema. */
  add(result: SiteResult): void;
  /** Sites added so far, in order. */
  readonly sites: readonly string[];
  readonly totalSamples: number;
  /** The combination of the round's client models (e.g. their weighted mean); throws when empty. */
  result(): NamedTensor[];
  /** Serialised state as byte parts written one after the other (views: no copy of |Θ|). */
  snapshot(): Uint8Array[];
}

export interface Strategy {
  readonly name: string;
  /** Server state at the start of a (fold, phase) training from the seeded Θ_0. */
  initialize(initial: readonly NamedTensor[]): StrategyState;
  /** Per-site instructions of a training round. */
  configureTrain(ctx: RoundContext, sites: readonly string[]): Record<string, TrainInstructions>;
  /** Per-site instructions to evaluate fold `fold` after its last SEG round. */
  configureEvaluate(
    ctx: { fold: number; rounds: number },
    sites: readonly string[],
  ): Record<string, EvaluateInstructions>;
  /** A fresh aggregator for a round of the given schema. */
  begin(schema: TensorSchema): RoundAggregator;
  /** Restores an aggregator from its `snapshot()` bytes (same schema). */
  restore(schema: TensorSchema, snapshot: Buffer): RoundAggregator;
  /**
   * Θ_{r+1} and the new server state from Θ_r, the closed round and the previous state; `excluded`
   * names accepted results left out of Θ_{r+1} (absent: every result entered).
   */
  aggregate(
    round: RoundAggregator,
    current: readonly NamedTensor[],
    state: StrategyState,
    ctx: RoundContext,
  ): { model: NamedTensor[]; state: StrategyState; excluded?: Exclusion[] };
}

/** A strategy's entry in the registry (./strategies/index.ts): its config schema and constructor. */
export interface StrategyFactory<P extends { name: string } = { name: string }> {
  readonly name: P["name"];
  create(params: P, study: StudyConfig): Strategy;
}
