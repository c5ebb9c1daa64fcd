/**
 * What FedAdam and FedYogi share (Reddi et al. 2021, "Adaptive Federated Optimization", arXiv
 * 2003.00295): a server learning rate (default `defaultServerLr`: with FedSGD gradients the
 * phase's training rate, so that the server step is the pooled model's Adam step), β1, β2, ε (the paper's τ) and
 * Adam's bias correction. Server state: the moments m and v over Θ and the step count.
 */
import { z } from "zod";
import type { StudyConfig } from "../../study/config.js";
import type { Phase } from "../../study/methods.js";
import {
  evaluateInstructions,
  forEverySite,
  localSteps,
  type SitePolicy,
  trainInstructions,
  updateKind,
} from "../instructions.js";
import { adaptiveStep, pseudoGradient } from "../server-optimizer.js";
import type { Strategy, UpdateKind } from "../strategy.js";
import { WeightedMean } from "../weighted-mean.js";

/**
 * The server rate when the config names none: the phase's training rate for gradients (the pooled
 * optimiser's step), × the local steps for models — server Adam moves each coordinate by about η
 * per round, and S local Adam steps move it by up to S × the local rate.
 */
export function defaultServerLr(study: StudyConfig, phase: Phase, update: UpdateKind): number {
  return study.training[phase].lr * (update === "gradient" ? 1 : localSteps(study, phase));
}

export const adaptiveFields = {
  /** Server learning rate η of SEG rounds (default: defaultServerLr) … */
  lr: z.number().positive().max(100).optional(),
  /** … and of AE rounds. */
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
      const update = updateKind(study, ctx.phase, params.update);
      const g = pseudoGradient(round.schema, current, round.result(), update);
      const lr = (ctx.phase === "ae" ? params.aeLr : params.lr) ?? defaultServerLr(study, ctx.phase, update);
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
