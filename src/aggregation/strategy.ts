/**
 * Aggregation strategies, one small interface à la Flower (`flwr/server/strategy/strategy.py`):
 * a strategy says whether models travel at all, how much an update weighs, and opens a
 * per-round aggregator that takes updates one at a time (streaming, memory O(|Θ|) whatever the
 * number of sites), can be snapshotted for persistence, and yields the new Θ.
 */
import type { NamedTensor } from "../model/api.js";

/** Expected tensor names and shapes (in order) of one phase's Θ. */
export interface TensorSchema {
  tensors: { name: string; shape: number[] }[];
}

export interface ClientUpdate {
  site: string;
  samples: number;
  tensors: readonly NamedTensor[];
}

export type Weighting = "samples" | "uniform";

export interface RoundAggregator {
  /** Adds one (already validated) update; throws if its names/shapes differ from the schema. */
  add(update: ClientUpdate): void;
  /** Sites added so far, in order. */
  readonly sites: readonly string[];
  readonly totalWeight: number;
  readonly totalSamples: number;
  /** The aggregate (throws when nothing was added). */
  result(): NamedTensor[];
  /**
   * Serialised state (accumulators + counters) for atomic persistence mid-round, as byte parts
   * to be written one after the other (views of the accumulators: no copy of |Θ|).
   */
  snapshot(): Uint8Array[];
}

export interface Strategy {
  readonly name: string;
  /** False for methods that never federate Θ (individual): updates carry no tensors. */
  readonly transmitsModel: boolean;
  /** Weight of an update in the mean. */
  weight(update: { samples: number }): number;
  /** A fresh aggregator for a round of the given schema. */
  begin(schema: TensorSchema): RoundAggregator;
  /** Restores an aggregator from `snapshot()` bytes (same schema). */
  restore(schema: TensorSchema, snapshot: Buffer): RoundAggregator;
}
