/**
 * Public API of src/eval (metrics, post-processing, stacking, leave-one-out plan, statistics,
 * reports). Everything here is pure over typed arrays except `writeReport` / `readMetricsFile`.
 */

export {
  type Fold,
  type FoldPlan,
  type FoldPlanInput,
  MIN_EXAMS_PER_SITE,
  planFolds,
  type SiteFold,
  siteFold,
  sitePermutation,
} from "../study/folds.js";
export { CosineAccumulator, type CosineCell, cosineTable } from "./cosine.js";
export { squaredEdt } from "./edt.js";
export { type EvaluateExamOptions, evaluateExam } from "./exam.js";
export { type KsResult, kolmogorovSf, ks2samp } from "./ks.js";
export {
  binaryMetrics,
  labelMapMetrics,
  type MetricOptions,
  maskSetMetrics,
  sliceMetrics,
  surfaceDistances,
  volumeDiagonal,
} from "./metrics.js";
export {
  ballOffsets,
  type Connectivity,
  closeBall,
  erode,
  largestComponent,
  largestComponents,
  surface,
} from "./morphology.js";
export { combineMasks, type PostprocessOptions, postprocessLabels, postprocessMask } from "./postprocess.js";
export {
  type CosineRow,
  type KsRow,
  type LoadedMetrics,
  type MetricsFile,
  mergeMetrics,
  type ReportOptions,
  type ReportSummary,
  type Row3d,
  readMetricsFile,
  type SliceRow,
  summarise,
  type WrittenReport,
  writeReport,
} from "./report.js";
export { type StackGeometry, stackLabels, stackProbabilities } from "./stack.js";
export { type Distribution, distribution, type MeanStd, meanStd, percentile } from "./stats.js";
export * from "./types.js";
export type { Dims3, Mask, Spacing3, VoxelArray } from "./volume.js";
