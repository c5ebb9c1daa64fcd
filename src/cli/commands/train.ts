import { mkdir } from "node:fs/promises";
import path from "node:path";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import { writeFileAtomic } from "../../atomic-write.js";
import { loadDataset } from "../../data/dataset.js";
import type { SliceSet } from "../../data/slices.js";
import { fjError } from "../../errors.js";
import { JOINTS, type Joint } from "../../joints.js";
import { createLogger, type Logger } from "../../log.js";
import type { LossComponents } from "../../model/api.js";
import { type BackendChoice, initEngine, parseBackendChoice } from "../../model/engine/backend.js";
import { tf } from "../../model/engine/tf.js";
import type { LabelSpec } from "../../model/labels.js";
import {
  geometryOfExams,
  studyModelCard,
  type TrainingGeometry,
  writeModelDir,
} from "../../model/model-dir.js";
import {
  type JointData,
  SegmentationTrainer,
  type TrainerConfig,
  trainerConfig,
  type ValidationResult,
} from "../../model/trainer.js";
import {
  parseStudyConfig,
  perDomainBatch,
  readStudyConfigFile,
  roundsOf,
  type SiteSpec,
  type StudyConfig,
  stepsOf,
  studyJoints,
  withOverrides,
} from "../../study/config.js";
import { METHODS, methodSpec, type Phase } from "../../study/methods.js";
import { studyLabels } from "../../study/model.js";
import {
  type FoldSplit,
  foldData,
  foldSplit,
  loadSiteSlices,
  type SiteData,
  samplerFactory,
  validateSiteData,
} from "../../study/site-data.js";
import { intOption, numberOption, printJson } from "../run.js";
import { parseJoints } from "./model.js";

/* ------------------------------------------------------------------------------------------------
 * Centralised training: the pooled reference for federated runs of the same study config
 * --------------------------------------------------------------------------------------------- */

/** A site of the study with its loaded data (validated, every exam sliced at model.size). */
export interface TrainSite {
  spec: SiteSpec;
  data: SiteData;
}

export interface TrainOptions {
  /** The experiment: the same file the coordinator reads. */
  study: StudyConfig;
  /** One per site of the study (same joints; one site per joint when pooled). */
  sites: TrainSite[];
  /** Leave-one-out fold: test π_k(fold), validation π_k(fold+1), training the rest. */
  fold: number;
  out: string;
  backend?: BackendChoice;
  /** Progress bar on stderr (default: when stderr is a TTY). */
  progress?: boolean;
  log?: Logger;
}

export interface EpochRecord {
  model: string;
  phase: Phase;
  epoch: number;
  steps: number;
  seconds: number;
  loss: LossComponents;
  dice?: Partial<Record<Joint, ValidationResult>>;
  numTensors: number;
}

export interface TrainSummary {
  method: StudyConfig["method"];
  joints: Joint[];
  fold: number;
  /** The study config the run used (fully resolved). */
  study: StudyConfig;
  config: Omit<TrainerConfig, "labels" | "joints" | "method">;
  splits: Partial<Record<Joint, FoldSplit>>;
  epochs: EpochRecord[];
  /** Final validation Dice per joint: mean and per structure. */
  dice: Partial<Record<Joint, { mean: number; perLabel: Record<string, number> }>>;
  /** Checkpoint directory per model after the last epoch ("all" scope; one per joint when not pooled). */
  checkpoints: Record<string, string>;
  /**
   * Per model, the segmentation epoch with the highest validation Dice (mean over its joints), its
   * Dice per joint and its checkpoint (`…-best`): model selection on the validation exam.
   */
  best: Record<string, { epoch: number; dice: Partial<Record<Joint, number>>; checkpoint: string }>;
  /**
   * Model directory per model after the last epoch (src/model/model-dir.ts, the layout a site
   * keeps as model/): RUN/model, or RUN/model-<joint> per joint when the method does not pool.
   */
  models: Record<string, string>;
  /** tf.memory().numTensors identical at the end of every epoch of a phase (after its first). */
  numTensorsStable: boolean;
  seconds: number;
  backend: string;
}

