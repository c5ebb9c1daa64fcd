/**
 * The site-client loop: validate data → Join → (NextTask → train | evaluate | wait)* → done.
 *
 * A train task for (fold, phase, round): pull Θ_r (round 0: the seeded Θ_0 every site builds
 * identically), pull the other sites' embeddings of round r−1 as extra L_MSC negatives, run the
 * local Adam steps with this site's Γ_k, upload anonymised embeddings, checkpoint Γ_k locally,
 * and push Θ_r^k with the sample count, the loss components and compute time. Γ_k never leaves.
 */
import { randomInt } from "node:crypto";
import {
  LOCAL_OPTIMIZER_POLICIES,
  type LocalOptimizerPolicy,
  type Personalisation,
  type TrainInstructions,
  UPDATE_KINDS,
  type UpdateKind,
} from "../aggregation/strategy.js";
import { readNifti } from "../data/nifti.js";
import type { SliceSet } from "../data/slices.js";
import { fjError, ProtocolError } from "../errors.js";
import { type ExamResult, type ReportedExam, reportedExam } from "../eval/types.js";
import type { Joint } from "../joints.js";
import { type Logger, silentLogger } from "../log.js";
import type { NamedTensor } from "../model/api.js";
import { tensorsDigest } from "../model/checkpoint.js";
import type { LabelSpec } from "../model/labels.js";
import { geometryOfExams, studyModelCard, writeModelDir } from "../model/model-dir.js";
import { SegmentationTrainer, trainerConfig, type ValidationResult } from "../model/trainer.js";
import type { PersonalisationMsg, TaskMsg, TrainInstructionsMsg } from "../protocol/proto.js";
import { hashSeed, mulberry32 } from "../random.js";
import { parseStudyConfig, type StudyConfig } from "../study/config.js";
import { federates, methodSpec, type Phase } from "../study/methods.js";
import { studyLabels } from "../study/model.js";
import {
  foldData,
  foldSplit,
  loadSiteSlices,
  type SiteData,
  samplerFactory,
  type ValidatedData,
} from "../study/site-data.js";
import { anonymiseEmbeddings, bankFromTensors } from "./anonymise.js";
import { SiteReport, type TestExamView } from "./report.js";
import { SiteState } from "./state.js";
import { evaluateTestExam } from "./test-exam.js";
import type { Transport } from "./transport.js";

export interface RoundReport {
  fold: number;
  phase: Phase;
  round: number;
  steps: number;
  samples: number;
  loss: Record<string, number>;
  computeMs: number;
  valDiceBefore?: number;
}

export interface SiteSummary {
  site: string;
  joint: Joint;
  rounds: RoundReport[];
  evaluations: {
    fold: number;
    meanDice: number;
    dice: Record<string, number>;
    testDice: Record<string, number>;
  }[];
  computeSeconds: number;
  bytes: { sent: number; received: number };
  /** Local only: the site's model to use (written after the last fold) and its report directory. */
  model?: string;
  report?: string;
}

/** What a site reports per fold: validation Dice per label and the test exam's metrics (no voxel counts). */
export interface EvaluationReport {
  validation: Record<string, { dice: number }>;
  test: ReportedExam;
}

export interface SiteClientOptions {
  site: string;
  joint: Joint;
  /** The validated dataset (validateSiteData); slices are loaded at the study's size after Join. */
  data: ValidatedData;
  transport: Transport;
  stateDir: string;
  backend: string;
  /**
   * Simulations only (`--reproducible-seed`): the embedded slices and their anonymisation derive
   * from this seed, the site, fold, phase and round instead of the OS's randomness.
   */
  reproducibleSeed?: number;
  log?: Logger;
  /** Called with (step, steps) during local training (progress bar). */
  onProgress?: (info: {
    fold: number;
    phase: Phase;
    round: number;
    step: number;
    steps: number;
    loss: number;
  }) => void;
}

export class SiteClient {
  private readonly o: SiteClientOptions;
  private readonly log: Logger;
  private readonly state: SiteState;
  private config?: StudyConfig;
  private data?: SiteData;
  private trainer?: SegmentationTrainer<SliceSet>;
  private trainerFold = -1;
  private aeLoaded = -1;
  private readonly summary: SiteSummary;
  private readonly report: SiteReport;
  /** The last test exam evaluated (evaluateTestExam), for the site's report and model. */
  private lastTest?: Omit<TestExamView, "validation" | "image"> & { imageFile: string };
  private roundsRecorded = 0;

