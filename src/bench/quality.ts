/**
 * `fedjoint bench quality`: on the same phantoms, the same leave-one-out folds and the same
 * per-domain sample budget, trains the study pooled (`trainCentralised`, the paper's setting),
 * each joint alone (individual) and federated (`simulate`: a real coordinator and one site-client
 * process per joint on loopback mTLS), and scores every run by the site's own pipeline: 3D
 * post-processed test Dice and ASSD per site, fold and seed. Federated − centralised is the cost of
 * federating; centralised − individual is the gain of multi-domain training; both are reported.
 */
import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { updateKind } from "../aggregation/instructions.js";
import { createStrategy, strategyConfigSchema } from "../aggregation/strategies/index.js";
import { loadTrainSites, type TrainSite, trainCentralised } from "../cli/commands/train.js";
import type { StudyState } from "../coordinator/study.js";
import { synthesizeDataset } from "../data/phantoms.js";
import type { SliceSet } from "../data/slices.js";
import { fjError } from "../errors.js";
import type { ReportedExam } from "../eval/types.js";
import { JOINTS, type Joint } from "../joints.js";
import { type Logger, silentLogger } from "../log.js";
import { initEngine, parseBackendChoice } from "../model/engine/backend.js";
import type { LabelSpec } from "../model/labels.js";
import { SegmentationTrainer, trainerConfig } from "../model/trainer.js";
import { simulate } from "../simulation/simulate.js";
import { evaluateTestExam } from "../site-client/test-exam.js";
import { parseStudyConfig, perDomainBatch, type StudyConfig } from "../study/config.js";
import { methodSpec } from "../study/methods.js";
import { foldData, samplerFactory } from "../study/site-data.js";
import type { QualityPreset, RunKind, RunSpec } from "./presets.js";

/** One site's test exam in one fold of one run. */
export interface QualityResult {
  kind: RunKind;
  method: string;
  /** The federated strategy (label), null for centralised and individual runs. */
  strategy: string | null;
  site: string;
  fold: number;
  seed: number;
  /** Mean over the site's bones of the 3D post-processed test Dice, in [0, 1]. */
  dice: number;
  /** Mean over the site's bones of the test ASSD (paper eq. S5), mm. */
  assd: number;
}

export interface QualityDetail extends QualityResult {
  run: string;
  bones: Record<string, { dice: number; assd: number }>;
}

export interface RunRecord {
  run: string;
  kind: RunKind;
  method: string;
  strategy: string | null;
  seed: number;
  schedule: { rounds: number; localSteps: number; aeRounds: number; aeLocalSteps: number };
  seconds: number;
}

/** The per-domain sample budget every run of the preset shares. */
export interface QualityBudget {
  /** SEG steps per domain (rounds × localSteps) and slices of each domain per step. */
  segSteps: number;
  aeSteps: number;
  slicesPerStep: number;
  /** segSteps × slicesPerStep: slices of each domain the segmentation network trains on. */
  slicesPerDomain: number;
}

export interface QualityOptions {
  preset: QualityPreset;
  /** Output directory: data/, runs/ (state of each run), report.md, figure.svg, metrics.json. */
  out: string;
  backend: string;
  /** Site datasets (ankle, knee, shoulder, in that order) instead of synthesised phantoms. */
  data?: string[];
  /** Keep each run's state directory (coordinator state, site checkpoints). Default: removed. */
  keepRuns?: boolean;
  log?: Logger;
  /** Called before each run (run × seed) starts and once at the end. */
  onProgress?: (p: { done: number; total: number; run: string }) => void;
}

export interface QualityOutcome {
  preset: string;
  budget: QualityBudget;
  results: QualityDetail[];
  runs: RunRecord[];
  seconds: number;
}

const SITES = JOINTS.map((joint) => ({ name: joint, joint }));

/** Short label of a run's strategy, e.g. `fedadam(gradient)` or `fedavg(10 local steps)`. */
export function strategyLabel(study: StudyConfig): string {
  const s = study.strategy;
  // `auto` resolves as the sites receive it (one local step: FedSGD gradients)
  return updateKind(study, "seg", s.update) === "gradient"
    ? `${s.name}(gradient)`
    : `${s.name}(${study.localSteps} local steps)`;
}

export function runLabel(run: RunSpec, study: StudyConfig): string {
  if (run.kind === "individual") return "individual";
  if (run.kind === "centralised") return `centralised ${run.method}`;
  return `federated ${run.method} ${strategyLabel(study)}`;
}

/**
 * Steps between two validations in every run: pooled training's epochs (validation and DSBN
 * re-estimation between them never move a trained weight), and a federated site's validateEvery.
 */
const EPOCH_STEPS = 25;

