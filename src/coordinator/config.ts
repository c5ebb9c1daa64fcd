/**
 * Study config (JSON or YAML), validated with zod; errors name the file and the field.
 *
 * ```yaml
 * study: demo                  # id: letters, digits, _ or -
 * method: dsl+msc+mjap         # individual | shared | dsl | dsl+ssc | dsl+msc | dsl+mjap | dsl+msc+mjap
 * sites:                       # site name = client certificate CN; one joint each
 *   - { name: ankle, joint: ankle }
 *   - { name: knee, joint: knee }
 * rounds: 4                    # SEG rounds per fold
 * aeRounds: 2                  # AE rounds per fold (+mjap methods; default = rounds)
 * localSteps: 5                # Adam steps per site per SEG round
 * aeLocalSteps: 5              # … per AE round (default = localSteps)
 * minSites: 2                  # a round may close after roundTimeoutS with this many updates
 * roundTimeoutS: 600
 * weighting: samples           # samples | uniform
 * compression: none            # none | float16 (wire dtype of Θ)
 * maxUpdateNorm: 1.0e6         # L2 bound on an update's Θ
 * folds: 1                     # leave-one-out folds to run (≤ min exams per site)
 * seed: 0                      # Θ_0 (same at every site) and the fold plan
 * model: { base: 8, depth: 3, size: 32, segBatch: 6, aeBatch: 6, segLr: 5.0e-4, aeLr: 1.0e-4, augment: true }
 * embeddings: { enabled: true, count: 16, mix: 1, noise: 0 }
 * ```
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { InputError } from "../errors.js";
import { JOINTS } from "../joints.js";
import { METHODS } from "../model/api.js";
import { SITE_NAME_PATTERN } from "../protocol/certs.js";

export const studyConfigSchema = z
  .strictObject({
    study: z.string().regex(/^[A-Za-z0-9_-]+$/, "expected letters, digits, _ or -"),
    method: z.enum(METHODS),
    sites: z
      .array(
        z.strictObject({
          name: z.string().regex(SITE_NAME_PATTERN, "expected letters, digits, _ or - (the certificate CN)"),
          joint: z.enum(JOINTS as unknown as ["ankle", "knee", "shoulder"]),
        }),
      )
      .min(1, "expected at least one site"),
    rounds: z.number().int().min(1),
    aeRounds: z.number().int().min(1).optional(),
    localSteps: z.number().int().min(1),
    aeLocalSteps: z.number().int().min(1).optional(),
    minSites: z.number().int().min(1),
    roundTimeoutS: z.number().positive().default(600),
    weighting: z.enum(["samples", "uniform"]).default("samples"),
    compression: z.enum(["none", "float16"]).default("none"),
    maxUpdateNorm: z.number().positive().default(1e6),
    folds: z.number().int().min(1).default(1),
    seed: z.number().int().min(0).default(0),
    model: z
      .strictObject({
        base: z.number().int().min(1).default(32),
        depth: z.number().int().min(2).max(7).default(5),
        size: z.number().int().min(8).default(256),
        segBatch: z.number().int().min(1).default(18),
        aeBatch: z.number().int().min(1).default(24),
        segLr: z.number().positive().default(5e-4),
        aeLr: z.number().positive().default(1e-4),
        augment: z.boolean().default(true),
      })
      .prefault({}),
    embeddings: z
      .strictObject({
        enabled: z.boolean().default(true),
        count: z.number().int().min(1).default(32),
        mix: z.number().int().min(1).default(1),
        noise: z.number().min(0).default(0),
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
    if (c.minSites > c.sites.length) {
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
  });

export type StudyConfig = z.output<typeof studyConfigSchema>;
export type StudyConfigInput = z.input<typeof studyConfigSchema>;

/** Validates a parsed config object; `source` names the file in the one-line error. */
export function parseStudyConfig(value: unknown, source = "study config"): StudyConfig {
  const r = studyConfigSchema.safeParse(value);
  if (!r.success) {
    const iss = r.error.issues[0];
    const field = iss.path.length > 0 ? iss.path.join(".") : "(root)";
    const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more)` : "";
    throw new InputError("FJ_STUDY_CONFIG", `${source}: ${field}: ${iss.message}${more}`);
  }
  return r.data;
}

/** Reads a .json, .yaml or .yml study config. */
export async function loadStudyConfig(file: string): Promise<StudyConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new InputError(
      "FJ_STUDY_CONFIG",
      `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"}), expected a JSON or YAML study config`,
    );
  }
  let value: unknown;
  try {
    value = path.extname(file).toLowerCase() === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new InputError(
      "FJ_STUDY_CONFIG",
      `${file}: not valid ${path.extname(file) === ".json" ? "JSON" : "YAML"}: ${(err as Error).message.split("\n")[0]}`,
    );
  }
  return parseStudyConfig(value, file);
}

/** Rounds of a phase. */
export function roundsOf(config: StudyConfig, phase: "ae" | "seg"): number {
  return phase === "ae" ? (config.aeRounds ?? config.rounds) : config.rounds;
}

export function stepsOf(config: StudyConfig, phase: "ae" | "seg"): number {
  return phase === "ae" ? (config.aeLocalSteps ?? config.localSteps) : config.localSteps;
}

/** Fingerprint of a config (resume refuses a different study in the same state directory). */
export function configHash(config: StudyConfig): string {
  return createHash("sha256").update(JSON.stringify(config)).digest("hex");
}
