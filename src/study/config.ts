/**
 * The study config: one file (JSON or YAML), validated with zod, read by the coordinator, every
 * site-client (it receives it at Join), `fedjoint train --config` and `fedjoint simulate --config`,
 * so that the same file is the same experiment pooled or federated: same folds, same sampler,
 * same preprocessing, same hyper-parameters. Defaults are the paper's Table 1 and §3.3.
 *
 * ```yaml
 * study: peds-joints              # id: letters, digits, _ or -
 * method: dsl+msc+mjap            # individual | shared | dsl | dsl+ssc | dsl+msc | dsl+mjap | dsl+msc+mjap
 * sites:                          # site name = client certificate CN; one joint each
 *   - { name: ankle, joint: ankle }
 *   - { name: knee, joint: knee }
 * folds: 1                        # leave-one-out folds to run (≤ min exams per site)
 * seed: 0                         # Θ_0 (the same everywhere), fold plan, samplers
 * model: { arch: att-unet, base: 32, depth: 5, size: 256 }
 * training:                       # Table 1 / §3.3
 *   seg: { batch: 18, lr: 5.0e-4 } # batch of the pooled model, split equally between the joints:
 *   ae:  { batch: 24, lr: 1.0e-4 } #   a site trains batch / |joints| (18 / 3 = 6) per step
 *   lambdaAeMsc: 0.05             # λ1: L_MSC in the auto-encoder
 *   lambdaMsc: 0.5                # λ2: L_MSC in segmentation (Att-UNet)
 *   lambdaSsc: 0.1                # L_SSC weight (dsl+ssc)
 *   lambdaMjap: 0.1               # λ3: L_MJAP
 *   tau: 0.1                      # contrastive temperature
 *   scales: [0, 4, 8]             # optional: L_MSC scales (0-based; default all, L_SSC the bottleneck)
 *   augment: { enabled: true, rotationDeg: 22.5, shift: 0.1, flip: true }
 *   foregroundFraction: 0.75      # share of each batch drawn from slices with bone (null: uniform)
 * rounds: 20                      # SEG rounds per fold
 * aeRounds: 20                    # AE rounds per fold (+mjap; default = rounds)
 * localSteps: 50                  # local steps per SEG round (centralised: rounds × localSteps steps)
 * aeLocalSteps: 50                # … per AE round (default = localSteps)
 * minSites: 2                     # a round may close after roundTimeoutS with this many updates
 * roundTimeoutS: 1800
 * strategy: { name: fedavg, weighting: samples }   # src/aggregation/strategies
 * compression: none               # none | float16 (wire dtype of Θ)
 * maxUpdateNorm: 1.0e6            # L2 bound on an update's Θ
 * relativeNormBound: 3            # optional: leave out updates farther from Θ_r than 3 × the round's median
 * embeddings: { enabled: true, count: 32, mix: 1, noise: 0 }
 * ```
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { strategyConfigSchema } from "../aggregation/strategies/index.js";
import { fjError } from "../errors.js";
import { JOINTS, type Joint } from "../joints.js";
import { SITE_NAME_PATTERN } from "../protocol/certs.js";
import { METHODS, type Phase } from "./methods.js";

/** Paper Table 1 / §3.3 hyper-parameters (Att-UNet and the auto-encoder). */
export const TABLE1 = {
  base: 32,
  depth: 5,
  size: 256,
  segBatch: 18,
  segLr: 5e-4,
  aeBatch: 24,
  aeLr: 1e-4,
  lambdaAeMsc: 0.05,
  lambdaMsc: 0.5,
  lambdaSsc: 0.1,
  lambdaMjap: 0.1,
  tau: 0.1,
  rotationDeg: 22.5,
  shift: 0.1,
} as const;

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const phaseTraining = (batch: number, lr: number) =>
  z
    .strictObject({
      batch: int(1, 1024).default(batch),
      lr: z.number().positive().max(10).default(lr),
    })
    .prefault({});