/** The study of one run: the preset's fields, the run's method, strategy and schedule. */
export function runStudy(preset: QualityPreset, run: RunSpec, seed: number): StudyConfig {
  const federated = run.kind === "federated";
  const localSteps = (federated ? run.schedule?.localSteps : undefined) ?? preset.study.localSteps ?? 1;
  return parseStudyConfig(
    {
      ...preset.study,
      study: `bench-${preset.name}`,
      method: run.method,
      sites: SITES,
      folds: preset.folds,
      seed,
      ...(federated ? (run.schedule ?? {}) : {}),
      // pooled and individual training have no server; the study default may need 1 local step.
      // Federated sites validate about every EPOCH_STEPS steps, as pooled training does
      strategy: federated
        ? {
            ...strategyConfigSchema.parse(run.strategy),
            validateEvery: Math.max(1, Math.floor(EPOCH_STEPS / localSteps)),
          }
        : { name: "fedavg" },
    },
    `bench preset ${preset.name} (${run.kind} ${run.method})`,
  );
}

export function presetBudget(preset: QualityPreset): QualityBudget {
  const study = runStudy(preset, { kind: "centralised", method: "dsl+msc+mjap" }, 0);
  const segSteps = study.rounds * study.localSteps;
  const aeSteps = (study.aeRounds ?? study.rounds) * (study.aeLocalSteps ?? study.localSteps);
  const slicesPerStep = perDomainBatch(study, "seg");
  return { segSteps, aeSteps, slicesPerStep, slicesPerDomain: segSteps * slicesPerStep };
}

function checkBudget(preset: QualityPreset, budget: QualityBudget): void {
  for (const run of preset.runs) {
    const s = runStudy(preset, run, preset.seeds[0]);
    const seg = s.rounds * s.localSteps;
    const ae = (s.aeRounds ?? s.rounds) * (s.aeLocalSteps ?? s.localSteps);
    if (seg !== budget.segSteps || (methodSpec(s.method).phases.includes("ae") && ae !== budget.aeSteps)) {
      throw fjError(
        "FJ_CLI_ARG",
        `bench preset ${preset.name}: ${runLabel(run, s)} trains ${seg} SEG / ${ae} AE steps per domain, the preset's budget is ${budget.segSteps} / ${budget.aeSteps}`,
      );
    }
  }
}

/**
 * Pooled training of a federated study's budget with whole epochs: the same steps (validation and
 * DSBN re-estimation between epochs never move a trained weight), in epochs of ≤ EPOCH_STEPS steps.
 */
function pooledSchedule(study: StudyConfig): StudyConfig {
  const epochs = (steps: number) => {
    let e = Math.ceil(steps / EPOCH_STEPS);
    while (steps % e !== 0) e++;
    return { rounds: e, localSteps: steps / e };
  };
  const seg = epochs(study.rounds * study.localSteps);
  const ae = epochs((study.aeRounds ?? study.rounds) * (study.aeLocalSteps ?? study.localSteps));
  return parseStudyConfig(
    { ...study, ...seg, aeRounds: ae.rounds, aeLocalSteps: ae.localSteps },
    "bench pooled schedule",
  );
}

function meanOver(exam: ReportedExam): { dice: number; assd: number; bones: QualityDetail["bones"] } {
  const bones = Object.fromEntries(
    Object.entries(exam.labels).map(([bone, m]) => [bone, { dice: m.dice, assd: m.assd }]),
  );
  const values = Object.values(bones);
  const mean = (f: (b: { dice: number; assd: number }) => number) =>
    values.reduce((a, b) => a + f(b), 0) / Math.max(values.length, 1);
  return { dice: mean((b) => b.dice), assd: mean((b) => b.assd), bones };
}

/** Centralised (pooled) or individual training of every fold, scored on each site's test exam. */
async function trainedCentrally(
  study: StudyConfig,
  run: RunSpec,
  sites: TrainSite[],
  dir: string,
  log: Logger,
): Promise<Omit<QualityDetail, "run" | "seed">[]> {
  const pooled = pooledSchedule(study);
  const spec = methodSpec(study.method);
  const out: Omit<QualityDetail, "run" | "seed">[] = [];
  for (let fold = 0; fold < study.folds; fold++) {
    const runDir = path.join(dir, `fold${fold}`);
    const summary = await trainCentralised({ study: pooled, sites, fold, out: runDir, progress: false, log });
    const models = spec.pooled
      ? [{ joints: sites.map((s) => s.spec.joint), checkpoint: summary.checkpoints.multi }]
      : sites.map((s) => ({ joints: [s.spec.joint], checkpoint: summary.checkpoints[s.spec.joint] }));
    for (const m of models) {
      const members = sites.filter((s) => m.joints.includes(s.spec.joint));
      const labels = Object.fromEntries(members.map((s) => [s.spec.joint, s.data.labels])) as Partial<
        Record<Joint, LabelSpec>
      >;
      const data = Object.fromEntries(
        members.map((s) => [s.spec.joint, foldData(s.data, s.spec.name, study.seed, fold)]),
      );
      const trainer = new SegmentationTrainer<SliceSet>(trainerConfig(pooled, m.joints, labels), data, {
        makeSampler: samplerFactory(pooled.training),
        log,
      });
      try {
        await trainer.loadCheckpoint(m.checkpoint);
        for (const s of members) {
          const exam = await evaluateTestExam(trainer, {
            site: s.spec.name,
            joint: s.spec.joint,
            data: s.data,
            seed: study.seed,
            fold,
          });
          out.push({
            kind: run.kind,
            method: study.method,
            strategy: null,
            site: s.spec.name,
            fold,
            ...meanOver(exam.test),
          });
        }
      } finally {
        trainer.dispose();
      }
    }
  }
  return out;
}

