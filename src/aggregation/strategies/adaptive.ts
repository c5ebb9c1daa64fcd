/**
 * What FedAdam and FedYogi share (Reddi et al. 2021, "Adaptive Federated Optimization", arXiv
 * 2003.00295): a server learning rate (default: the phase's training rate, so that with FedSGD
 * gradients the server step is the pooled model's Adam step), β1, β2, ε (the paper's τ) and
 * Adam's bias correction. Server state: the moments m and v over Θ and the step count.
 */
import { z } from "zod";
import type { StudyConfig } from "../../study/config.js";
import {
  evaluateInstructions,
  forEverySite,
  type SitePolicy,
  trainInstructions,
  updateKind,
} from "../instructions.js";
import { adaptiveStep, pseudoGradient } from "../server-optimizer.js";
import type { Strategy } from "../strategy.js";
import { WeightedMean } from "../weighted-mean.js";

export const adaptiveFields = {
  /** Server learning rate η of SEG rounds (default training.seg.lr) … */
  lr: z.number().positive().max(100).optional(),
  /** … and of AE rounds (default training.ae.lr). */
  aeLr: z.number().positive().max(100).optional(),
  beta1: z.number().min(0).max(0.9999).default(0.9),
  beta2: z.number().min(0).max(0.99999).default(0.999),
  epsilon: z.number().positive().max(10).default(1e-8),
  biasCorrection: z.boolean().default(true),
};

export interface AdaptiveParams extends SitePolicy {
  lr?: number;
  aeLr?: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  biasCorrection: boolean;
}

export function adaptiveStrategy(
  name: string,
  rule: "adam" | "yogi",
  params: AdaptiveParams,
  study: StudyConfig,
): Strategy {
  const weight = WeightedMean.weightOf(params.weighting);
  return {
    name: `${name}(${params.weighting}, ${params.update})`,
    initialize: () => ({ tensors: [], scalars: { step: 0 } }),
    configureTrain: (ctx, sites) => forEverySite(sites, trainInstructions(study, ctx, sites, params)),
    configureEvaluate: (ctx, sites) => forEverySite(sites, evaluateInstructions(study, ctx, params)),
    begin: (schema) => new WeightedMean(schema, weight),
    restore: (schema, snapshot) => WeightedMean.restore(schema, weight, snapshot),
    aggregate: (round, current, state, ctx) => {
      const g = pseudoGradient(
        round.schema,
        current,
        round.result(),
        updateKind(study, ctx.phase, params.update),
      );
      const lr = (ctx.phase === "ae" ? params.aeLr : params.lr) ?? study.training[ctx.phase].lr;
      return adaptiveStep(round.schema, current, g, state, {
        lr,
        beta1: params.beta1,
        beta2: params.beta2,
        epsilon: params.epsilon,
        biasCorrection: params.biasCorrection,
        rule,
      });
    },
  };
}
