/**
 * FedAvg (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
 * Decentralized Data"): every site runs the study's local steps from Θ_r, and Θ_{r+1} is the
 * weighted mean of what they send — by sample count, or uniform (the paper's per-domain average:
 * every joint weighs the same). Server state: none. Over Θ only (FedBN + FedPer in effect: the
 * DSBN statistics and heads never reach the coordinator).
 */
import { z } from "zod";
import { defaultTrainInstructions, forEverySite } from "../instructions.js";
import type { Strategy, StrategyFactory } from "../strategy.js";
import { WeightedMean, type Weighting, weightingSchema } from "../weighted-mean.js";

export const fedAvgSchema = z.strictObject({
  name: z.literal("fedavg"),
  weighting: weightingSchema,
});
export type FedAvgParams = z.output<typeof fedAvgSchema>;

export const fedAvg: StrategyFactory<FedAvgParams> = {
  name: "fedavg",
  create(params, study): Strategy {
    const weight = WeightedMean.weightOf(params.weighting as Weighting);
    return {
      name: `fedavg(${params.weighting})`,
      initialize: () => ({ tensors: [], scalars: {} }),
      configureTrain: (ctx, sites) => forEverySite(sites, defaultTrainInstructions(study, ctx)),
      configureEvaluate: (ctx, sites) => forEverySite(sites, { round: ctx.rounds }),
      begin: (schema) => new WeightedMean(schema, weight),
      restore: (schema, snapshot) => WeightedMean.restore(schema, weight, snapshot),
      aggregate: (round, _current, state) => ({ model: round.result(), state }),
    };
  },
};
