/**
 * Instructions every strategy starts from: the study config's local steps and learning rate of
 * the phase, embeddings when the phase's loss has a contrastive term (MethodSpec) and the study
 * exchanges them. Strategies change what their algorithm changes and nothing else.
 */
import { type StudyConfig, stepsOf } from "../study/config.js";
import { exchangesEmbeddings } from "../study/methods.js";
import type { RoundContext, TrainInstructions } from "./strategy.js";

export function defaultTrainInstructions(study: StudyConfig, ctx: RoundContext): TrainInstructions {
  return {
    steps: stepsOf(study, ctx.phase),
    lr: study.training[ctx.phase].lr,
    embed: study.embeddings.enabled && exchangesEmbeddings(study.method, ctx.phase),
  };
}

/** The same instructions for every site. */
export function forEverySite<T>(sites: readonly string[], value: T): Record<string, T> {
  return Object.fromEntries(sites.map((s) => [s, value]));
}
