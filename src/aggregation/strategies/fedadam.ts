/**
 * FedAdam (Reddi et al. 2021, "Adaptive Federated Optimization", arXiv 2003.00295, Algorithm 2):
 * Adam on the server over the pseudo-gradient g_r (Θ_r − mean_k Θ_r^k, or the mean gradient with
 * `update: gradient`): m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², Θ ← Θ − η·m̂/(√v̂ + ε). With
 * FedSGD gradients, one local step, uniform weights and the phase's learning rate it reproduces
 * pooled Adam training (test/integration/quality/exactness.test.ts).
 */
import { z } from "zod";
import { adaptiveSitePolicyFields } from "../instructions.js";
import type { StrategyFactory } from "../strategy.js";
import { adaptiveFields, adaptiveStrategy } from "./adaptive.js";

export const fedAdamSchema = z.strictObject({
  name: z.literal("fedadam"),
  ...adaptiveSitePolicyFields,
  ...adaptiveFields,
});
export type FedAdamParams = z.output<typeof fedAdamSchema>;

export const fedAdam: StrategyFactory<FedAdamParams> = {
  name: "fedadam",
  create: (params, study) => adaptiveStrategy("fedadam", "adam", params, study),
};
