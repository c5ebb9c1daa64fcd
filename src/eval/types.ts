import { z } from "zod";

/**
 * Evaluation data types. `StudyResults` is what a study produces (the coordinator for federated
 * studies, `fedjoint train --folds` centrally) and what `writeReport` turns into report.md,
 * metrics.csv and metrics.json. Everything in it may leave a site (DESIGN §4): metrics keyed by
 * fold index, per-slice scores without slice/exam identifiers, anonymised unit embeddings. Never
 * file names, exam ids, images or predictions.
 */

export const METRIC_NAMES = ["dice", "sensitivity", "specificity", "mssd", "assd", "ravd"] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** Units of each metric as stored (reports show Dice/sens/spec in % like the paper). */
export const METRIC_UNITS: Record<MetricName, "fraction" | "mm" | "%"> = {
  dice: "fraction",
  sensitivity: "fraction",
  specificity: "fraction",
  mssd: "mm",
  assd: "mm",
  ravd: "%",
};

/** Lower is better for these; higher for the others. */
export const LOWER_IS_BETTER: ReadonlySet<MetricName> = new Set(["mssd", "assd", "ravd"]);

export const SLICE_METRIC_NAMES = ["dice", "sensitivity", "specificity"] as const;
export type SliceMetricName = (typeof SLICE_METRIC_NAMES)[number];

/**
 * Definition of ASSD: "pooled" = the paper's eq. S5 = MedPy ≥ 0.5 (the default everywhere);
 * "directed" = the mean of the two directed averages (MedPy ≤ 0.4), only on request.
 */
export const ASSD_DEFINITIONS = ["pooled", "directed"] as const;
export type AssdDefinition = (typeof ASSD_DEFINITIONS)[number];

/** How the masks compared: see `src/eval/metrics.ts` for the values taken in each empty case. */
export type MetricStatus = "ok" | "emptyPred" | "emptyGt" | "bothEmpty";

/** 3D metrics of one label (bone) of one exam, on the post-processed mask. */
export interface LabelMetrics {
  /** 2|P∩G| / (|P|+|G|), in [0, 1]. */
  dice: number;
  /** |P∩G| / |G|, in [0, 1]. */
  sensitivity: number;
  /** |¬P∩¬G| / |¬G|, in [0, 1]. */
  specificity: number;
  /** Symmetric Hausdorff distance between surfaces, mm. */
  mssd: number;
  /**
   * Average symmetric surface distance, mm: both directions' surface distances pooled (paper eq. S5,
   * MedPy ≥ 0.5) unless computed with the "directed" option (`src/eval/metrics.ts`).
   */
  assd: number;
  /** 100·||P|−|G||/|G|, %; null when the ground truth is empty and the prediction is not. */
  ravd: number | null;
  predVoxels: number;
  gtVoxels: number;
  status: MetricStatus;
}

/**
 * Per-slice 2D scores of one exam (paper Table 4), slices along `axis`, only slices whose ground
 * truth holds at least one structure; arrays have equal length, values in [0, 1].
 */
export interface SliceMetrics {
  axis: 0 | 1 | 2;
  dice: number[];
  sensitivity: number[];
  specificity: number[];
}

/** One test exam of one site in one fold, as evaluated at the site. */
export interface ExamResult {
  /** Position of the exam in the site's test set for this fold (0 in leave-one-out). Not an id. */
  exam: number;
  /** Metrics per label, keyed by label name from dataset.json (e.g. "femur"). */
  labels: Record<string, LabelMetrics>;
  slices: SliceMetrics;
}

/**
 * A label's metrics as they leave the site (DESIGN §4): every metric — RAVD and Dice included —
 * but not the voxel counts, which are the volumes of the exam's bones.
 */
export type ReportedLabelMetrics = Omit<LabelMetrics, "predVoxels" | "gtVoxels">;

/** An exam's result as it leaves the site and as studies publish it (no voxel counts). */
export interface ReportedExam {
  exam: number;
  labels: Record<string, ReportedLabelMetrics>;
  slices: SliceMetrics;
}

/** The exam's result without what stays at the site (per-bone voxel counts). */
export function reportedExam(e: ExamResult): ReportedExam {
  const labels: Record<string, ReportedLabelMetrics> = {};
  for (const [name, m] of Object.entries(e.labels)) {
    const { predVoxels: _p, gtVoxels: _g, ...rest } = m;
    labels[name] = rest;
  }
  return { exam: e.exam, labels, slices: e.slices };
}

/** Unit vectors per scale ("s1" … "s9"), e.g. `{ s1: [[…32 numbers], …], s5: …, s9: … }`. */
export type EmbeddingSet = Record<string, number[][]>;

/** What one site reports for one fold of one method. */
export interface SiteFoldResult {
  /** Site identity (certificate subject or configured site name). */
  site: string;
  /** Domain of the site: ankle | knee | shoulder | … */
  joint: string;
  exams: ReportedExam[];
  /** Optional embeddings of training/validation slices (anonymised unit vectors) per scale. */
  embeddings?: EmbeddingSet;
}

