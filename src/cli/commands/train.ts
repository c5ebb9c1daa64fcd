import { mkdir } from "node:fs/promises";
import path from "node:path";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import { writeFileAtomic } from "../../atomic-write.js";
import { loadDataset } from "../../data/dataset.js";
import { loadSlices, makeBatchSampler, type SliceSet, subsetSlices } from "../../data/slices.js";
import { InputError } from "../../errors.js";
import { siteFold, sitePermutation } from "../../eval/folds.js";
import { createLogger, type Logger } from "../../log.js";
import {
  JOINTS,
  type Joint,
  type LossComponents,
  METHODS,
  type Method,
  type Phase,
} from "../../model/api.js";
import { initEngine, parseBackendChoice } from "../../model/engine/backend.js";
import { tf } from "../../model/engine/tf.js";
import { type LabelSpec, labelSpecFromDatasetJson } from "../../model/labels.js";
import {
  type JointData,
  type SamplerFactory,
  SegmentationTrainer,
  TABLE1,
  type TrainerConfig,
  trainerConfig,
  type ValidationResult,
} from "../../model/trainer.js";
import { intOption, numberOption, printJson } from "../run.js";
import { parseJoints } from "./model.js";

/* ------------------------------------------------------------------------------------------------
 * Site data for a fold: shared by `fedjoint train` and the federated site-client.
 * --------------------------------------------------------------------------------------------- */

export interface FoldSplit {
  /** Exam ids (dataset case ids). */
  train: string[];
  validation: string;
  test: string;
  /** π_k: the seeded permutation of exam indices (reported, never transmitted). */
  permutation: number[];
}

export interface SiteData {
  joint: Joint;
  dir: string;
  labels: LabelSpec;
  data: JointData<SliceSet>;
  split: FoldSplit;
}

/**
 * Loads one site dataset (nnU-Net layout) for leave-one-out fold `fold`: π = sitePermutation(seed,
 * joint, n), test = π(fold), validation = π(fold+1 mod n), training = the rest (src/eval/folds.ts).
 * Slices are z-scored per volume and resized to size × size.
 */
export async function loadSiteData(
  dir: string,
  options: { size: number; fold: number; seed: number; joint?: Joint },
): Promise<SiteData> {
  const ds = await loadDataset(dir);
  const joint = options.joint ?? ds.joint;
  if (!joint) {
    throw new InputError(
      "FJ_CLI_ARG",
      `${path.join(dir, "dataset.json")} has no "joint" field; name the joints with --joints (same order as --data)`,
    );
  }
  const labels = labelSpecFromDatasetJson(ds.labels, path.join(dir, "dataset.json"));
  const n = ds.cases.length;
  if (n < 3)
    throw new InputError(
      "FJ_DATA_TOO_FEW",
      `${dir}: ${n} exams, at least 3 are needed (train/validation/test)`,
    );
  if (!Number.isInteger(options.fold) || options.fold < 0 || options.fold >= n) {
    throw new InputError("FJ_CLI_ARG", `--fold is ${options.fold}, ${dir} has ${n} exams (folds 0–${n - 1})`);
  }
  const permutation = sitePermutation(options.seed, joint, n);
  const f = siteFold(permutation, options.fold);
  const id = (i: number) => ds.cases[i].id;
  const split: FoldSplit = {
    train: f.train.map(id),
    validation: id(f.validation),
    test: id(f.test),
    permutation,
  };
  const all = await loadSlices(ds, { size: options.size, caseIds: [...split.train, split.validation] });
  const data: JointData<SliceSet> = {
    train: subsetSlices(all, split.train),
    val: subsetSlices(all, [split.validation]),
    labels,
  };
  return { joint, dir, labels, data, split };
}

/** The data module's sampler with an optional foreground share per batch. */
export function samplerFactory(foregroundFraction?: number): SamplerFactory<SliceSet> {
  return (set, o) => makeBatchSampler(set, { ...o, foregroundFraction });
}

/* ------------------------------------------------------------------------------------------------
 * Centralised training
 * --------------------------------------------------------------------------------------------- */

