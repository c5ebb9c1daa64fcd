/**
 * FedAvg over the shared parameters Θ only (FedBN + FedPer): DSBN statistics/affines and output
 * heads never reach the coordinator, so the mean of what arrives is the mean of Θ. Weighting by
 * sample count (FedAvg) or uniform (the paper's per-domain average).
 */
import { InputError } from "../errors.js";
import type { RoundAggregator, Strategy, TensorSchema, Weighting } from "./strategy.js";
import { WeightedMean } from "./weighted-mean.js";

export class FedAvgShared implements Strategy {
  readonly name: string;
  readonly transmitsModel = true;
  readonly weighting: Weighting;

  constructor(weighting: Weighting = "samples") {
    if (weighting !== "samples" && weighting !== "uniform") {
      throw new InputError(
        "FJ_AGG_WEIGHTING",
        `weighting '${String(weighting)}', expected samples or uniform`,
      );
    }
    this.weighting = weighting;
    this.name = `fedavg-shared(${weighting})`;
  }

  weight(update: { samples: number }): number {
    return this.weighting === "uniform" ? 1 : update.samples;
  }

  begin(schema: TensorSchema): RoundAggregator {
    return new WeightedMean(schema, (u) => this.weight(u));
  }

  restore(schema: TensorSchema, snapshot: Buffer): RoundAggregator {
    return WeightedMean.restore(schema, (u) => this.weight(u), snapshot);
  }
}
