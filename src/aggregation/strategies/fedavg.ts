/**
 * FedAvg (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
 * Decentralized Data"): every site runs the study's local steps from Θ_r, and Θ_{r+1} is the
 * weighted mean of what they send — by sample count, or uniform (the paper's per-domain average:
 * every joint weighs the same). Server state: none. Over Θ only (FedBN + FedPer in effect: the
 * DSBN statistics and heads never reach the coordinator).
 *
 * As a server optimiser (Reddi et al. 2021) FedAvg is SGD on the pseudo-gradient with step
 * `lr` = 1; another `lr` scales the step, and with `update: gradient` it is FedSGD with SGD rate `lr`.
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

export const fedAvgSchema = z.strictObject({
  name: z.literal("fedavg"),
  ...sitePolicyFields,
  /** Server step on the pseudo-gradient (1: Θ_{r+1} = the round's mean). */
  lr: z.number().positive().max(100).default(1),
});
export type FedAvgParams = z.output<typeof fedAvgSchema>;

export const fedAvg: StrategyFactory<FedAvgParams> = {
  name: "fedavg",
  create(params, study): Strategy {
    const weight = WeightedMean.weightOf(params.weighting);
    const plainMean = params.lr === 1 && params.update !== "gradient" && params.update !== "auto";
    return {
      name: `fedavg(${params.weighting}${params.update === "gradient" ? ", gradient" : ""})`,
      initialize: () => ({ tensors: [], scalars: {} }),
      configureTrain: (ctx, sites) => forEverySite(sites, trainInstructions(study, ctx, sites, params)),
      configureEvaluate: (ctx, sites) => forEverySite(sites, evaluateInstructions(study, ctx, params)),
      begin: (schema) => new WeightedMean(schema, weight),
      restore: (schema, snapshot) => WeightedMean.restore(schema, weight, snapshot),
      aggregate: (round, current, state, ctx) => {
        if (plainMean) return { model: round.result(), state };
        const g = pseudoGradient(
          round.schema,
          current,
          round.result(),
          updateKind(study, ctx.phase, params.update),
        );
        return momentumStep(round.schema, current, g, state, { lr: params.lr, momentum: 0 });
      },
    };
  },
};