/** A federated run of every fold (coordinator + site processes), scored by the sites themselves. */
async function trainedFederated(
  study: StudyConfig,
  run: RunSpec,
  dirs: string[],
  dir: string,
  backend: string,
  log: Logger,
): Promise<Omit<QualityDetail, "run" | "seed">[]> {
  await simulate({
    study,
    data: dirs,
    subjects: 0,
    dataSize: 0,
    workdir: dir,
    backend,
    threads: 1,
    insecure: false,
    log,
  });
  const state = JSON.parse(await readFile(path.join(dir, "coordinator", "state.json"), "utf8")) as StudyState;
  const label = strategyLabel(study);
  return state.evaluations
    .map((e) => ({
      kind: run.kind,
      method: study.method,
      strategy: label,
      site: e.site,
      fold: e.fold,
      ...meanOver(e.test),
    }))
    .sort(
      (a, b) =>
        a.fold - b.fold ||
        SITES.findIndex((s) => s.name === a.site) - SITES.findIndex((s) => s.name === b.site),
    );
}

/** Phantoms for the three joints (or the given datasets), validated and loaded at the model size. */
async function benchData(
  o: QualityOptions,
  study: StudyConfig,
): Promise<{ dirs: string[]; sites: TrainSite[] }> {
  let dirs: string[];
  if (o.data) {
    if (o.data.length !== SITES.length) {
      throw fjError(
        "FJ_CLI_ARG",
        `--data names ${o.data.length} directories, expected 3 (ankle, knee, shoulder)`,
      );
    }
    dirs = o.data.map((d) => path.resolve(d));
  } else {
    dirs = [];
    for (const [i, s] of SITES.entries()) {
      const dir = path.join(o.out, "data", s.joint);
      await synthesizeDataset({
        joint: s.joint,
        subjects: o.preset.subjects,
        size: o.preset.dataSize,
        seed: 1000 + i,
        out: dir,
      });
      dirs.push(dir);
    }
  }
  return { dirs, sites: await loadTrainSites(study, dirs) };
}

/** Runs every run of the preset for every seed; results in run order, then seed, fold, site. */
export async function runQualityBench(o: QualityOptions): Promise<QualityOutcome> {
  const t0 = performance.now();
  const log = o.log ?? silentLogger;
  const preset = o.preset;
  const budget = presetBudget(preset);
  checkBudget(preset, budget);
  await mkdir(o.out, { recursive: true });
  await initEngine(parseBackendChoice(o.backend), { log });
  const first = runStudy(preset, preset.runs[0], preset.seeds[0]);
  const { dirs, sites } = await benchData(o, first);
  const minExams = Math.min(...sites.map((s) => s.data.exams));
  if (preset.folds > minExams) {
    throw fjError(
      "FJ_CLI_ARG",
      `--folds ${preset.folds}: the smallest site has ${minExams} exams, expected at most that many leave-one-out folds`,
    );
  }
  const results: QualityDetail[] = [];
  const runs: RunRecord[] = [];
  const total = preset.runs.length * preset.seeds.length;
  for (const [i, run] of preset.runs.entries()) {
    for (const [j, seed] of preset.seeds.entries()) {
      const study = runStudy(preset, run, seed);
      const label = runLabel(run, study);
      o.onProgress?.({ done: i * preset.seeds.length + j, total, run: `${label} · seed ${seed}` });
      // the study's own strategy must build (bad parameters fail before any training)
      if (run.kind === "federated") createStrategy(study);
      const dir = path.join(o.out, "runs", `${String(i).padStart(2, "0")}-seed${seed}`);
      await rm(dir, { recursive: true, force: true });
      const r0 = performance.now();
      log.info({ run: label, seed }, "bench run started");
      const scored =
        run.kind === "federated"
          ? await trainedFederated(study, run, dirs, dir, o.backend, log)
          : await trainedCentrally(study, run, sites, dir, log);
      const seconds = (performance.now() - r0) / 1000;
      for (const r of scored) results.push({ ...r, run: label, seed });
      runs.push({
        run: label,
        kind: run.kind,
        method: study.method,
        strategy: run.kind === "federated" ? strategyLabel(study) : null,
        seed,
        schedule: {
          rounds: study.rounds,
          localSteps: study.localSteps,
          aeRounds: study.aeRounds ?? study.rounds,
          aeLocalSteps: study.aeLocalSteps ?? study.localSteps,
        },
        seconds,
      });
      log.info({ run: label, seed, seconds: Math.round(seconds) }, "bench run done");
      if (!o.keepRuns) await rm(dir, { recursive: true, force: true });
    }
  }
  o.onProgress?.({ done: total, total, run: "done" });
  return { preset: preset.name, budget, results, runs, seconds: (performance.now() - t0) / 1000 };
}
