/**
 * The strategies a study config can name (`strategy: { name: …, … }`), each one file here with its
 * config schema. Adding an algorithm: its file, and its entry in STRATEGIES and the union below.
 */
import { z } from "zod";
import type { StudyConfig } from "../../study/config.js";
import type { Strategy, StrategyFactory } from "../strategy.js";
import { fedAvg, fedAvgSchema } from "./fedavg.js";
import { fedMedian, fedMedianSchema } from "./fedmedian.js";
import { fedTrimmedAvg, fedTrimmedAvgSchema } from "./fedtrimmedavg.js";
import { krum, krumSchema } from "./krum.js";

export const strategyConfigSchema = z
  .discriminatedUnion("name", [fedAvgSchema, fedMedianSchema, fedTrimmedAvgSchema, krumSchema])
  .prefault({ name: "fedavg" });
export type StrategyConfig = z.output<typeof strategyConfigSchema>;

const STRATEGIES: { [K in StrategyConfig["name"]]: StrategyFactory<Extract<StrategyConfig, { name: K }>> } = {
  fedavg: fedAvg,
  fedmedian: fedMedian,
  fedtrimmedavg: fedTrimmedAvg,
  krum: krum,
};

/** The study's strategy, from its config (methods that federate nothing use LocalOnly instead). */
export function createStrategy(study: StudyConfig): Strategy {
  const params = study.strategy;
  const factory = STRATEGIES[params.name] as StrategyFactory<typeof params>;
  return factory.create(params, study);
}