export interface TrainOptions {
  data: string[];
  joints?: Joint[];
  method: Method;
  epochs: number;
  aeEpochs: number;
  /** Steps per epoch; default one pass over the pooled training slices: ceil(Σ n_k / batch). */
  stepsPerEpoch?: number;
  aeStepsPerEpoch?: number;
  fold: number;
  out: string;
  foregroundFraction?: number;
  overrides: Partial<Omit<TrainerConfig, "method" | "joints" | "labels">>;
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
  method: Method;
  joints: Joint[];
  fold: number;
  config: Omit<TrainerConfig, "labels" | "joints" | "method">;
  splits: Partial<Record<Joint, Omit<FoldSplit, "permutation"> & { permutation: number[] }>>;
  epochs: EpochRecord[];
  /** Final validation Dice per joint: mean and per structure. */
  dice: Partial<Record<Joint, { mean: number; perLabel: Record<string, number> }>>;
  /** Checkpoint directory per model after the last epoch ("all" scope; `individual` has one per joint). */
  checkpoints: Record<string, string>;
  /**
   * Per model, the segmentation epoch with the highest validation Dice (mean over its joints), its
   * Dice per joint and its checkpoint (`…-best`): model selection on the validation exam, as the
   * paper selected its hyper-parameters.
   */
  best: Record<string, { epoch: number; dice: Partial<Record<Joint, number>>; checkpoint: string }>;
  /** tf.memory().numTensors identical at the end of every epoch of a phase (after its first). */
  numTensorsStable: boolean;
  seconds: number;
  backend: string;
}

/**
 * Trains on pooled site datasets exactly as the paper's centralised reference: batch split equally
 * between domains, Adam, Table 1 defaults, AE phase first for +mjap methods, validation Dice per
 * domain after every segmentation epoch, a checkpoint after every epoch. `individual` trains one
 * model per joint. Writes RUN/summary.json, RUN/epochs.jsonl and RUN/checkpoint[-<joint>]/.
 */
