/**
 * Norm bounds relative to the round's median update: with `relativeNormBound: c` in the study
 * config, a result whose distance from the global model, ‖Θ_r^k − Θ_r‖, exceeds c times the median
 * of the round's distances is left out of the aggregate (FJ_AGG_NORM_OUTLIER, recorded with the
 * round), and the study's strategy combines the others. A site that replaces the global model (all
 * zeros, a model of its own) moves ‖Θ_r‖ away while honest local training moves a few learning
 * rates: it is left out however many samples it declares. The bound needs the whole round, so the
 * round's results are kept (memory O(n · |Θ|)); without the option the strategy runs unchanged.
 * Meaningful from three results on (with two, the median is their mean).
 */
import { fjError } from "../errors.js";
import type { NamedTensor } from "../model/api.js";
import { CollectedResults, distance, medianInPlace } from "./collected.js";
import type { Exclusion, RoundAggregator, SiteResult, Strategy, TensorSchema } from "./strategy.js";

/** Splits results by the bound: distances from `current`, the median, kept and left out. */
export function normOutliers(
  results: readonly SiteResult[],
  current: readonly NamedTensor[],
  factor: number,
): { kept: SiteResult[]; excluded: Exclusion[]; median: number } {
  const byName = new Map(current.map((t) => [t.name, t]));
  const dist = results.map((r) =>
    distance(
      r.tensors,
      r.tensors.map((t) => byName.get(t.name) ?? t),
    ),
  );
  const median = medianInPlace(Float64Array.from(dist));
  const bound = factor * median;
  const kept: SiteResult[] = [];
  const excluded: Exclusion[] = [];
  results.forEach((r, i) => {
    if (dist[i] <= bound) kept.push(r);
    else
      excluded.push({
        site: r.site,
        code: "FJ_AGG_NORM_OUTLIER",
        reason: `‖Θ − Θ_r‖ = ${dist[i].toPrecision(4)} exceeds ${factor} × the round's median ${median.toPrecision(4)}`,
      });
  });
  return { kept, excluded, median };
}

/** `inner` with the relative norm bound `factor` (inner itself when the bound is off). */
export function withNormBound(inner: Strategy, factor: number | undefined): Strategy {
  if (factor === undefined) return inner;
  // Without the bound, the round's combination is the inner strategy's over every result.
  const combineAll = (schema: TensorSchema) => (results: readonly SiteResult[]) => {
    const all = inner.begin(schema);
    for (const r of results) all.add(r);
    return all.result();
  };
  return {
    ...inner,
    name: `${inner.name}+normbound(${factor})`,
    begin: (schema) => new CollectedResults(schema, combineAll(schema)),
    restore: (schema, snapshot) => CollectedResults.restore(schema, combineAll(schema), snapshot),
    aggregate(round: RoundAggregator, current, state, ctx) {
      if (!(round instanceof CollectedResults)) {
        throw fjError("FJ_COORD_INVARIANT", "a norm-bounded round without its collected results");
      }
      const collected = round;
      const { kept, excluded } = normOutliers(collected.results(), current, factor);
      const bounded = inner.begin(collected.schema);
      for (const r of kept) bounded.add(r);
      const out = inner.aggregate(bounded, current, state, ctx);
      return { ...out, excluded: [...excluded, ...(out.excluded ?? [])] };
    },
  };
}