/** Validates and loads each site's data at the study's size, checking joints against the study. */
export async function loadTrainSites(study: StudyConfig, dirs: readonly string[]): Promise<TrainSite[]> {
  if (dirs.length !== study.sites.length) {
    throw fjError(
      "FJ_CLI_ARG",
      `--data names ${dirs.length} directories, the study has ${study.sites.length} sites (${study.sites.map((s) => s.name).join(", ")}): one directory per site, in the config's order`,
    );
  }
  const sites: TrainSite[] = [];
  for (const [i, spec] of study.sites.entries()) {
    const valid = await validateSiteData(dirs[i], spec.joint);
    sites.push({ spec, data: await loadSiteSlices(valid, study.model.size) });
  }
  return sites;
}

/**
 * Trains the study pooled, as the paper's centralised reference: each step draws the per-domain
 * share of the batch from every joint (perDomainBatch), the AE phase first for +mjap methods, for
 * rounds × localSteps steps per phase (the federation's per-site budget); validation Dice per
 * joint after every epoch (= round: localSteps steps); a checkpoint after every epoch. Methods
 * that do not pool (individual) train one model per joint. Writes RUN/summary.json,
 * RUN/epochs.jsonl, RUN/checkpoint[-<joint>]/ and the final network as RUN/model[-<joint>]/ (the
 * model-directory layout a site keeps, for `fedjoint segment`).
 */
