import type { Joint } from "../../joints.js";
import type { tf } from "../engine/tf.js";

/** A contiguous run of samples of one domain inside a batch. */
export interface DomainGroup {
  joint: Joint;
  count: number;
}

/** Running-statistics update produced by a training forward pass, applied after the step. */
export interface StatUpdate {
  variable: tf.Variable;
  value: tf.Tensor;
}

/**
 * What a forward pass needs besides its input: which domain each part of the batch belongs to,
 * training vs inference statistics, and where batch-norm layers leave their running-stat updates.
 */
export interface ForwardContext {
  groups: DomainGroup[];
  training: boolean;
  /** Filled by normalisation layers when training; the caller applies and disposes them. */
  statUpdates: StatUpdate[];
  /** Running-statistics momentum for this pass (default BN_MOMENTUM; 1/(i+1) averages passes). */
  statMomentum?: number;
}

export function batchSize(ctx: ForwardContext): number {
  return ctx.groups.reduce((n, g) => n + g.count, 0);
}

export function equalGroups(ctx: ForwardContext): boolean {
  return ctx.groups.every((g) => g.count === ctx.groups[0].count);
}
