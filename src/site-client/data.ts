/**
 * The site's data, prepared once: the dataset validated (every problem names its file), every
 * exam's slices loaded, and per fold the leave-one-out split (π_k from the study seed and this
 * site's name, src/eval/folds.ts) into training and validation slices. Nothing here leaves the site.
 */

import { checkDataset, loadDataset, type SiteDataset } from "../data/dataset.js";
import { loadSlices, makeBatchSampler, type SliceSet, subsetSlices } from "../data/slices.js";
import { DataError } from "../errors.js";
import { siteFold, sitePermutation } from "../eval/folds.js";
import type { Joint } from "../joints.js";
import { type LabelSpec, labelSpecFromDatasetJson } from "../model/labels.js";
import type { JointData, SamplerFactory, TrainerSlices } from "../model/trainer.js";

export interface ValidatedData {
  dataset: SiteDataset;
  labels: LabelSpec;
  exams: number;
}

export interface SiteData extends ValidatedData {
  slices: SliceSet;
}

/** Validates the dataset completely before anything else (fails on the first problem, naming the file). */
export async function validateSiteData(dir: string, joint: Joint): Promise<ValidatedData> {
  const report = await checkDataset(dir);
  if (!report.ok) {
    const p = report.problems[0];
    const more = report.problems.length > 1 ? ` (and ${report.problems.length - 1} more problems)` : "";
    throw new DataError(p.code, p.file, `${p.message}${more}`);
  }
  const dataset = await loadDataset(dir);
  if (dataset.joint !== undefined && dataset.joint !== joint) {
    throw new DataError(
      "FJ_DATA_JOINT",
      `${dataset.root}/dataset.json`,
      `joint is ${dataset.joint}, this site was started as --joint ${joint}`,
    );
  }
  const labels = labelSpecFromDatasetJson(dataset.labels, `${dataset.root}/dataset.json`);
  const cases = [...dataset.cases].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { dataset: { ...dataset, cases }, labels, exams: cases.length };
}

/** Every exam's slices at the study's size (exams in sorted id order, as the fold plan indexes them). */
export async function loadSiteSlices(valid: ValidatedData, size: number): Promise<SiteData> {
  return { ...valid, slices: await loadSlices(valid.dataset, { size }) };
}

/** Id of this site's test exam in fold `fold` (never sent: only its metrics are). */
export function testCaseOf(data: SiteData, site: string, seed: number, fold: number): string {
  return data.slices.caseIds[siteFold(sitePermutation(seed, site, data.exams), fold).test];
}

/** Training and validation slices of this site in fold `fold` (exam ids never leave the site). */
export function foldData(
  data: SiteData,
  site: string,
  seed: number,
  fold: number,
): JointData & { trainExams: number } {
  const perm = sitePermutation(seed, site, data.exams);
  const split = siteFold(perm, fold);
  const ids = data.slices.caseIds;
  const train = subsetSlices(
    data.slices,
    split.train.map((i) => ids[i]),
  );
  const val = subsetSlices(data.slices, [ids[split.validation]]);
  return { train, val: asTrainer(val), labels: data.labels, trainExams: split.train.length };
}

function asTrainer(s: SliceSet): TrainerSlices {
  return { size: s.size, count: s.count, images: s.images, labels: s.labels };
}

/**
 * The trainer's sampler factory: src/data/slices.ts makeBatchSampler with a foreground balance.
 * The training set handed to the trainer is the full SliceSet (foldData), so the cast is exact.
 */
export const samplerFactory: SamplerFactory = (set, options) =>
  makeBatchSampler(set as SliceSet, { ...options, foregroundFraction: 0.75 });