export async function trainCentralised(o: TrainOptions): Promise<TrainSummary> {
  const log = o.log ?? createLogger({ name: "train" });
  const engine = await initEngine(o.backend ?? "auto", { log });
  const t0 = performance.now();
  const study = o.study;
  const spec = methodSpec(study.method);
  const byJoint = new Map<Joint, TrainSite>();
  for (const s of o.sites) {
    const other = byJoint.get(s.spec.joint);
    if (other) {
      throw fjError(
        "FJ_CLI_ARG",
        `sites ${other.spec.name} and ${s.spec.name} are both ${s.spec.joint}: centralised training pools one dataset per joint`,
      );
    }
    byJoint.set(s.spec.joint, s);
  }
  const joints = JOINTS.filter((j) => byJoint.has(j));
  const data: Partial<Record<Joint, JointData<SliceSet>>> = {};
  const splits: Partial<Record<Joint, FoldSplit>> = {};
  for (const j of joints) {
    const site = byJoint.get(j)!;
    const fd = foldData(site.data, site.spec.name, study.seed, o.fold);
    data[j] = fd;
    splits[j] = fd.split;
    log.info(
      {
        site: site.spec.name,
        joint: j,
        train: fd.train.count,
        val: fd.val.count,
        exams: fd.split.train.length,
      },
      "site data loaded",
    );
  }
  const ownLabels = Object.fromEntries(joints.map((j) => [j, byJoint.get(j)!.data.labels])) as Partial<
    Record<Joint, LabelSpec>
  >;
  const labels = spec.sharedNorm ? { ...studyLabels(study), ...ownLabels } : ownLabels;
  const modelList: { name: string; joints: Joint[] }[] = spec.pooled
    ? [{ name: "multi", joints }]
    : joints.map((j) => ({ name: j, joints: [j] }));
  await mkdir(o.out, { recursive: true });
  const epochsFile = path.join(o.out, "epochs.jsonl");
  const records: EpochRecord[] = [];
  const checkpoints: Record<string, string> = {};
  const best: TrainSummary["best"] = {};
  const finalDice: TrainSummary["dice"] = {};
  let stable = true;
  let config: TrainerConfig | undefined;
  const showProgress = o.progress ?? process.stderr.isTTY === true;

  const models: Record<string, string> = {};
  for (const m of modelList) {
    config = trainerConfig(study, m.joints, labels);
    const trainer = new SegmentationTrainer(config, data, {
      makeSampler: samplerFactory(study.training),
      log,
    });
    try {
      const ckpt = path.join(o.out, modelList.length === 1 ? "checkpoint" : `checkpoint-${m.name}`);
      for (const phase of trainer.phaseList) {
        const steps = stepsOf(study, phase);
        const epochs = roundsOf(study, phase);
        let tensorsAfterFirst: number | undefined;
        const bar = showProgress
          ? new cliProgress.SingleBar(
              {
                format: `${m.name} ${phase} |{bar}| {value}/{total} steps · epoch {epoch}/${epochs} · loss {loss}`,
                stream: process.stderr,
                hideCursor: true,
              },
              cliProgress.Presets.shades_classic,
            )
          : undefined;
        bar?.start(steps * epochs, 0, { epoch: 1, loss: "–" });
        // The study's rule, as at a site: the DSBN running statistics are re-estimated for the
        // current Θ before it trains, validates or serves as the frozen auto-encoder.
        trainer.recalibrateNorms(phase);
        for (let epoch = 0; epoch < epochs; epoch++) {
          const e0 = performance.now();
          const r = await trainer.trainSteps(phase, {
            steps,
            onStep: (i, loss) =>
              bar?.update(epoch * steps + i + 1, { epoch: epoch + 1, loss: loss.total.toFixed(4) }),
          });
          const record: EpochRecord = {
            model: m.name,
            phase,
            epoch,
            steps,
            seconds: (performance.now() - e0) / 1000,
            loss: r.loss,
            numTensors: 0,
          };
          trainer.recalibrateNorms(phase);
          if (phase === "seg") {
            record.dice = {};
            // One joint at a time: concurrent validations would hold every joint's activations at once.
            for (const j of m.joints) record.dice[j] = await trainer.validate(j);
          }
          record.numTensors = tf.memory().numTensors;
          if (epoch === 0) tensorsAfterFirst = record.numTensors;
          else if (record.numTensors !== tensorsAfterFirst) stable = false;
          await trainer.saveCheckpoint(ckpt, "all", { fold: o.fold, phase, epoch, study: study.study });
          checkpoints[m.name] = ckpt;
          if (record.dice) {
            const dice = Object.fromEntries(m.joints.map((j) => [j, record.dice![j]!.mean])) as Partial<
              Record<Joint, number>
            >;
            const mean = m.joints.reduce((a, j) => a + dice[j]!, 0) / m.joints.length;
            const prev = best[m.name];
            const prevMean = prev ? m.joints.reduce((a, j) => a + prev.dice[j]!, 0) / m.joints.length : -1;
            if (mean > prevMean) {
              await trainer.saveCheckpoint(`${ckpt}-best`, "all", { fold: o.fold, phase, epoch });
              best[m.name] = { epoch, dice, checkpoint: `${ckpt}-best` };
            }
          }
          records.push(record);
          await writeFileAtomic(epochsFile, `${records.map((x) => JSON.stringify(x)).join("\n")}\n`);
          log.info(
            {
              model: m.name,
              phase,
              epoch: epoch + 1,
              epochs,
              loss: r.loss,
              dice: record.dice
                ? Object.fromEntries(Object.entries(record.dice).map(([j, v]) => [j, round(v!.mean)]))
                : undefined,
              seconds: round(record.seconds, 1),
              numTensors: record.numTensors,
            },
            `${phase} epoch ${epoch + 1}/${epochs}`,
          );
        }
        bar?.stop();
      }
      for (const j of m.joints) {
        const v = await trainer.validate(j);
        finalDice[j] = { mean: v.mean, perLabel: v.dice };
      }
      models[m.name] = await writeTrainedModel(o, m, trainer, labels, byJoint, modelList.length);
    } finally {
      trainer.dispose();
    }
  }
  const { labels: _l, joints: _j, method: _m, ...cfg } = config!;
  const summary: TrainSummary = {
    method: study.method,
    joints,
    fold: o.fold,
    study,
    config: cfg,
    splits,
    epochs: records,
    dice: finalDice,
    checkpoints,
    best,
    models,
    numTensorsStable: stable,
    seconds: (performance.now() - t0) / 1000,
    backend: engine.backend,
  };
  await writeFileAtomic(path.join(o.out, "summary.json"), `${JSON.stringify(summary, null, 1)}\n`);
  log.info(
    { dice: Object.fromEntries(joints.map((j) => [j, round(finalDice[j]!.mean)])), out: o.out },
    "training done",
  );
  return summary;
}

