import { assertDims, type Dims3, type Mask, maskOf, type Spacing3, type VoxelArray } from "../volume/grid.js";
import { binaryMetrics, type MetricOptions, sliceMetrics } from "./metrics.js";
import { type PostprocessOptions, postprocessLabelMap } from "./postprocess.js";
import type { ExamResult, LabelMetrics } from "./types.js";

/**
 * Everything a site computes for one test exam, in one call: post-process the stacked prediction
 * into a label map (unless disabled; `postprocessLabelMap`: largest component and closing per bone,
 * one label per voxel), 3D metrics per bone, per-slice 2D scores. The metrics are those of the
 * label map `fedjoint segment` writes for the same model and exam. Pure: arrays in, ExamResult out.
 */
export interface EvaluateExamOptions {
  /** Post-processing options, or false to evaluate the raw prediction. Default: the paper's. */
  postprocess?: PostprocessOptions | false;
  metrics?: MetricOptions;
  /** Slicing axis for the 2D scores; default 2. */
  axis?: 0 | 1 | 2;
  /** Index of the exam within the fold's test set; default 0. */
  exam?: number;
}

export function evaluateExam(
  pred: VoxelArray,
  gt: VoxelArray,
  dims: Dims3,
  spacing: Spacing3,
  labels: Readonly<Record<string, number>>,
  options: EvaluateExamOptions = {},
): ExamResult {
  assertDims(dims, pred.length, "evaluateExam(pred)");
  assertDims(dims, gt.length, "evaluateExam(gt)");
  const entries = Object.entries(labels).filter(([, v]) => v !== 0);
  const values = entries.map(([, v]) => v);
  const map =
    options.postprocess === false ? pred : postprocessLabelMap(pred, dims, values, options.postprocess ?? {});
  const masks: Map<number, Mask> = new Map(values.map((v) => [v, maskOf(map, v)]));
  const out: Record<string, LabelMetrics> = {};
  for (const [name, value] of entries) {
    out[name] = binaryMetrics(masks.get(value)!, maskOf(gt, value), dims, spacing, options.metrics);
  }
  return {
    exam: options.exam ?? 0,
    labels: out,
    slices: sliceMetrics(masks, gt, dims, values, options.axis ?? 2),
  };
}