  constructor(options: SiteClientOptions) {
    this.o = options;
    this.log = options.log ?? silentLogger;
    this.state = new SiteState(options.stateDir);
    this.report = new SiteReport(this.state.dir);
    this.summary = {
      site: options.site,
      joint: options.joint,
      rounds: [],
      evaluations: [],
      computeSeconds: 0,
      bytes: options.transport.traffic,
    };
  }

  async run(): Promise<SiteSummary> {
    await this.state.init();
    const t = this.o.transport;
    const reply = await t.join({
      joint: this.o.joint,
      labels: this.o.data.labels.names,
      exams: this.o.data.exams,
      backend: this.o.backend,
      version: "0.1.0",
    });
    this.config = parseStudyConfig(JSON.parse(reply.configJson), "the coordinator's study config");
    t.dtype = this.config.compression === "float16" ? "float16" : "float32";
    this.data = await loadSiteSlices(this.o.data, this.config.model.size);
    this.log.info({ site: this.o.site, study: reply.study, method: this.config.method }, "joined study");
    try {
      for (;;) {
        const task = await t.nextTask();
        if (task.kind === "done") break;
        if (task.kind === "wait") continue;
        if (task.kind === "train") {
          await this.train(task);
          await this.recordRound();
        } else if (task.kind === "evaluate") {
          await this.evaluate(task);
          await this.recordEvaluation(task.ref!.fold);
        }
      }
      await this.writeReport();
    } finally {
      this.trainer?.dispose();
      t.close();
    }
    this.log.info(
      { site: this.o.site, computeSeconds: this.summary.computeSeconds, bytes: t.traffic },
      "study done",
    );
    return this.summary;
  }

  /** Label sets the heads serve: this site's own; the "shared" method's union head: every study joint. */
  private labelsFor(): Partial<Record<Joint, LabelSpec>> {
    const own = { [this.o.joint]: this.o.data.labels };
    return methodSpec(this.config!.method).sharedNorm ? { ...studyLabels(this.config!), ...own } : own;
  }

  /** The trainer of `fold`, fresh (seeded Θ_0) or with Γ_k restored from this site's state dir. */
  private async trainerFor(fold: number): Promise<SegmentationTrainer<SliceSet>> {
    if (this.trainer && this.trainerFold === fold) return this.trainer;
    this.trainer?.dispose();
    const c = this.config!;
    const data = foldData(this.data!, this.o.site, c.seed, fold);
    const trainer = new SegmentationTrainer(
      trainerConfig(c, [this.o.joint], this.labelsFor()),
      { [this.o.joint]: data },
      { makeSampler: samplerFactory(c.training), log: this.log },
    );
    const progress = await this.state.read();
    if (progress && progress.fold === fold && progress.checkpoint) {
      await trainer.loadCheckpoint(this.state.checkpointDir(fold));
      // what the trainer now holds (read back), so an audit can compare it with the checkpoint
      const gamma = (await Promise.all(trainer.phaseList.map((p) => trainer.domainTensors(p)))).flat();
      this.log.info(
        {
          site: this.o.site,
          fold,
          phase: progress.phase,
          round: progress.round,
          gammaSha256: tensorsDigest(gamma),
        },
        "resumed Γ from the site state",
      );
    }
    this.trainer = trainer;
    this.trainerFold = fold;
    this.aeLoaded = -1;
    this.log.info(
      {
        site: this.o.site,
        fold,
        trainSlices: data.train.count,
        valSlices: data.val.count,
        trainExams: data.split.train.length,
      },
      "fold data ready",
    );
    return trainer;
  }