/** The trained network of one model as a model directory (what `fedjoint segment --model` reads). */
async function writeTrainedModel(
  o: TrainOptions,
  m: { name: string; joints: Joint[] },
  trainer: SegmentationTrainer<SliceSet>,
  labels: Partial<Record<Joint, LabelSpec>>,
  byJoint: Map<Joint, TrainSite>,
  modelCount: number,
): Promise<string> {
  const geometry: Partial<Record<Joint, TrainingGeometry>> = {};
  let sliceAxis: 0 | 1 | 2 = 2;
  for (const j of m.joints) {
    const site = byJoint.get(j)!;
    sliceAxis = site.data.slices.axis;
    const split = foldSplit(site.data, site.spec.name, o.study.seed, o.fold);
    const files = new Map(site.data.dataset.cases.map((c) => [c.id, c.image]));
    geometry[j] = await geometryOfExams(
      split.train.map((id) => files.get(id)!),
      sliceAxis,
    );
  }
  const served = methodSpec(o.study.method).sharedNorm
    ? labels
    : Object.fromEntries(m.joints.map((j) => [j, labels[j]!]));
  const card = studyModelCard({
    study: o.study,
    kind: "centralised",
    fold: o.fold,
    joints: m.joints,
    labels: served,
    inferenceBatch: trainer.inferenceChunk,
    sliceAxis,
    geometry,
  });
  const dir = path.join(o.out, modelCount === 1 ? "model" : `model-${m.name}`);
  await writeModelDir(dir, card, [
    ...(await trainer.sharedTensors("seg")),
    ...(await trainer.domainTensors("seg")),
  ]);
  return dir;
}

function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/* ------------------------------------------------------------------------------------------------
 * CLI
 * --------------------------------------------------------------------------------------------- */

interface TrainFlags {
  data: string;
  config?: string;
  joints?: string;
  method?: string;
  epochs?: number;
  aeEpochs?: number;
  stepsPerEpoch?: number;
  aeStepsPerEpoch?: number;
  size?: number;
  base?: number;
  depth?: number;
  batch?: number;
  aeBatch?: number;
  lr?: number;
  aeLr?: number;
  lambdaMsc?: number;
  lambdaAeMsc?: number;
  lambdaSsc?: number;
  lambdaMjap?: number;
  tau?: number;
  scales?: string;
  seed?: number;
  fold: number;
  foregroundFraction?: number;
  augment: boolean;
  out: string;
  backend: string;
  progress?: boolean;
  json?: boolean;
}

function parseScales(value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const s = value.split(",").map((x) => Number(x.trim()));
  if (s.some((x) => !Number.isInteger(x) || x < 0)) {
    throw fjError("FJ_CLI_ARG", `--scales is '${value}', expected comma-separated scale indices (0-based)`);
  }
  return s;
}

/** Table 1's 6 segmentation and 8 auto-encoder epochs: the default budget without a study config. */
const DEFAULT_EPOCHS = { seg: 6, ae: 8 } as const;

/**
 * The study a `fedjoint train` command line describes: the --config file (or, without one, one
 * site per --data directory named after its joint), with every flag given overriding its field.
 */
