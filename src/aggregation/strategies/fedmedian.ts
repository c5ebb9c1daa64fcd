/**
 * FedMedian (Yin et al. 2018, "Byzantine-Robust Distributed Learning: Towards Optimal Statistical
 * Rates"; Flower's `FedMedian`): Θ_{r+1} is the coordinate-wise median of the round's client
 * models — one site sending anything at all moves no coordinate beyond the honest sites' range.
 * Unweighted (sample counts do not vote). Keeps every result of the round: memory O(n · |Θ|).
 */
import { z } from "zod";
import { CollectedResults, type Combine, coordinateWise, medianInPlace } from "../collected.js";
import {
  evaluateInstructions,
  forEverySite,
  modelSitePolicyFields,
  trainInstructions,
} from "../instructions.js";
import type { Strategy, StrategyFactory } from "../strategy.js";

export const fedMedianSchema = z.strictObject({ name: z.literal("fedmedian"), ...modelSitePolicyFields });
export type FedMedianParams = z.output<typeof fedMedianSchema>;

const median: Combine = (results) => coordinateWise(results, (values) => medianInPlace(values));

export const fedMedian: StrategyFactory<FedMedianParams> = {
  name: "fedmedian",
  create(params, study): Strategy {
    return {
      name: "fedmedian",
      initialize: () => ({ tensors: [], scalars: {} }),
      configureTrain: (ctx, sites) => forEverySite(sites, trainInstructions(study, ctx, sites, params)),
      configureEvaluate: (ctx, sites) => forEverySite(sites, evaluateInstructions(study, ctx, params)),
      begin: (schema) => new CollectedResults(schema, median),
      restore: (schema, snapshot) => CollectedResults.restore(schema, median, snapshot),
      aggregate: (round, _current, state) => ({ model: round.result(), state }),
    };
  },
};
