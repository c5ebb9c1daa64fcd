/** Aggregation: strategies, the streaming weighted mean, update validation. */
import type { Method } from "../model/api.js";
import { FedAvgShared } from "./fedavg-shared.js";
import { LocalOnly } from "./local-only.js";
import type { Strategy, Weighting } from "./strategy.js";

export { FedAvgShared } from "./fedavg-shared.js";
export { LocalOnly } from "./local-only.js";
export type { ClientUpdate, RoundAggregator, Strategy, TensorSchema, Weighting } from "./strategy.js";
export { schemaOf, type ValidationOptions, type Verdict, validateUpdate } from "./validate.js";
export { WeightedMean } from "./weighted-mean.js";

/** The strategy of a method: individual never federates; every other method averages Θ. */
export function strategyFor(method: Method, weighting: Weighting): Strategy {
  return method === "individual" ? new LocalOnly() : new FedAvgShared(weighting);
}
