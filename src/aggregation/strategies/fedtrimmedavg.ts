/**
 * FedTrimmedAvg (Yin et al. 2018; Flower's `FedTrimmedAvg`): per coordinate, the ⌊β·n⌋ largest and
 * ⌊β·n⌋ smallest client values are cut and the rest averaged (unweighted, as scipy's trim_mean),
 * so up to ⌊β·n⌋ bad sites cannot pull a coordinate outside the honest values. β = 0.2 by default
 * (Flower's); β < 0.5. Keeps every result of the round: memory O(n · |Θ|).
 */
import { z } from "zod";
import { CollectedResults, type Combine, coordinateWise } from "../collected.js";
import { defaultTrainInstructions, forEverySite } from "../instructions.js";
import type { Strategy, StrategyFactory } from "../strategy.js";

export const fedTrimmedAvgSchema = z.strictObject({
  name: z.literal("fedtrimmedavg"),
  /** Fraction cut from each end, per coordinate. */
  beta: z.number().min(0).lt(0.5).default(0.2),
});
export type FedTrimmedAvgParams = z.output<typeof fedTrimmedAvgSchema>;

/** Mean of the values left after cutting ⌊β·n⌋ from each end (sorts `values` in place). */
export function trimmedMean(values: Float64Array, beta: number): number {
  values.sort();
  const cut = Math.floor(beta * values.length);
  let sum = 0;
  for (let i = cut; i < values.length - cut; i++) sum += values[i];
  return sum / (values.length - 2 * cut);
}

export const fedTrimmedAvg: StrategyFactory<FedTrimmedAvgParams> = {
  name: "fedtrimmedavg",
  create(params, study): Strategy {
    const combine: Combine = (results) =>
      coordinateWise(results, (values) => trimmedMean(values, params.beta));
    return {
      name: `fedtrimmedavg(β=${params.beta})`,
      initialize: () => ({ tensors: [], scalars: {} }),
      configureTrain: (ctx, sites) => forEverySite(sites, defaultTrainInstructions(study, ctx)),
      configureEvaluate: (ctx, sites) => forEverySite(sites, { round: ctx.rounds }),
      begin: (schema) => new CollectedResults(schema, combine),
      restore: (schema, snapshot) => CollectedResults.restore(schema, combine, snapshot),
      aggregate: (round, _current, state) => ({ model: round.result(), state }),
    };
  },
};
