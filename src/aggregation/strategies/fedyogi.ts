/**
 * FedYogi (Reddi et al. 2021, "Adaptive Federated Optimization", arXiv 2003.00295, Algorithm 2;
 * Yogi: Zaheer et al. 2018): as FedAdam, but the second moment moves additively,
 * v ← v − (1−β2)·g²·sign(v − g²), so that it grows no faster than g² and a few large
 * pseudo-gradients do not shrink every later step.
 */
import { z } from "zod";
import { adaptiveSitePolicyFields } from "../instructions.js";
import type { StrategyFactory } from "../strategy.js";
import { adaptiveFields, adaptiveStrategy } from "./adaptive.js";

export const fedYogiSchema = z.strictObject({
  name: z.literal("fedyogi"),
  ...adaptiveSitePolicyFields,
  ...adaptiveFields,
});
export type FedYogiParams = z.output<typeof fedYogiSchema>;

export const fedYogi: StrategyFactory<FedYogiParams> = {
  name: "fedyogi",
  create: (params, study) => adaptiveStrategy("fedyogi", "yogi", params, study),
};