  private async train(task: TaskMsg): Promise<void> {
    const ref = task.ref!;
    const phase = ref.phase as Phase;
    const t = this.o.transport;
    const tTask = performance.now();
    const trainer = await this.trainerFor(ref.fold);
    const needAe = phase === "seg" && task.aeRounds > 0 && this.aeLoaded !== ref.fold;
    const [ae, model, bankTensors] = await Promise.all([
      needAe ? t.pullModel({ fold: ref.fold, phase: "ae", round: task.aeRounds }) : undefined,
      task.hasModel ? t.pullModel(ref) : undefined,
      task.hasBank ? t.pullEmbeddings({ ...ref, round: ref.round - 1 }) : undefined,
    ]);
    if (ae) trainer.setSharedTensors("ae", ae);
    if (model) trainer.setSharedTensors(phase, model);
    const bank = bankTensors ? bankFromTensors(bankTensors) : undefined;
    const pullMs = performance.now() - tTask;
    const t0 = performance.now();
    if (!task.train) throw fjError("FJ_PROTOCOL_TASK", "train task without instructions");
    const instructions = trainInstructionsOf(task.train);
    // The study's rule, the same as centralised training (src/cli/commands/train.ts): before the
    // frozen auto-encoder is used or a model is validated, the DSBN running statistics are
    // re-estimated for the current Θ (training steps normalise with batch statistics). Embeddings
    // after the local steps use the statistics those steps kept current.
    if (needAe) {
      // what L_MJAP will use: the federated Θ_AE as the trainer holds it (before its norms are
      // re-estimated), digested so that an audit can compare it with the coordinator's AE model
      const aeTheta = await trainer.sharedTensors("ae");
      this.log.info(
        { site: this.o.site, fold: ref.fold, aeRound: task.aeRounds, aeThetaSha256: tensorsDigest(aeTheta) },
        "federated auto-encoder in use",
      );
      trainer.recalibrateNorms("ae");
      this.aeLoaded = ref.fold;
    }
    await trainer.resetOptimizer(phase, instructions.optimizer);
    const valDiceBefore = instructions.validate
      ? (await this.validateWith(trainer, instructions.personalise, true)).mean
      : undefined;
    const res = await trainer.trainSteps(phase, {
      steps: instructions.steps,
      lr: instructions.lr,
      round: {
        ...(instructions.update === "gradient" ? { gradient: { lossWeight: instructions.lossWeight } } : {}),
        ...(instructions.proximalMu > 0 && model
          ? { proximal: { mu: instructions.proximalMu, anchor: model } }
          : {}),
      },
      bank,
      onStep: (step, loss) =>
        this.o.onProgress?.({
          fold: ref.fold,
          phase,
          round: ref.round,
          step: step + 1,
          steps: instructions.steps,
          loss: loss.total,
        }),
    });
    let embeddings: NamedTensor[] | undefined;
    if (instructions.embed) {
      const e = this.config!.embeddings;
      const seed =
        this.o.reproducibleSeed === undefined
          ? randomInt(2 ** 31)
          : hashSeed(this.o.reproducibleSeed, this.o.site, ref.fold, phase, ref.round) % 2 ** 31;
      embeddings = anonymiseEmbeddings(await trainer.embeddings(phase, { count: e.count, seed }), {
        mix: e.mix,
        noise: e.noise,
        random: mulberry32(seed ^ 0x9e3779b9),
      });
    }
    // FedSGD: the captured ∂L_k/∂Θ in place of Θ's trainable tensors (shared running statistics,
    // which have no gradient, travel as their values)
    const gradients = new Map((res.gradients ?? []).map((g) => [g.name, g]));
    const shared = federates(this.config!.method)
      ? (await trainer.sharedTensors(phase)).map((x) => gradients.get(x.name) ?? x)
      : [];
    const computeMs = performance.now() - t0;
    const tPush = performance.now();
    if (embeddings) {
      const e = this.config!.embeddings;
      const ack = await t.pushEmbeddings(ref, embeddings, e.mix, e.noise);
      if (ack.status === "rejected")
        this.log.warn({ ...ref, code: ack.code, reason: ack.reason }, "embeddings rejected");
    }
    const loss: Record<string, number> = { total: res.loss.total, ce: res.loss.ce };
    if (res.loss.msc !== undefined) loss.msc = res.loss.msc;
    if (res.loss.mjap !== undefined) loss.mjap = res.loss.mjap;
    const metrics: Record<string, number> = {
      compute_ms: computeMs,
      train_ms: res.computeMs,
      pull_ms: pullMs,
    };
    if (valDiceBefore !== undefined) metrics.val_dice_before = valDiceBefore;
    const ack = await t.pushUpdate(ref, res.samples, loss, metrics, shared);
    const pushMs = performance.now() - tPush;
    if (ack.status === "rejected" && ack.code === "FJ_PROTOCOL_STALE") {
      // too slow: the round closed after roundTimeout without this site; go on with the next one
      this.log.warn(
        { site: this.o.site, ...ref, reason: ack.reason },
        "round closed without this site's update",
      );
      return;
    }
    if (ack.status === "rejected") {
      throw new ProtocolError(
        ack.code || "FJ_SITE_REJECTED",
        `update for fold ${ref.fold} ${phase} round ${ref.round} rejected: ${ack.reason}`,
      );
    }
    // Γ_k is checkpointed after the push, off the round's critical path (the coordinator is
    // aggregating meanwhile); killed in between, the site resumes with the previous round's Γ_k.
    await trainer.saveCheckpoint(
      this.state.checkpointDir(ref.fold),
      { domain: this.o.joint },
      { site: this.o.site },
    );
    await this.state.write({
      site: this.o.site,
      fold: ref.fold,
      phase,
      round: ref.round,
      checkpoint: `gamma-fold${ref.fold}`,
      evaluated: this.summary.evaluations.map((e) => e.fold),
    });
    this.summary.computeSeconds += computeMs / 1000;
    this.summary.rounds.push({
      ...ref,
      phase,
      steps: instructions.steps,
      samples: res.samples,
      loss,
      computeMs,
      valDiceBefore,
    });
    this.log.info(
      {
        site: this.o.site,
        fold: ref.fold,
        phase,
        round: ref.round,
        samples: res.samples,
        loss,
        computeMs: Math.round(computeMs),
        pullMs: Math.round(pullMs),
        pushMs: Math.round(pushMs),
        valDiceBefore,
        ack: ack.status,
      },
      "round trained",
    );
  }