export const augmentSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    rotationDeg: z.number().min(0).max(180).default(TABLE1.rotationDeg),
    shift: z.number().min(0).max(0.5).default(TABLE1.shift),
    flip: z.boolean().default(true),
  })
  .prefault({});
export type AugmentConfig = z.output<typeof augmentSchema>;

export const trainingSchema = z
  .strictObject({
    seg: phaseTraining(TABLE1.segBatch, TABLE1.segLr),
    ae: phaseTraining(TABLE1.aeBatch, TABLE1.aeLr),
    lambdaAeMsc: z.number().min(0).max(100).default(TABLE1.lambdaAeMsc),
    lambdaMsc: z.number().min(0).max(100).default(TABLE1.lambdaMsc),
    lambdaSsc: z.number().min(0).max(100).default(TABLE1.lambdaSsc),
    lambdaMjap: z.number().min(0).max(100).default(TABLE1.lambdaMjap),
    tau: z.number().positive().max(100).default(TABLE1.tau),
    scales: z.array(int(0, 12)).min(1).optional(),
    augment: augmentSchema,
    foregroundFraction: z.number().min(0).max(1).nullable().default(0.75),
  })
  .prefault({});
export type TrainingConfig = z.output<typeof trainingSchema>;

export const studyConfigSchema = z
  .strictObject({
    study: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "expected 1–64 letters, digits, _ or -"),
    method: z.enum(METHODS),
    sites: z
      .array(
        z.strictObject({
          name: z.string().regex(SITE_NAME_PATTERN, "expected letters, digits, _ or - (the certificate CN)"),
          joint: z.enum(JOINTS),
        }),
      )
      .min(1, "expected at least one site")
      .max(256, "expected at most 256 sites"),
    folds: int(1, 1000).default(1),
    seed: int(0, 2 ** 31 - 1).default(0),
    model: z
      .strictObject({
        arch: z.literal("att-unet").default("att-unet"),
        base: int(1, 256).default(TABLE1.base),
        depth: int(2, 7).default(TABLE1.depth),
        size: int(8, 1024).default(TABLE1.size),
      })
      .prefault({}),
    training: trainingSchema,
    rounds: int(1, 100_000),
    aeRounds: int(1, 100_000).optional(),
    localSteps: int(1, 100_000),
    aeLocalSteps: int(1, 100_000).optional(),
    minSites: int(1, 256).optional(),
    roundTimeoutS: z
      .number()
      .positive()
      .max(7 * 86_400)
      .default(600),
    // lazy: the strategies' modules import this one (their default instructions read the config)
    strategy: z.lazy(() => strategyConfigSchema),
    compression: z.enum(["none", "float16"]).default("none"),
    maxUpdateNorm: z.number().positive().default(1e6),
    relativeNormBound: z.number().min(1).max(1e6).optional(),
    embeddings: z
      .strictObject({
        enabled: z.boolean().default(true),
        count: int(1, 4096).default(32),
        mix: int(1, 64).default(1),
        noise: z.number().min(0).max(10).default(0),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.sites.forEach((s, i) => {
      if (names.has(s.name))
        ctx.addIssue({ code: "custom", path: ["sites", i, "name"], message: `site ${s.name} twice` });
      names.add(s.name);
    });
    if (c.minSites !== undefined && c.minSites > c.sites.length) {
      ctx.addIssue({
        code: "custom",
        path: ["minSites"],
        message: `${c.minSites} exceeds the ${c.sites.length} configured sites`,
      });
    }
    if (c.model.size % 2 ** (c.model.depth - 1) !== 0) {
      ctx.addIssue({
        code: "custom",
        path: ["model", "size"],
        message: `${c.model.size} must be divisible by 2^(depth−1) = ${2 ** (c.model.depth - 1)}`,
      });
    }
    // the bottleneck's filters bound |Θ| (≈ 18·F² in its two 3×3 convs): 2048 allows ≈ 140M
    // parameters (the paper's base 32 × 2^4 = 512 has 8.7M), and keeps every tensor set < 2 GiB
    const bottleneck = c.model.base * 2 ** (c.model.depth - 1);
    if (bottleneck > 2048) {
      ctx.addIssue({
        code: "custom",
        path: ["model", "base"],
        message: `base ${c.model.base} × 2^(depth−1) = ${bottleneck} bottleneck filters, expected at most 2048`,
      });
    }
    const scale = c.training.scales?.find((s) => s >= 2 * c.model.depth - 1);
    if (scale !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["training", "scales"],
        message: `scale ${scale} does not exist: depth ${c.model.depth} has scales 0..${2 * c.model.depth - 2}`,
      });
    }
  })
  .transform((c) => ({ ...c, minSites: c.minSites ?? c.sites.length }));