export interface FoldResult {
  /** Fold index i of the leave-one-out plan (see `src/eval/folds.ts`). */
  fold: number;
  sites: SiteFoldResult[];
}

/** All folds of one method (individual / shared / dsl / dsl+msc / dsl+msc+mjap / …). */
export interface MethodResults {
  method: string;
  /** Backbone, e.g. "att-unet". */
  backbone?: string;
  folds: FoldResult[];
}

/** The fold plan as reported with the results (permutations π_k per site; DESIGN §3). */
export interface ReportedFoldPlan {
  seed: string;
  nFolds: number;
  permutations: Record<string, number[]>;
}

export const STUDY_RESULTS_SCHEMA = "fedjoint.study-results/1" as const;

/** Everything a study publishes. One study usually holds one method; a comparison holds several. */
export interface StudyResults {
  schema: typeof STUDY_RESULTS_SCHEMA;
  study: string;
  /** ISO time of creation. */
  createdAt?: string;
  /** How the exams' ASSD was computed; absent = "pooled" (the default of `src/eval/metrics.ts`). */
  assdDefinition?: AssdDefinition;
  foldPlan?: ReportedFoldPlan;
  methods: MethodResults[];
}

// ---- zod schemas (validate at the edge: files read back, messages from sites) -------------------

const finite = z.number().refine(Number.isFinite, "must be a finite number");
const unit = finite.refine((v) => v >= 0 && v <= 1, "must be in [0, 1]");

export const labelMetricsSchema = z.object({
  dice: unit,
  sensitivity: unit,
  specificity: unit,
  mssd: finite.refine((v) => v >= 0, "must be ≥ 0"),
  assd: finite.refine((v) => v >= 0, "must be ≥ 0"),
  ravd: finite.refine((v) => v >= 0, "must be ≥ 0").nullable(),
  predVoxels: z.number().int().nonnegative(),
  gtVoxels: z.number().int().nonnegative(),
  status: z.enum(["ok", "emptyPred", "emptyGt", "bothEmpty"]),
});

export const sliceMetricsSchema = z
  .object({
    axis: z.union([z.literal(0), z.literal(1), z.literal(2)]),
    dice: z.array(unit),
    sensitivity: z.array(unit),
    specificity: z.array(unit),
  })
  .refine(
    (s) => s.dice.length === s.sensitivity.length && s.dice.length === s.specificity.length,
    "dice, sensitivity and specificity must have the same length",
  );

export const examResultSchema = z.object({
  exam: z.number().int().nonnegative(),
  labels: z.record(z.string(), labelMetricsSchema),
  slices: sliceMetricsSchema,
});

/** A reported label (files read back: unknown keys such as old voxel counts are dropped). */
export const reportedLabelMetricsSchema = labelMetricsSchema.omit({ predVoxels: true, gtVoxels: true });

export const reportedExamSchema = z.object({
  exam: z.number().int().nonnegative(),
  labels: z.record(z.string(), reportedLabelMetricsSchema),
  slices: sliceMetricsSchema,
});

/**
 * An exam result as a site sends it: the reported metrics and nothing else — a message carrying
 * voxel counts (or any other field) is refused, so nothing beyond DESIGN §4 is stored.
 */
export const transmittedExamSchema = z.strictObject({
  exam: z.number().int().nonnegative(),
  labels: z.record(z.string(), reportedLabelMetricsSchema.strict()),
  slices: sliceMetricsSchema,
});

export const embeddingSetSchema = z.record(z.string(), z.array(z.array(finite)));

export const siteFoldResultSchema = z.object({
  site: z.string().min(1),
  joint: z.string().min(1),
  exams: z.array(reportedExamSchema),
  embeddings: embeddingSetSchema.optional(),
});

export const foldResultSchema = z.object({
  fold: z.number().int().nonnegative(),
  sites: z.array(siteFoldResultSchema),
});

export const methodResultsSchema = z.object({
  method: z.string().min(1),
  backbone: z.string().optional(),
  folds: z.array(foldResultSchema),
});

export const studyResultsSchema = z.object({
  schema: z.literal(STUDY_RESULTS_SCHEMA),
  study: z.string().min(1),
  createdAt: z.string().optional(),
  assdDefinition: z.enum(ASSD_DEFINITIONS).optional(),
  foldPlan: z
    .object({
      seed: z.string(),
      nFolds: z.number().int().positive(),
      permutations: z.record(z.string(), z.array(z.number().int().nonnegative())),
    })
    .optional(),
  methods: z.array(methodResultsSchema),
});

// Compile-time check that the schemas and the interfaces agree.
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const _studyResultsAgree: Equals<z.infer<typeof studyResultsSchema>, StudyResults> = true;
const _labelMetricsAgree: Equals<z.infer<typeof labelMetricsSchema>, LabelMetrics> = true;
void _studyResultsAgree;
void _labelMetricsAgree;
