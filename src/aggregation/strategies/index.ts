/**
 * The strategies a study config can name (`strategy: { name: …, … }`), each one file here with its
 * config schema (every one also takes the site-policy fields of ../instructions.ts). Adding an
 * algorithm: its file, and its entry in STRATEGIES and the union below.
 */
import { z } from "zod";
import type { StudyConfig } from "../../study/config.js";
import type { Strategy, StrategyFactory } from "../strategy.js";
import { fedAdam, fedAdamSchema } from "./fedadam.js";
import { fedAvg, fedAvgSchema } from "./fedavg.js";
import { fedAvgM, fedAvgMSchema } from "./fedavgm.js";
import { fedMedian, fedMedianSchema } from "./fedmedian.js";
import { fedProx, fedProxSchema } from "./fedprox.js";
import { fedTrimmedAvg, fedTrimmedAvgSchema } from "./fedtrimmedavg.js";
import { fedYogi, fedYogiSchema } from "./fedyogi.js";
import { krum, krumSchema } from "./krum.js";

export const strategyConfigSchema = z
  .discriminatedUnion("name", [
    fedAvgSchema,
    fedAvgMSchema,
    fedAdamSchema,
    fedYogiSchema,
    fedProxSchema,
    fedMedianSchema,
    fedTrimmedAvgSchema,
    krumSchema,
  ])
  .prefault({ name: "fedadam" });
export type StrategyConfig = z.output<typeof strategyConfigSchema>;
export type StrategyConfigInput = z.input<typeof strategyConfigSchema>;
export type StrategyName = StrategyConfig["name"];

const STRATEGIES: { [K in StrategyName]: StrategyFactory<Extract<StrategyConfig, { name: K }>> } = {
  fedavg: fedAvg,
  fedavgm: fedAvgM,
  fedadam: fedAdam,
  fedyogi: fedYogi,
  fedprox: fedProx,
  fedmedian: fedMedian,
  fedtrimmedavg: fedTrimmedAvg,
  krum: krum,
};

export const STRATEGY_NAMES = Object.keys(STRATEGIES) as StrategyName[];

/** The study's strategy, from its config (methods that federate nothing use LocalOnly instead). */
export function createStrategy(study: StudyConfig): Strategy {
  const params = study.strategy;
  const factory = STRATEGIES[params.name] as StrategyFactory<typeof params>;
  return factory.create(params, study);
}
