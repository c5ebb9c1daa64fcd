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

/** Expected tensor names and shapes (in order) of one phase's Θ. */
export interface TensorSchema {
  tensors: { name: string; shape: number[] }[];
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

/** What a site is told to do in one training round. */
export interface TrainInstructions {
  /** Local optimiser steps. */
  steps: number;
  /** Local learning rate of the phase. */
  lr: number;
  /** Upload anonymised embeddings after training (phases whose loss has a contrastive term). */
  embed: boolean;
}

/** What a site is told when it evaluates a fold's final model. */
export interface EvaluateInstructions {
  /** Aggregations of the fold's final SEG model (the model the site pulls). */
  round: number;
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