export async function trainCentralised(o: TrainOptions): Promise<TrainSummary> {
  const log = o.log ?? createLogger({ name: "train" });
  const engine = await initEngine(parseBackendChoice(process.env.FEDJOINT_BACKEND), { log });
  const t0 = performance.now();
  if (o.joints && o.joints.length !== o.data.length) {
    throw new InputError(
      "FJ_CLI_ARG",
      `--joints names ${o.joints.length} joints for ${o.data.length} --data directories`,
    );
  }
  const size = o.overrides.size ?? TABLE1.size;
  const seed = o.overrides.seed ?? 0;
  const sites: SiteData[] = [];
  for (const [i, dir] of o.data.entries()) {
    const site = await loadSiteData(dir, { size, fold: o.fold, seed, joint: o.joints?.[i] });
    if (sites.some((s) => s.joint === site.joint)) {
      throw new InputError(
        "FJ_CLI_ARG",
        `--data: two datasets are ${site.joint} (${sites.find((s) => s.joint === site.joint)!.dir}, ${dir})`,
      );
    }
    log.info(
      {
        joint: site.joint,
        dir,
        train: site.data.train.count,
        val: site.data.val.count,
        exams: site.split.train.length,
      },
      "site data loaded",
    );
    sites.push(site);
  }
  sites.sort((a, b) => JOINTS.indexOf(a.joint) - JOINTS.indexOf(b.joint));
  const joints = sites.map((s) => s.joint);
  const labels = Object.fromEntries(sites.map((s) => [s.joint, s.labels])) as Partial<
    Record<Joint, LabelSpec>
  >;
  const data = Object.fromEntries(sites.map((s) => [s.joint, s.data])) as Partial<
    Record<Joint, JointData<SliceSet>>
  >;
  const models: { name: string; joints: Joint[] }[] =
    o.method === "individual" ? joints.map((j) => ({ name: j, joints: [j] })) : [{ name: "multi", joints }];
  await mkdir(o.out, { recursive: true });
  const epochsFile = path.join(o.out, "epochs.jsonl");
  const records: EpochRecord[] = [];
  const checkpoints: Record<string, string> = {};
  const best: TrainSummary["best"] = {};
  const finalDice: TrainSummary["dice"] = {};
  let stable = true;
  let config: TrainerConfig | undefined;
  const showProgress = o.progress ?? process.stderr.isTTY === true;

  for (const m of models) {
    config = trainerConfig({ method: o.method, joints: m.joints, labels }, o.overrides);
    const trainer = new SegmentationTrainer(config, data, {
      makeSampler: samplerFactory(o.foregroundFraction),
      log,
    });
    try {
      const ckpt = path.join(o.out, models.length === 1 ? "checkpoint" : `checkpoint-${m.name}`);
      for (const phase of trainer.phaseList) {
        const batch = phase === "ae" ? config.aeBatch : config.segBatch;
        const pooled = m.joints.reduce((n, j) => n + data[j]!.train.count, 0);
        const steps =
          (phase === "ae" ? o.aeStepsPerEpoch : o.stepsPerEpoch) ?? Math.max(1, Math.ceil(pooled / batch));
        const epochs = phase === "ae" ? o.aeEpochs : o.epochs;
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
          if (phase === "seg") {
            record.dice = Object.fromEntries(m.joints.map((j) => [j, trainer.validate(j)]));
          }
          record.numTensors = tf.memory().numTensors;
          if (epoch === 0) tensorsAfterFirst = record.numTensors;
          else if (record.numTensors !== tensorsAfterFirst) stable = false;
          await trainer.saveCheckpoint(ckpt, "all", { fold: o.fold, phase, epoch });
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
        const v = trainer.validate(j);
        finalDice[j] = { mean: v.mean, perLabel: v.dice };
      }
    } finally {
      trainer.dispose();
    }
  }
  const { labels: _l, joints: _j, method: _m, ...cfg } = config!;
  const summary: TrainSummary = {
    method: o.method,
    joints,
    fold: o.fold,
    config: cfg,
    splits: Object.fromEntries(sites.map((s) => [s.joint, s.split])),
    epochs: records,
    dice: finalDice,
    checkpoints,
    best,
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

function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/* ------------------------------------------------------------------------------------------------
 * CLI
 * --------------------------------------------------------------------------------------------- */

interface TrainFlags {
  data: string;
  joints?: string;
  method: string;
  epochs: number;
  aeEpochs: number;
  stepsPerEpoch?: number;
  aeStepsPerEpoch?: number;
  size: number;
  base: number;
  depth: number;
  batch: number;
  aeBatch: number;
  lr: number;
  aeLr: number;
  lambdaMsc: number;
  lambdaAeMsc: number;
  lambdaSsc: number;
  lambdaMjap: number;
  tau: number;
  scales?: string;
  seed: number;
  fold: number;
  foregroundFraction?: number;
  augment: boolean;
  out: string;
  backend: string;
  progress?: boolean;
  json?: boolean;
}

function parseMethod(value: string): Method {
  if ((METHODS as readonly string[]).includes(value)) return value as Method;
  throw new InputError("FJ_CLI_ARG", `--method is '${value}', expected one of ${METHODS.join("|")}`);
}

function parseScales(value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const s = value.split(",").map((x) => Number(x.trim()));
  if (s.some((x) => !Number.isInteger(x) || x < 0)) {
    throw new InputError(
      "FJ_CLI_ARG",
      `--scales is '${value}', expected comma-separated scale indices (0-based)`,
    );
  }
  return s;
}

export function registerTrain(program: Command): void {
  program
    .command("train")
    .description(
      "centralised multi-domain training on pooled site datasets (the reference for federated runs)",
    )
    .requiredOption("--data <dirs>", "site datasets (nnU-Net layout), comma-separated")
    .option("--joints <list>", "joint of each --data directory (default: dataset.json 'joint')")
    .option("--method <m>", METHODS.join("|"), "dsl+msc+mjap")
    .option("--epochs <n>", "segmentation epochs (Table 1: 6)", intOption("--epochs"), TABLE1.segEpochs)
    .option(
      "--ae-epochs <n>",
      "auto-encoder epochs for +mjap (Table 1: 8)",
      intOption("--ae-epochs"),
      TABLE1.aeEpochs,
    )
    .option(
      "--steps-per-epoch <n>",
      "segmentation steps per epoch (default: one pass over the pooled slices)",
      intOption("--steps-per-epoch"),
    )
    .option(
      "--ae-steps-per-epoch <n>",
      "auto-encoder steps per epoch (default: one pass)",
      intOption("--ae-steps-per-epoch"),
    )
    .option("--size <n>", "slice side in pixels (paper 256)", intOption("--size", 8), TABLE1.size)
    .option("--base <n>", "filters of the first level (paper 32)", intOption("--base"), TABLE1.base)
    .option("--depth <n>", "levels including the bottleneck (paper 5)", intOption("--depth", 2), TABLE1.depth)
    .option(
      "--batch <n>",
      "segmentation batch, split equally between joints (Table 1: 18)",
      intOption("--batch"),
      TABLE1.segBatch,
    )
    .option("--ae-batch <n>", "auto-encoder batch (Table 1: 24)", intOption("--ae-batch"), TABLE1.aeBatch)
    .option("--lr <x>", "segmentation Adam learning rate (Table 1: 5e-4)", numberOption("--lr"), TABLE1.segLr)
    .option(
      "--ae-lr <x>",
      "auto-encoder Adam learning rate (Table 1: 1e-4)",
      numberOption("--ae-lr"),
      TABLE1.aeLr,
    )
    .option(
      "--lambda-msc <x>",
      "λ2, L_MSC weight (Att-UNet 0.5)",
      numberOption("--lambda-msc"),
      TABLE1.lambdaMsc,
    )
    .option(
      "--lambda-ae-msc <x>",
      "λ1, L_MSC weight in the AE (0.05)",
      numberOption("--lambda-ae-msc"),
      TABLE1.lambdaAeMsc,
    )
    .option("--lambda-ssc <x>", "L_SSC weight (0.1)", numberOption("--lambda-ssc"), TABLE1.lambdaSsc)
    .option("--lambda-mjap <x>", "λ3, L_MJAP weight (0.1)", numberOption("--lambda-mjap"), TABLE1.lambdaMjap)
    .option("--tau <x>", "contrastive temperature τ (0.1)", numberOption("--tau"), TABLE1.tau)
    .option("--scales <list>", "L_MSC scale indices, comma-separated (default all; dsl+ssc: bottleneck)")
    .option("--seed <n>", "weights, sampling and fold permutation seed", intOption("--seed", 0), 0)
    .option("--fold <n>", "leave-one-out fold: test π(i), validation π(i+1)", intOption("--fold", 0), 0)
    .option(
      "--foreground-fraction <x>",
      "share of each batch drawn from slices with foreground (default: uniform, as the paper)",
      numberOption("--foreground-fraction"),
    )
    .option("--no-augment", "disable on-the-fly augmentation")
    .option(
      "--backend <name>",
      "auto|tensorflow|native|wasm|webgpu|cpu",
      process.env.FEDJOINT_BACKEND ?? "auto",
    )
    .option("--no-progress", "no progress bar")
    .requiredOption("--out <dir>", "run directory (checkpoints, epochs.jsonl, summary.json)")
    .option("--json", "print the summary as one JSON line")
    .action(async (f: TrainFlags) => {
      process.env.FEDJOINT_BACKEND = parseBackendChoice(f.backend);
      const data = f.data
        .split(",")
        .map((d) => d.trim())
        .filter(Boolean);
      if (data.length === 0) throw new InputError("FJ_CLI_ARG", "--data names no directory");
      if (f.foregroundFraction !== undefined && !(f.foregroundFraction >= 0 && f.foregroundFraction <= 1)) {
        throw new InputError("FJ_CLI_ARG", `--foreground-fraction is ${f.foregroundFraction}, expected 0–1`);
      }
      const summary = await trainCentralised({
        data,
        joints: f.joints ? parseJoints(f.joints) : undefined,
        method: parseMethod(f.method),
        epochs: f.epochs,
        aeEpochs: f.aeEpochs,
        stepsPerEpoch: f.stepsPerEpoch,
        aeStepsPerEpoch: f.aeStepsPerEpoch,
        fold: f.fold,
        out: f.out,
        foregroundFraction: f.foregroundFraction,
        progress: f.progress !== false && process.stderr.isTTY === true,
        overrides: {
          size: f.size,
          base: f.base,
          depth: f.depth,
          segBatch: f.batch,
          aeBatch: f.aeBatch,
          segLr: f.lr,
          aeLr: f.aeLr,
          lambdaMsc: f.lambdaMsc,
          lambdaAeMsc: f.lambdaAeMsc,
          lambdaSsc: f.lambdaSsc,
          lambdaMjap: f.lambdaMjap,
          tau: f.tau,
          scales: parseScales(f.scales),
          seed: f.seed,
          augment: f.augment,
        },
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
      }
    });
}