export type StudyConfig = z.output<typeof studyConfigSchema>;
export type StudyConfigInput = z.input<typeof studyConfigSchema>;
export type SiteSpec = StudyConfig["sites"][number];

/** Validates a parsed config object; `source` names the file in the one-line error. */
export function parseStudyConfig(value: unknown, source = "study config"): StudyConfig {
  const r = studyConfigSchema.safeParse(value);
  if (!r.success) {
    const iss = r.error.issues[0];
    const field = iss.path.length > 0 ? iss.path.join(".") : "(root)";
    const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more)` : "";
    throw fjError("FJ_STUDY_CONFIG", `${source}: ${field}: ${iss.message}${more}`);
  }
  return r.data;
}

/** Reads a .json, .yaml or .yml study config as plain data (not yet validated). */
export async function readStudyConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw fjError(
      "FJ_STUDY_CONFIG",
      `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"}), expected a JSON or YAML study config`,
    );
  }
  try {
    return path.extname(file).toLowerCase() === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw fjError(
      "FJ_STUDY_CONFIG",
      `${file}: not valid ${path.extname(file) === ".json" ? "JSON" : "YAML"}: ${(err as Error).message.split("\n")[0]}`,
    );
  }
}

/** Reads and validates a .json, .yaml or .yml study config. */
export async function loadStudyConfig(file: string): Promise<StudyConfig> {
  return parseStudyConfig(await readStudyConfigFile(file), file);
}

/**
 * Overrides fields of a (raw) config from command-line flags: `set(["training", "seg", "lr"], 3e-3)`
 * style paths, applied before validation so that the result is validated as a whole.
 */
export function withOverrides(raw: unknown, overrides: readonly [path: string[], value: unknown][]): unknown {
  const out = structuredClone((raw ?? {}) as Record<string, unknown>);
  for (const [keys, value] of overrides) {
    if (value === undefined) continue;
    let node = out;
    for (const k of keys.slice(0, -1)) {
      const next = node[k];
      node[k] = typeof next === "object" && next !== null && !Array.isArray(next) ? { ...next } : {};
      node = node[k] as Record<string, unknown>;
    }
    node[keys[keys.length - 1]] = value;
  }
  return out;
}

/** Rounds of a phase. */
export function roundsOf(config: StudyConfig, phase: Phase): number {
  return phase === "ae" ? (config.aeRounds ?? config.rounds) : config.rounds;
}

/** Local steps per round of a phase. */
export function stepsOf(config: StudyConfig, phase: Phase): number {
  return phase === "ae" ? (config.aeLocalSteps ?? config.localSteps) : config.localSteps;
}

/** The study's joints, each once, in canonical order (ankle, knee, shoulder). */
export function studyJoints(config: StudyConfig): Joint[] {
  const present = new Set(config.sites.map((s) => s.joint));
  return JOINTS.filter((j) => present.has(j));
}

/**
 * Slices per joint in one step of a phase: the paper's batch split equally between the study's
 * joints (18 / 3 = 6). A site trains this many of its own slices per step; centralised training
 * draws this many from each joint, so both see the same per-domain sample budget.
 */
export function perDomainBatch(config: StudyConfig, phase: Phase): number {
  return Math.max(1, Math.floor(config.training[phase].batch / studyJoints(config).length));
}

/** Fingerprint of a config (resume refuses a different study in the same state directory). */
export function configHash(config: StudyConfig): string {
  return createHash("sha256").update(JSON.stringify(config)).digest("hex");
}