async function studyFromFlags(f: TrainFlags, dirs: string[]): Promise<{ raw: unknown; onePass: boolean }> {
  if (f.method !== undefined && !(METHODS as readonly string[]).includes(f.method)) {
    throw fjError("FJ_CLI_ARG", `--method is '${f.method}', expected one of ${METHODS.join("|")}`);
  }
  let base: unknown;
  if (f.config) {
    if (f.joints) throw fjError("FJ_CLI_ARG", "--joints: the study config names each site's joint");
    base = await readStudyConfigFile(f.config);
  } else {
    const joints = f.joints ? parseJoints(f.joints) : undefined;
    if (joints && joints.length !== dirs.length) {
      throw fjError(
        "FJ_CLI_ARG",
        `--joints names ${joints.length} joints for ${dirs.length} --data directories`,
      );
    }
    const sites: { name: string; joint: Joint }[] = [];
    for (const [i, dir] of dirs.entries()) {
      const joint = joints?.[i] ?? (await loadDataset(dir)).joint;
      if (!joint) {
        throw fjError(
          "FJ_CLI_ARG",
          `${path.join(dir, "dataset.json")} has no "joint" field; name the joints with --joints (same order as --data)`,
        );
      }
      if (sites.some((s) => s.joint === joint))
        throw fjError("FJ_CLI_ARG", `--data: two datasets are ${joint} (${dirs.join(", ")})`);
      sites.push({ name: joint, joint });
    }
    base = {
      study: "train",
      method: "dsl+msc+mjap",
      sites,
      rounds: DEFAULT_EPOCHS.seg,
      aeRounds: DEFAULT_EPOCHS.ae,
      localSteps: 1,
    };
  }
  const raw = withOverrides(base, [
    [["method"], f.method],
    [["seed"], f.seed],
    [["rounds"], f.epochs],
    [["aeRounds"], f.aeEpochs],
    [["localSteps"], f.stepsPerEpoch],
    [["aeLocalSteps"], f.aeStepsPerEpoch ?? (f.config ? undefined : f.stepsPerEpoch)],
    [["model", "size"], f.size],
    [["model", "base"], f.base],
    [["model", "depth"], f.depth],
    [["training", "seg", "batch"], f.batch],
    [["training", "ae", "batch"], f.aeBatch],
    [["training", "seg", "lr"], f.lr],
    [["training", "ae", "lr"], f.aeLr],
    [["training", "lambdaMsc"], f.lambdaMsc],
    [["training", "lambdaAeMsc"], f.lambdaAeMsc],
    [["training", "lambdaSsc"], f.lambdaSsc],
    [["training", "lambdaMjap"], f.lambdaMjap],
    [["training", "tau"], f.tau],
    [["training", "scales"], parseScales(f.scales)],
    [["training", "foregroundFraction"], f.foregroundFraction],
    [["training", "augment", "enabled"], f.augment === false ? false : undefined],
  ]);
  return { raw, onePass: !f.config && f.stepsPerEpoch === undefined };
}

/** Steps of one pass over the pooled training slices of a fold (the default epoch without a config). */
function onePass(study: StudyConfig, sites: TrainSite[], fold: number, phase: Phase): number {
  const slices = sites.reduce((n, s) => n + foldData(s.data, s.spec.name, study.seed, fold).train.count, 0);
  return Math.max(1, Math.ceil(slices / (perDomainBatch(study, phase) * studyJoints(study).length)));
}

