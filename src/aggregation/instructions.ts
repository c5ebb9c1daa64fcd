/**
 * What every strategy tells its sites, and the study-config fields that set it. Each strategy's
 * config schema spreads `sitePolicyFields` (one flat `strategy:` block in the study config):
 *
 * ```yaml
 * strategy:
 *   name: fedadam                 # fedavg | fedavgm | fedadam | fedyogi | fedprox
 *   weighting: uniform            # samples | uniform: the weights of the round's mean
 *   update: auto                  # model (Θ after the local steps) | gradient (FedSGD: one step's ∂L_k/∂Θ)
 *                                 #   | auto (FedAdam/FedYogi default: gradient with one local step, else model)
 *   localOptimizer: keep          # keep | reset | reset-first-moment: the site's Adam state each round
 *   personalise: { steps: 0 }     # Γ_k-only steps on the new Θ before validation and evaluation
 *   validateEvery: 1              # a site validates Θ_r every k rounds (and in the last)
 *   …                             # the strategy's own parameters (server lr, momentum, β, ε, μ)
 * ```
 *
 * Instructions start from the study config's local steps and learning rate of the phase,
 * embeddings when the phase's loss has a contrastive term (MethodSpec) and the study exchanges
 * them; a strategy changes what its algorithm changes (FedProx: μ) and nothing else.
 */
import { z } from "zod";
import type { StudyConfig } from "../study/config.js";
import { exchangesEmbeddings, type Phase } from "../study/methods.js";
import {
  type EvaluateInstructions,
  LOCAL_OPTIMIZER_POLICIES,
  type Personalisation,
  type RoundContext,
  type TrainInstructions,
  UPDATE_KINDS,
  type UpdateKind,
} from "./strategy.js";
import { weightingSchema } from "./weighted-mean.js";

/** What a strategy's sites send: a kind, or `auto` = gradients when a round is one local step. */
export const UPDATE_CHOICES = [...UPDATE_KINDS, "auto"] as const;
export type UpdateChoice = (typeof UPDATE_CHOICES)[number];

/** Config fields every strategy has: how results weigh, what sites send and do around training. */
export const sitePolicyFields = {
  weighting: weightingSchema,
  update: z.enum(UPDATE_CHOICES).default("model"),
  localOptimizer: z.enum(LOCAL_OPTIMIZER_POLICIES).default("keep"),
  personalise: z
    .strictObject({
      steps: z.number().int().min(0).max(100_000).default(0),
      /** Adam rate of the Γ_k steps (default: the phase's training rate). */
      lr: z.number().positive().max(10).optional(),
    })
    .prefault({}),
  validateEvery: z.number().int().min(1).max(100_000).default(1),
};
/** The site-policy fields of a strategy whose updates default to `auto` (the server optimisers). */
export const adaptiveSitePolicyFields = {
  ...sitePolicyFields,
  /** Uniform: the server optimises the paper's per-domain objective (1/K)·Σ_k L_k. */
  weighting: z.enum(["samples", "uniform"]).default("uniform"),
  update: z.enum(UPDATE_CHOICES).default("auto"),
};
/**
 * The site-policy fields of a strategy that combines models coordinate-wise or picks one (the
 * robust ones): their result is Θ_{r+1} itself, so sites always send models.
 */
export const modelSitePolicyFields = {
  ...sitePolicyFields,
  update: z.enum(["model"]).default("model"),
};
const sitePolicySchema = z.strictObject(sitePolicyFields);
export type SitePolicy = z.output<typeof sitePolicySchema>;

/** The plain policy: models, site Adam kept, no personalisation, validation every round. */
export const PLAIN_SITE_POLICY: SitePolicy = sitePolicySchema.parse({});

function personalisation(study: StudyConfig, policy: SitePolicy, phase: Phase): Personalisation {
  return { steps: policy.personalise.steps, lr: policy.personalise.lr ?? study.training[phase].lr };
}

/** Whether a site validates in round `ctx.round`: every `validateEvery` rounds and in the last. */
export function validatesIn(ctx: RoundContext, validateEvery: number): boolean {
  return ctx.phase === "seg" && (ctx.round % validateEvery === 0 || ctx.round === ctx.rounds - 1);
}

/**
 * Local steps per round of a phase: `stepsOf` of ../study/config.ts, restated because config.ts
 * imports the strategies' schemas (a runtime import back would be a cycle).
 */
export function localSteps(study: StudyConfig, phase: Phase): number {
  return phase === "ae" ? (study.aeLocalSteps ?? study.localSteps) : study.localSteps;
}

/**
 * The update kind of a phase's rounds: `auto` sends one step's gradient (FedSGD) when the phase
 * runs one local step per round, the model otherwise.
 */
export function updateKind(study: StudyConfig, phase: Phase, update: UpdateChoice): UpdateKind {
  if (update !== "auto") return update;
  return localSteps(study, phase) === 1 ? "gradient" : "model";
}

/** A round's instructions under a site policy (`proximalMu`: FedProx's term, else 0). */
export function trainInstructions(
  study: StudyConfig,
  ctx: RoundContext,
  sites: readonly string[],
  policy: SitePolicy,
  proximalMu = 0,
): TrainInstructions {
  return {
    steps: localSteps(study, ctx.phase),
    lr: study.training[ctx.phase].lr,
    embed: study.embeddings.enabled && exchangesEmbeddings(study.method, ctx.phase),
    update: updateKind(study, ctx.phase, policy.update),
    lossWeight: 1 / Math.max(sites.length, 1),
    proximalMu,
    optimizer: policy.localOptimizer,
    personalise: ctx.phase === "seg" ? personalisation(study, policy, "seg") : { steps: 0, lr: 0 },
    validate: validatesIn(ctx, policy.validateEvery),
  };
}

/** Evaluation of a fold's final SEG model under a site policy. */
export function evaluateInstructions(
  study: StudyConfig,
  ctx: { rounds: number },
  policy: SitePolicy,
): EvaluateInstructions {
  return { round: ctx.rounds, personalise: personalisation(study, policy, "seg") };
}

/** The same instructions for every site. */
export function forEverySite<T>(sites: readonly string[], value: T): Record<string, T> {
  return Object.fromEntries(sites.map((s) => [s, value]));
}
