/**
 * Krum and multi-Krum (Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine
 * Tolerant Gradient Descent"; Flower's `Krum`): each client model is scored by the sum of squared
 * distances to its n − f − 2 nearest others (f = `byzantine`, the bad sites tolerated); Krum takes
 * the best-scored model as Θ_{r+1}, multi-Krum (`keep` = m > 0) the sample-weighted mean of the m
 * best. A model far from the others — one site's replacement of the global model — scores worst
 * and is never chosen. Keeps every result of the round: memory O(n · |Θ|).
 */
import { z } from "zod";
import { CollectedResults, type Combine, distance, weightedMeanOf } from "../collected.js";
import { defaultTrainInstructions, forEverySite } from "../instructions.js";
import type { SiteResult, Strategy, StrategyFactory } from "../strategy.js";

export const krumSchema = z.strictObject({
  name: z.literal("krum"),
  /** f: bad sites tolerated (each score sums n − f − 2 distances, at least one). */
  byzantine: z.number().int().min(0).max(255).default(1),
  /** m: models averaged (0 = plain Krum, the single best). */
  keep: z.number().int().min(0).max(256).default(0),
});
export type KrumParams = z.output<typeof krumSchema>;

/** Indices of the results ordered by Krum score (best first). */
export function krumOrder(results: readonly SiteResult[], byzantine: number): number[] {
  const n = results.length;
  const d2 = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const d = distance(results[i].tensors, results[j].tensors) ** 2;
      d2[i][j] = d;
      d2[j][i] = d;
    }
  }
  const closest = Math.max(1, n - byzantine - 2);
  const scores = d2.map((row, i) => {
    const others = Array.from(row)
      .filter((_, j) => j !== i)
      .sort((a, b) => a - b);
    return others.slice(0, closest).reduce((s, v) => s + v, 0);
  });
  return scores
    .map((s, i) => [s, i] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .map(([, i]) => i);
}

export const krum: StrategyFactory<KrumParams> = {
  name: "krum",
  create(params, study): Strategy {
    const combine: Combine = (results) => {
      const order = krumOrder(results, params.byzantine);
      const chosen = order
        .slice(0, Math.max(1, Math.min(params.keep, results.length)))
        .map((i) => results[i]);
      return weightedMeanOf(chosen, (r) => r.samples);
    };
    return {
      name:
        params.keep > 0
          ? `multi-krum(f=${params.byzantine},m=${params.keep})`
          : `krum(f=${params.byzantine})`,
      initialize: () => ({ tensors: [], scalars: {} }),
      configureTrain: (ctx, sites) => forEverySite(sites, defaultTrainInstructions(study, ctx)),
      configureEvaluate: (ctx, sites) => forEverySite(sites, { round: ctx.rounds }),
      begin: (schema) => new CollectedResults(schema, combine),
      restore: (schema, snapshot) => CollectedResults.restore(schema, combine, snapshot),
      aggregate: (round, _current, state) => ({ model: round.result(), state }),
    };
  },
};
