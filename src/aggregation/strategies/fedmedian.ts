/**
 * FedMedian (Yin et al. 2018, "Byzantine-Robust Distributed Learning: Towards Optimal Statistical
 * Rates"; Flower's `FedMedian`): Θ_{r+1} is the coordinate-wise median of the round's client
 * models — one site sending anything at all moves no coordinate beyond the honest sites' range.
 * Unweighted (sample counts do not vote). Keeps every result of the round: memory O(n · |Θ|).
 */
import { z } from "zod";
import { CollectedResults, type Combine, coordinateWise, medianInPlace } from "../collected.js";
import { defaultTrainInstructions, forEverySite } from "../instructions.js";
import type { Strategy, StrategyFactory } from "../strategy.js";

export const fedMedianSchema = z.strictObject({ name: z.literal("fedmedian") });
export type FedMedianParams = z.output<typeof fedMedianSchema>;

const median: Combine = (results) => coordinateWise(results, (values) => medianInPlace(values));

export const fedMedian: StrategyFactory<FedMedianParams> = {
  name: "fedmedian",
  create(_params, study): Strategy {
    return {
      name: "fedmedian",
      initialize: () => ({ tensors: [], scalars: {} }),
      configureTrain: (ctx, sites) => forEverySite(sites, defaultTrainInstructions(study, ctx)),
      configureEvaluate: (ctx, sites) => forEverySite(sites, { round: ctx.rounds }),
      begin: (schema) => new CollectedResults(schema, median),
      restore: (schema, snapshot) => CollectedResults.restore(schema, median, snapshot),
      aggregate: (round, _current, state) => ({ model: round.result(), state }),
    };
  },
};
