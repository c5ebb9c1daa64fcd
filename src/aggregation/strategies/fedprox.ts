/**
 * FedProx (Li et al. 2020, "Federated Optimization in Heterogeneous Networks", MLSys; arXiv
 * 1812.06127): FedAvg whose sites minimise L_k(Θ) + (μ/2)·‖Θ − Θ_r‖² locally — the proximal term
 * keeps each site's local steps near the round's global model, which bounds client drift. Like
 * Flower's FedProx, only the instructions differ from FedAvg (`proximalMu`); the server takes the
 * round's mean. Server state: none.
 */
import { z } from "zod";
import { evaluateInstructions, forEverySite, sitePolicyFields, trainInstructions } from "../instructions.js";
import type { Strategy, StrategyFactory } from "../strategy.js";
import { WeightedMean } from "../weighted-mean.js";

export const fedProxSchema = z.strictObject({
  name: z.literal("fedprox"),
  ...sitePolicyFields,
  update: z.literal("model").default("model"),
  /** μ of the proximal term. */
  mu: z.number().min(0).max(1000).default(0.01),
});
export type FedProxParams = z.output<typeof fedProxSchema>;

export const fedProx: StrategyFactory<FedProxParams> = {
  name: "fedprox",
  create(params, study): Strategy {
    const weight = WeightedMean.weightOf(params.weighting);
    return {
      name: `fedprox(${params.weighting}, μ ${params.mu})`,
      initialize: () => ({ tensors: [], scalars: {} }),
      configureTrain: (ctx, sites) =>
        forEverySite(sites, trainInstructions(study, ctx, sites, params, params.mu)),
      configureEvaluate: (ctx, sites) => forEverySite(sites, evaluateInstructions(study, ctx, params)),
      begin: (schema) => new WeightedMean(schema, weight),
      restore: (schema, snapshot) => WeightedMean.restore(schema, weight, snapshot),
      aggregate: (round, _current, state) => ({ model: round.result(), state }),
    };
  },
};