  private async evaluate(task: TaskMsg): Promise<void> {
    const ref = task.ref!;
    const trainer = await this.trainerFor(ref.fold);
    if (task.hasModel) trainer.setSharedTensors("seg", await this.o.transport.pullModel(ref));
    const v = await this.validateWith(trainer, personalisationOf(task.evaluate?.personalise), false);
    const test = await this.evaluateTestExam(trainer, ref.fold);
    const report: EvaluationReport = {
      validation: Object.fromEntries(Object.entries(v.dice).map(([label, d]) => [label, { dice: d }])),
      test: reportedExam(test),
    };
    const ack = await this.o.transport.reportEvaluation(ref.fold, v.mean, report);
    if (ack.status === "rejected")
      throw new ProtocolError(ack.code, `evaluation of fold ${ref.fold} rejected: ${ack.reason}`);
    const testDice = Object.fromEntries(Object.entries(test.labels).map(([l, m]) => [l, m.dice]));
    this.summary.evaluations.push({ fold: ref.fold, meanDice: v.mean, dice: v.dice, testDice });
    this.log.info(
      { site: this.o.site, fold: ref.fold, meanDice: v.mean, dice: v.dice, testDice },
      "fold evaluated",
    );
  }

  /**
   * Validation of the current Θ with this site's Γ_k: after `personalise` Γ_k-only steps when the
   * strategy asks for them (Γ_k restored afterwards when `restore`: a round's validation only
   * measures), with the DSBN statistics re-estimated for the weights being measured.
   */
  private async validateWith(
    trainer: SegmentationTrainer<SliceSet>,
    personalise: Personalisation,
    restore: boolean,
  ): Promise<ValidationResult> {
    const gamma = restore && personalise.steps > 0 ? await trainer.domainTensors("seg") : undefined;
    if (personalise.steps > 0) await trainer.personalise("seg", personalise);
    trainer.recalibrateNorms("seg");
    const v = await trainer.validate(this.o.joint);
    if (gamma) trainer.setDomainTensors("seg", gamma);
    return v;
  }

  /**
   * The fold's test exam: predict its slices, stack them back onto the exam's grid, post-process
   * (largest component, closing) and compute the 3D metrics and per-slice scores (src/eval).
   * Only these numbers leave the site, keyed by fold index (`exam` = 0, never an id).
   */
  private async evaluateTestExam(trainer: SegmentationTrainer<SliceSet>, fold: number): Promise<ExamResult> {
    const data = this.data!;
    const seed = this.config!.seed;
    const e = await evaluateTestExam(trainer, { site: this.o.site, joint: this.o.joint, data, seed, fold });
    this.lastTest = {
      fold,
      testExam: e.id,
      validationExam: foldSplit(data, this.o.site, seed, fold).validation,
      test: e.test,
      imageFile: e.imageFile,
      truth: e.truth,
      prediction: e.prediction,
      dims: e.dims,
    };
    return e.test;
  }

