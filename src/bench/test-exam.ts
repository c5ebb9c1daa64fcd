/**
 * A trained model on a site's leave-one-out test exam, as the site-client evaluates it
 * (src/site-client/client.ts): predict the exam's slices, stack them back onto the exam's grid,
 * post-process (largest 3D component, closing) and compute the 3D metrics per bone. Used by the
 * quality benchmark for its centralised and individual runs, so that every run is scored by the
 * same pipeline as a federated site.
 */
import { readNifti } from "../data/nifti.js";
import type { SliceSet } from "../data/slices.js";
import { subsetSlices } from "../data/slices.js";
import { evaluateExam } from "../eval/exam.js";
import { stackLabels } from "../eval/stack.js";
import type { ExamResult } from "../eval/types.js";
import type { Joint } from "../joints.js";
import type { SegmentationTrainer } from "../model/trainer.js";
import { foldSplit, type SiteData } from "../study/site-data.js";

export async function evaluateTestExam(
  trainer: SegmentationTrainer<SliceSet>,
  o: { site: string; joint: Joint; data: SiteData; seed: number; fold: number },
): Promise<ExamResult> {
  const id = foldSplit(o.data, o.site, o.seed, o.fold).test;
  const slices = subsetSlices(o.data.slices, [id]);
  const size = slices.size;
  const px = size * size;
  const pred = trainer.predictSlices(o.joint, slices.images);
  const planes = Array.from({ length: slices.count }, (_, i) => pred.subarray(i * px, (i + 1) * px));
  const c = o.data.dataset.cases.find((x) => x.id === id)!;
  const label = await readNifti(c.label);
  const volume = stackLabels(planes, { dims: label.dims, trainSize: [size, size], axis: slices.axis });
  return evaluateExam(volume, label.data, label.dims, label.spacing, o.data.dataset.labels, {
    axis: slices.axis,
  });
}
