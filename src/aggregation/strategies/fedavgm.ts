/**
 * FedAvgM (Hsu, Qi and Brown 2019, "Measuring the Effects of Non-Identical Data Distribution for
 * Federated Visual Classification", arXiv 1909.06335): FedAvg with server momentum on the
 * pseudo-gradient g_r = Θ_r − mean_k Θ_r^k: v ← β·v + g_r, Θ_{r+1} = Θ_r − η·v. The defaults
 * (β 0.9, η 0.1) keep the effective step η/(1−β) = 1 of FedAvg while smoothing the direction over
 * rounds. Server state: v over Θ, persisted with the study.
 */
import { z } from "zod";
import {
  evaluateInstructions,
  forEverySite,
  sitePolicyFields,
  trainInstructions,
  updateKind,
} from "../instructions.js";
import { momentumStep, pseudoGradient } from "../server-optimizer.js";
import type { Strategy, StrategyFactory } from "../strategy.js";
import { WeightedMean } from "../weighted-mean.js";

export const fedAvgMSchema = z.strictObject({
  name: z.literal("fedavgm"),
  ...sitePolicyFields,
  lr: z.number().positive().max(100).default(0.1),
  momentum: z.number().min(0).max(0.999).default(0.9),
});
export type FedAvgMParams = z.output<typeof fedAvgMSchema>;

export const fedAvgM: StrategyFactory<FedAvgMParams> = {
  name: "fedavgm",
  create(params, study): Strategy {
    const weight = WeightedMean.weightOf(params.weighting);
    return {
      name: `fedavgm(${params.weighting}, lr ${params.lr}, β ${params.momentum})`,
      initialize: () => ({ tensors: [], scalars: { rounds: 0 } }),
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
        return momentumStep(round.schema, current, g, state, { lr: params.lr, momentum: params.momentum });
      },
    };
  },
};