  /* ---- what the site keeps: its report and its model (never sent) ---------------------------- */

  /** Appends the rounds trained since the last call to the site report. */
  private async recordRound(): Promise<void> {
    for (const r of this.summary.rounds.slice(this.roundsRecorded)) await this.report.addRound(r);
    this.roundsRecorded = this.summary.rounds.length;
  }

  /**
   * After a fold's evaluation: its record and figure in report/, and after the last fold the
   * site's model to use in model/ (this fold's Θ with the site's Γ_k, as just evaluated).
   */
  private async recordEvaluation(fold: number): Promise<void> {
    const t = this.lastTest;
    const e = this.summary.evaluations.at(-1);
    if (!t || t.fold !== fold || !e || e.fold !== fold) return;
    const image = await readNifti(t.imageFile);
    await this.report.addFold({
      ...t,
      validation: { mean: e.meanDice, dice: e.dice },
      image: image.data,
    });
    this.lastTest = undefined;
    if (fold === this.config!.folds - 1) await this.writeModel(fold);
  }

  /** model/: the evaluated network of `fold` (the current trainer) with its card. */
  private async writeModel(fold: number): Promise<void> {
    const trainer = this.trainer!;
    const c = this.config!;
    const data = this.data!;
    const split = foldSplit(data, this.o.site, c.seed, fold);
    const byId = new Map(data.dataset.cases.map((x) => [x.id, x.image]));
    const geometry = await geometryOfExams(
      split.train.map((id) => byId.get(id)!),
      data.slices.axis,
    );
    const card = studyModelCard({
      study: c,
      kind: "federated",
      site: this.o.site,
      fold,
      joints: [this.o.joint],
      labels: this.labelsFor(),
      inferenceBatch: trainer.inferenceChunk,
      sliceAxis: data.slices.axis,
      geometry: { [this.o.joint]: geometry },
    });
    const dir = this.state.modelDir();
    await writeModelDir(dir, card, [
      ...(await trainer.sharedTensors("seg")),
      ...(await trainer.domainTensors("seg")),
    ]);
    this.summary.model = dir;
    this.log.info({ site: this.o.site, fold, model: dir }, "site model written");
  }

  /** report/ at the end of the study, from every fold and round recorded. */
  private async writeReport(): Promise<void> {
    const c = this.config!;
    const folds = await this.report.folds();
    const hasModel = folds.some((f) => f.fold === c.folds - 1);
    const written = await this.report.write({
      site: this.o.site,
      joint: this.o.joint,
      study: c.study,
      method: c.method,
      folds: c.folds,
      labels: this.o.data.labels.names,
      ...(hasModel ? { model: { dir: this.state.modelDir(), fold: c.folds - 1 } } : {}),
    });
    this.summary.report = written.dir;
    if (hasModel) this.summary.model = this.state.modelDir();
    this.log.info(
      { site: this.o.site, report: written.dir, folds: written.folds.length },
      "site report written",
    );
  }
}

function personalisationOf(msg: PersonalisationMsg | null | undefined): Personalisation {
  return { steps: msg?.steps ?? 0, lr: msg?.lr ?? 0 };
}

/** The strategy's instructions as the wire carries them, checked (FJ_PROTOCOL_TASK otherwise). */
function trainInstructionsOf(msg: TrainInstructionsMsg): TrainInstructions {
  const update = msg.update || "model";
  const optimizer = msg.optimizer || "keep";
  if (!(UPDATE_KINDS as readonly string[]).includes(update)) {
    throw fjError("FJ_PROTOCOL_TASK", `train task: update '${update}', expected ${UPDATE_KINDS.join(" | ")}`);
  }
  if (!(LOCAL_OPTIMIZER_POLICIES as readonly string[]).includes(optimizer)) {
    throw fjError(
      "FJ_PROTOCOL_TASK",
      `train task: optimizer '${optimizer}', expected ${LOCAL_OPTIMIZER_POLICIES.join(" | ")}`,
    );
  }
  return {
    steps: msg.steps,
    lr: msg.lr,
    embed: msg.embed,
    update: update as UpdateKind,
    lossWeight: msg.lossWeight || 1,
    proximalMu: msg.proximalMu,
    optimizer: optimizer as LocalOptimizerPolicy,
    personalise: personalisationOf(msg.personalise),
    validate: msg.validate,
  };
}