export function registerTrain(program: Command): void {
  program
    .command("train")
    .description(
      "centralised multi-domain training on pooled site datasets (the reference for federated runs of the same study config)",
    )
    .requiredOption(
      "--data <dirs>",
      "site datasets (nnU-Net layout), comma-separated; with --config one per site, in its order",
    )
    .option(
      "--config <file>",
      "study config (.json/.yaml): the same experiment the coordinator runs; flags override its fields",
    )
    .option(
      "--joints <list>",
      "joint of each --data directory (default: dataset.json 'joint'; not with --config)",
    )
    .option("--method <m>", `${METHODS.join("|")} (default dsl+msc+mjap)`)
    .option("--epochs <n>", "segmentation epochs = study rounds (Table 1: 6)", intOption("--epochs"))
    .option("--ae-epochs <n>", "auto-encoder epochs = study aeRounds (Table 1: 8)", intOption("--ae-epochs"))
    .option(
      "--steps-per-epoch <n>",
      "segmentation steps per epoch = study localSteps (default without --config: one pass over the pooled slices)",
      intOption("--steps-per-epoch"),
    )
    .option(
      "--ae-steps-per-epoch <n>",
      "auto-encoder steps per epoch = study aeLocalSteps",
      intOption("--ae-steps-per-epoch"),
    )
    .option("--size <n>", "slice side in pixels (paper 256)", intOption("--size", 8))
    .option("--base <n>", "filters of the first level (paper 32)", intOption("--base"))
    .option("--depth <n>", "levels including the bottleneck (paper 5)", intOption("--depth", 2))
    .option(
      "--batch <n>",
      "segmentation batch, split equally between joints (Table 1: 18)",
      intOption("--batch"),
    )
    .option("--ae-batch <n>", "auto-encoder batch (Table 1: 24)", intOption("--ae-batch"))
    .option("--lr <x>", "segmentation Adam learning rate (Table 1: 5e-4)", numberOption("--lr"))
    .option("--ae-lr <x>", "auto-encoder Adam learning rate (Table 1: 1e-4)", numberOption("--ae-lr"))
    .option("--lambda-msc <x>", "λ2, L_MSC weight (Att-UNet 0.5)", numberOption("--lambda-msc"))
    .option("--lambda-ae-msc <x>", "λ1, L_MSC weight in the AE (0.05)", numberOption("--lambda-ae-msc"))
    .option("--lambda-ssc <x>", "L_SSC weight (0.1)", numberOption("--lambda-ssc"))
    .option("--lambda-mjap <x>", "λ3, L_MJAP weight (0.1)", numberOption("--lambda-mjap"))
    .option("--tau <x>", "contrastive temperature τ (0.1)", numberOption("--tau"))
    .option("--scales <list>", "L_MSC scale indices, comma-separated (default all; dsl+ssc: bottleneck)")
    .option("--seed <n>", "weights, sampling and fold permutation seed (default 0)", intOption("--seed", 0))
    .option("--fold <n>", "leave-one-out fold: test π(i), validation π(i+1)", intOption("--fold", 0), 0)
    .option(
      "--foreground-fraction <x>",
      "share of each batch drawn from slices with bone (default 0.75)",
      numberOption("--foreground-fraction"),
    )
    .option("--no-augment", "disable on-the-fly augmentation")
    .option(
      "--backend <name>",
      "auto|tensorflow|native|wasm|webgpu|cpu",
      process.env.FEDJOINT_BACKEND ?? "auto",
    )
    .option("--no-progress", "no progress bar")
    .requiredOption(
      "--out <dir>",
      "run directory (checkpoints, epochs.jsonl, summary.json, model/ for fedjoint segment)",
    )
    .option("--json", "print the summary as one JSON line")
    .action(async (f: TrainFlags) => {
      const backend = parseBackendChoice(f.backend);
      const dirs = f.data
        .split(",")
        .map((d) => d.trim())
        .filter(Boolean);
      if (dirs.length === 0) throw fjError("FJ_CLI_ARG", "--data names no directory");
      const { raw, onePass: pass } = await studyFromFlags(f, dirs);
      let study = parseStudyConfig(raw, f.config ?? "fedjoint train flags");
      const sites = await loadTrainSites(study, dirs);
      if (pass) {
        const seg = onePass(study, sites, f.fold, "seg");
        const ae = onePass(study, sites, f.fold, "ae");
        study = parseStudyConfig({ ...study, localSteps: seg, aeLocalSteps: ae }, "fedjoint train flags");
      }
      const summary = await trainCentralised({
        study,
        sites,
        fold: f.fold,
        out: f.out,
        backend,
        progress: f.progress !== false && process.stderr.isTTY === true,
      });
      if (f.json) {
        printJson({
          method: summary.method,
          joints: summary.joints,
          fold: summary.fold,
          dice: summary.dice,
          loss: summary.epochs.at(-1)?.loss,
          checkpoints: summary.checkpoints,
          best: summary.best,
          models: summary.models,
          numTensorsStable: summary.numTensorsStable,
          seconds: Math.round(summary.seconds * 10) / 10,
          backend: summary.backend,
          out: f.out,
        });
      } else {
        for (const j of summary.joints) {
          const d = summary.dice[j]!;
          process.stdout.write(
            `${j}: mean Dice ${d.mean.toFixed(3)} (${Object.entries(d.perLabel)
              .map(([k, v]) => `${k} ${v.toFixed(3)}`)
              .join(", ")})\n`,
          );
        }
        for (const [name, b] of Object.entries(summary.best)) {
          const d = Object.entries(b.dice).map(([j, v]) => `${j} ${v!.toFixed(3)}`);
          process.stdout.write(`best epoch of ${name}: ${b.epoch + 1} (${d.join(", ")}) → ${b.checkpoint}\n`);
        }
        process.stdout.write(`checkpoints: ${Object.values(summary.checkpoints).join(", ")}\n`);
        process.stdout.write(
          `model (fedjoint segment --model): ${Object.values(summary.models).join(", ")}\n`,
        );
      }
    });
}
