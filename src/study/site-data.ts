/**
 * A site's data in a study — the one module that `fedjoint train`, the site-client and (through
 * them) `fedjoint simulate` use, so that the same study config gives the same experiment whether
 * trained pooled or federated:
 * - the dataset validated completely before anything else (every problem names its file);
 * - every exam's slices along the acquisition axis, z-scored per volume, resized to model.size;
 * - the leave-one-out split of fold i (DESIGN §3): π_k = a seeded permutation keyed by the study
 *   seed and the SITE NAME, test π_k(i), validation π_k(i+1 mod n_k), training the rest;
 * - the batch sampler with the study's augmentation and foreground share.
 * Exam ids and file names never leave the site: only fold indices do.
 */
import { checkDataset, loadDataset, type SiteDataset } from "../data/dataset.js";
import { loadSlices, makeBatchSampler, type SliceSet, subsetSlices } from "../data/slices.js";
import { fjError } from "../errors.js";
import type { Joint } from "../joints.js";
import { type LabelSpec, labelSpecFromDatasetJson } from "../model/labels.js";
import type { JointData, SamplerFactory } from "../model/trainer.js";
import type { TrainingConfig } from "./config.js";
import { type SiteFold, siteFold, sitePermutation } from "./folds.js";

export interface ValidatedData {
  dataset: SiteDataset;
  labels: LabelSpec;
  exams: number;
}

export interface SiteData extends ValidatedData {
  slices: SliceSet;
}

/** A fold's split of a site's exams, by dataset case id (never sent: only metrics are). */
export interface FoldSplit {
  train: string[];
  validation: string;
  test: string;
  /** π_k: the seeded permutation of exam indices (reported locally, never transmitted). */
  permutation: number[];
}

/**
 * Validates the dataset completely (fails on the first problem, naming the file) and lists its
 * exams in sorted id order — the order the fold plan indexes.
 */
export async function validateSiteData(dir: string, joint: Joint): Promise<ValidatedData> {
  const report = await checkDataset(dir);
  if (!report.ok) {
    const p = report.problems[0];
    const more = report.problems.length > 1 ? ` (and ${report.problems.length - 1} more problems)` : "";
    throw fjError(p.code, `${p.message}${more}`, { file: p.file });
  }
  const dataset = await loadDataset(dir);
  if (dataset.joint !== undefined && dataset.joint !== joint) {
    throw fjError("FJ_DATA_JOINT", `joint is ${dataset.joint}, this site was started as --joint ${joint}`, {
      file: `${dataset.root}/dataset.json`,
    });
  }
  const labels = labelSpecFromDatasetJson(dataset.labels, `${dataset.root}/dataset.json`);
  const cases = [...dataset.cases].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { dataset: { ...dataset, cases }, labels, exams: cases.length };
}

/** Every exam's slices at the study's size (exams in sorted id order). */
export async function loadSiteSlices(valid: ValidatedData, size: number): Promise<SiteData> {
  return { ...valid, slices: await loadSlices(valid.dataset, { size }) };
}

/** The exam-index split of `site` in fold `fold` (π_k from the study seed and the site name). */
export function siteSplit(
  site: string,
  seed: number,
  exams: number,
  fold: number,
): SiteFold & { permutation: number[] } {
  const permutation = sitePermutation(seed, site, exams);
  return { ...siteFold(permutation, fold), permutation };
}

/** The case-id split of `site` in fold `fold`. */
export function foldSplit(data: SiteData, site: string, seed: number, fold: number): FoldSplit {
  const s = siteSplit(site, seed, data.exams, fold);
  const ids = data.slices.caseIds;
  return {
    train: s.train.map((i) => ids[i]),
    validation: ids[s.validation],
    test: ids[s.test],
    permutation: s.permutation,
  };
}

/** Training and validation slices of `site` in fold `fold`, with the split they come from. */
export function foldData(
  data: SiteData,
  site: string,
  seed: number,
  fold: number,
): JointData<SliceSet> & { split: FoldSplit } {
  const split = foldSplit(data, site, seed, fold);
  return {
    train: subsetSlices(data.slices, split.train),
    val: subsetSlices(data.slices, [split.validation]),
    labels: data.labels,
    split,
  };
}

/**
 * The trainer's sampler factory for a study: src/data/slices.ts makeBatchSampler with the study's
 * augmentation ranges and foreground share (null: uniform over all slices).
 */
export function samplerFactory(training: TrainingConfig): SamplerFactory<SliceSet> {
  const a = training.augment;
  const augment = a.enabled ? { rotationDeg: a.rotationDeg, shift: a.shift, flip: a.flip } : false;
  const foregroundFraction = training.foregroundFraction ?? undefined;
  return (set, o) => makeBatchSampler(set, { ...o, augment, foregroundFraction });
}
