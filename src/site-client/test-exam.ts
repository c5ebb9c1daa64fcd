/**
 * A trained model on a site's leave-one-out test exam: predict the exam's slices, stack them back
 * onto the exam's grid, post-process (largest 3D component per bone, closing: the label map
 * `fedjoint segment` writes) and compute the 3D metrics and per-slice scores (src/eval). The
 * site-client evaluates its folds with it, and the quality benchmark scores its centralised and
 * individual runs with it, so that every run is measured by the same pipeline.
 */
import { readNifti } from "../data/nifti.js";
import { type SliceSet, subsetSlices } from "../data/slices.js";
import { evaluateExam } from "../eval/exam.js";
import { postprocessLabelMap } from "../eval/postprocess.js";
import { stackLabels } from "../eval/stack.js";
import type { ExamResult } from "../eval/types.js";
import type { Joint } from "../joints.js";
import type { SegmentationTrainer } from "../model/trainer.js";
import { foldSplit, type SiteData } from "../study/site-data.js";
import type { Dims3 } from "../volume/grid.js";

export interface TestExamEvaluation {
  /** The metrics (exam index 0: never an id). */
  test: ExamResult;
  /** The exam's id and its files (stay at the site). */
  id: string;
  imageFile: string;
  /** Ground truth and the post-processed prediction on the exam's grid. */
  truth: ArrayLike<number>;
  prediction: Uint8Array;
  dims: Dims3;
}

export async function evaluateTestExam(
  trainer: SegmentationTrainer<SliceSet>,
  o: { site: string; joint: Joint; data: SiteData; seed: number; fold: number },
): Promise<TestExamEvaluation> {
  const id = foldSplit(o.data, o.site, o.seed, o.fold).test;
  const slices = subsetSlices(o.data.slices, [id]);
  const size = slices.size;
  const px = size * size;
  const pred = await trainer.predictSlices(o.joint, slices.images);
  const planes = Array.from({ length: slices.count }, (_, i) => pred.subarray(i * px, (i + 1) * px));
  const c = o.data.dataset.cases.find((x) => x.id === id)!;
  const label = await readNifti(c.label);
  const volume = stackLabels(planes, { dims: label.dims, trainSize: [size, size], axis: slices.axis });
  const values = Object.values(o.data.dataset.labels).filter((v) => v !== 0);
  const prediction = postprocessLabelMap(volume, label.dims, values);
  const test = evaluateExam(prediction, label.data, label.dims, label.spacing, o.data.dataset.labels, {
    axis: slices.axis,
    postprocess: false,
  });
  return { test, id, imageFile: c.image, truth: label.data, prediction, dims: label.dims };
}
