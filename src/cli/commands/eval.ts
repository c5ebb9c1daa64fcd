import type { Command } from "commander";
import { loadDatasetJson } from "../../data/dataset.js";
import { readNifti } from "../../data/nifti.js";
import { fjError } from "../../errors.js";
import { benchEvaluation } from "../../eval/bench.js";
import { binaryMetrics } from "../../eval/metrics.js";
import { postprocessLabels } from "../../eval/postprocess.js";
import { meanStd } from "../../eval/stats.js";
import {
  ASSD_DEFINITIONS,
  type AssdDefinition,
  type LabelMetrics,
  METRIC_NAMES,
  type MetricName,
} from "../../eval/types.js";
import { planFolds } from "../../study/folds.js";
import { CONNECTIVITIES, type Connectivity, isConnectivity } from "../../volume/components.js";
import { type Dims3, maskOf } from "../../volume/grid.js";
import { printJson } from "../run.js";

export interface MetricsFlags {
  pred: string;
  gt: string;
  labels?: string;
  /** dataset.json (or its folder) declaring the label set the prediction may use. */
  dataset?: string;
  postprocess?: boolean;
  connectivity: string;
  componentConnectivity: string;
  assd?: string;
  json?: boolean;
}

function parseConnectivity(flag: string, v: string): Connectivity {
  const n = Number(v);
  if (isConnectivity(n)) return n;
  throw fjError(
    "FJ_CLI_ARG",
    `${flag} is '${v}', expected ${CONNECTIVITIES.join(", ")} (neighbours; scipy/MedPy connectivity 1, 2, 3)`,
  );
}

function parseAssd(v: string | undefined): AssdDefinition {
  if (v === undefined) return "pooled";
  if ((ASSD_DEFINITIONS as readonly string[]).includes(v)) return v as AssdDefinition;
  throw fjError("FJ_CLI_ARG", `--assd is '${v}', expected ${ASSD_DEFINITIONS.join(" or ")}`);
}

function parseLabels(v: string): number[] {
  const parts = v.split(",").map((s) => s.trim());
  const out = parts.map(Number);
  if (
    parts.length === 0 ||
    out.some((n, i) => parts[i] === "" || !Number.isInteger(n) || n < 1 || n > 65535)
  ) {
    throw fjError(
      "FJ_CLI_ARG",
      `--labels is '${v}', expected a comma-separated list of integers ≥ 1, e.g. 1,2,3`,
    );
  }
  return [...new Set(out)];
}

const MAX_LISTED = 8;

function listValues(values: readonly number[]): string {
  const head = values.slice(0, MAX_LISTED).join(", ");
  return values.length > MAX_LISTED ? `${head}, … (${values.length} values)` : head;
}

/**
 * The label values of a label map. Refuses a file that is not one: negative or non-integer
 * values (an image or a probability map) are one FJ_EVAL_LABEL_VALUES line naming the file.
 */
function labelValues(data: Float32Array, file: string, flag: string): Set<number> {
  const seen = new Set<number>();
  let bad = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (Number.isInteger(v) && v >= 0) seen.add(v);
    else {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (bad > 0) {
    throw fjError(
      "FJ_EVAL_LABEL_VALUES",
      `${bad} of ${data.length} voxels are not labels (voxel ${first} is ${data[first]}); ${flag} must be a label map of non-negative integers, not an image or a probability map`,
      { file },
    );
  }
  return seen;
}

function sameSpacing(a: readonly number[], b: readonly number[]): boolean {
  return a.every((v, i) => Math.abs(v - b[i]) <= 1e-5 * Math.max(Math.abs(v), Math.abs(b[i]), 1e-6));
}

function sameAffine(a: number[][], b: number[][]): boolean {
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 4; c++) if (Math.abs(a[r][c] - b[r][c]) > 1e-3) return false;
  return true;
}

const fmt = (v: number[]) => v.map((x) => Number(x.toPrecision(6))).join("×");

export interface EvalMetricsOutput {
  pred: string;
  gt: string;
  dims: Dims3;
  spacing: [number, number, number];
  postprocess: boolean;
  /** Connectivity of the erosion defining surfaces (6, 18, 26). */
  connectivity: Connectivity;
  /** Connectivity of the components kept by --postprocess. */
  componentConnectivity: Connectivity;
  /** "pooled" = paper eq. S5 (MedPy ≥ 0.5), "directed" = mean of directed means (MedPy ≤ 0.4). */
  assdDefinition: AssdDefinition;
  /** Where the label set came from: --labels, dataset.json, or the values of the two files. */
  labelSource: "labels" | "dataset" | "files";
  labels: ({ label: number } & LabelMetrics)[];
  mean: Record<MetricName, number | null>;
}

/**
 * The labels to score. A prediction may only hold labels of the ground truth, or of dataset.json
 * with --dataset; with --labels, exactly those are scored and other values are ignored.
 */
async function scoredLabels(
  f: MetricsFlags,
  pv: Set<number>,
  gv: Set<number>,
): Promise<{ labels: number[]; source: EvalMetricsOutput["labelSource"] }> {
  if (f.labels !== undefined) return { labels: parseLabels(f.labels), source: "labels" };
  let allowed = gv;
  let declaredBy = `--gt ${f.gt}`;
  if (f.dataset !== undefined) {
    const json = await loadDatasetJson(f.dataset);
    allowed = new Set(Object.values(json.labels) as number[]);
    declaredBy = `dataset.json ${f.dataset}`;
    const gtUnknown = [...gv].filter((v) => !allowed.has(v)).sort((a, b) => a - b);
    if (gtUnknown.length > 0) {
      throw fjError(
        "FJ_DATA_LABEL_UNKNOWN",
        `has label ${listValues(gtUnknown)}, ${declaredBy} declares ${listValues([...allowed].sort((a, b) => a - b))}`,
        { file: f.gt },
      );
    }
  }
  const unknown = [...pv].filter((v) => v !== 0 && !allowed.has(v)).sort((a, b) => a - b);
  if (unknown.length > 0) {
    throw fjError(
      "FJ_EVAL_LABEL_UNKNOWN",
      `holds label ${listValues(unknown)}, which ${declaredBy} does not (${listValues([...allowed].sort((a, b) => a - b))}); pass --labels to choose the labels to score, or --dataset`,
      { file: f.pred },
    );
  }
  const labels = [...new Set([...pv, ...gv])].filter((v) => v !== 0).sort((a, b) => a - b);
  return { labels, source: f.dataset === undefined ? "files" : "dataset" };
}

export async function evalMetrics(f: MetricsFlags): Promise<EvalMetricsOutput> {
  const connectivity = parseConnectivity("--connectivity", f.connectivity);
  const componentConnectivity = parseConnectivity("--component-connectivity", f.componentConnectivity);
  const assdDefinition = parseAssd(f.assd);
  if (f.labels !== undefined) parseLabels(f.labels);
  const [pred, gt] = await Promise.all([readNifti(f.pred), readNifti(f.gt)]);
  if (pred.dims.some((d, i) => d !== gt.dims[i])) {
    throw fjError(
      "FJ_EVAL_GRID_MISMATCH",
      `--pred ${f.pred} has dims ${pred.dims.join("×")} but --gt ${f.gt} has ${gt.dims.join("×")}; both must be on the same grid`,
    );
  }
  if (!sameSpacing(pred.spacing, gt.spacing)) {
    throw fjError(
      "FJ_EVAL_GRID_MISMATCH",
      `--pred ${f.pred} has spacing ${fmt(pred.spacing)} mm but --gt ${f.gt} has ${fmt(gt.spacing)} mm; both must be on the same grid`,
    );
  }
  if (!sameAffine(pred.affine, gt.affine)) {
    throw fjError(
      "FJ_EVAL_GRID_MISMATCH",
      `--pred ${f.pred} and --gt ${f.gt} have different voxel-to-world affines (origin or orientation); both must be on the same grid`,
    );
  }
  const pv = labelValues(pred.data, f.pred, "--pred");
  const gv = labelValues(gt.data, f.gt, "--gt");
  const { labels, source } = await scoredLabels(f, pv, gv);
  if (labels.length === 0) {
    throw fjError(
      "FJ_EVAL_NO_LABELS",
      `${f.gt} and ${f.pred} contain only background; pass --labels to evaluate anyway`,
    );
  }
  const dims = pred.dims;
  const masks = f.postprocess
    ? postprocessLabels(pred.data, dims, labels, { componentConnectivity })
    : new Map(labels.map((l) => [l, maskOf(pred.data, l)]));
  const rows = labels.map((label) => ({
    label,
    ...binaryMetrics(masks.get(label)!, maskOf(gt.data, label), dims, gt.spacing, {
      connectivity,
      assd: assdDefinition,
    }),
  }));
  const mean = Object.fromEntries(
    METRIC_NAMES.map((m) => {
      const vals = rows.map((r) => r[m]).filter((v): v is number => v !== null);
      return [m, vals.length > 0 ? meanStd(vals).mean : null];
    }),
  ) as Record<MetricName, number | null>;
  return {
    pred: f.pred,
    gt: f.gt,
    dims,
    spacing: gt.spacing,
    postprocess: f.postprocess === true,
    connectivity,
    componentConnectivity,
    assdDefinition,
    labelSource: source,
    labels: rows,
    mean,
  };
}

function renderTable(o: EvalMetricsOutput): string {
  const head = [
    "label",
    "dice",
    "sens",
    "spec",
    "mssd_mm",
    "assd_mm",
    "ravd_%",
    "pred_vox",
    "gt_vox",
    "status",
  ];
  const num = (v: number | null, d: number) => (v === null ? "n/a" : v.toFixed(d));
  const lines = o.labels.map((r) =>
    [
      String(r.label),
      num(r.dice, 4),
      num(r.sensitivity, 4),
      num(r.specificity, 4),
      num(r.mssd, 3),
      num(r.assd, 3),
      num(r.ravd, 2),
      String(r.predVoxels),
      String(r.gtVoxels),
      r.status,
    ].join("\t"),
  );
  const m = o.mean;
  lines.push(
    [
      "mean",
      num(m.dice, 4),
      num(m.sensitivity, 4),
      num(m.specificity, 4),
      num(m.mssd, 3),
      num(m.assd, 3),
      num(m.ravd, 2),
    ].join("\t"),
  );
  const info = `# grid ${o.dims.join("×")}, spacing ${fmt(o.spacing)} mm, post-processing ${o.postprocess ? `on (${o.componentConnectivity}-connected components)` : "off"}, surface connectivity ${o.connectivity}, ASSD ${o.assdDefinition === "pooled" ? "pooled (paper eq. S5)" : "directed (mean of directed means, MedPy ≤ 0.4)"}`;
  return `${info}\n${head.join("\t")}\n${lines.join("\n")}\n`;
}

function parseDims(v: string): Dims3 {
  const p = v.split(/[,x×]/).map(Number);
  if (p.length !== 3 || p.some((n) => !Number.isInteger(n) || n < 8)) {
    throw fjError("FJ_CLI_ARG", `--dims is '${v}', expected three integers ≥ 8, e.g. 512,512,300`);
  }
  return [p[0], p[1], p[2]];
}

export function registerEval(program: Command): void {
  const evalCmd = program.command("eval").description("Evaluation: 3D metrics, post-processing, benchmarks");
  evalCmd
    .command("metrics")
    .description(
      "Per-label and mean Dice, sensitivity, specificity, MSSD, ASSD, RAVD of a prediction against a ground truth",
    )
    .requiredOption("--pred <file>", "predicted label map (.nii or .nii.gz)")
    .requiredOption("--gt <file>", "ground-truth label map on the same grid")
    .option(
      "--labels <list>",
      "labels to score, e.g. 1,2,3 (default: every non-zero value present; the prediction may only hold the ground truth's labels)",
    )
    .option("--dataset <dataset.json>", "dataset.json (or its folder) whose labels the prediction may hold")
    .option("--postprocess", "largest 3D connected component per label, then closing with a 5×5×5 ball")
    .option("--connectivity <n>", "neighbours of the erosion defining surfaces: 6, 18 or 26 (full)", "26")
    .option(
      "--component-connectivity <n>",
      "neighbours of components for --postprocess: 6 (scipy label default), 18 or 26",
      "6",
    )
    .option(
      "--assd <definition>",
      "pooled (paper eq. S5, MedPy ≥ 0.5) or directed (mean of the two directed means, MedPy ≤ 0.4)",
      "pooled",
    )
    .option("--json", "print one JSON line")
    .action(async (f: MetricsFlags) => {
      const out = await evalMetrics(f);
      if (f.json) printJson(out);
      else process.stdout.write(renderTable(out));
    });
  evalCmd
    .command("folds")
    .description(
      "Print the leave-one-out fold plan: π_k per site; fold i tests π_k(i), validates on π_k(i+1)",
    )
    .requiredOption(
      "--site <name=count...>",
      "site name and its number of exams, e.g. --site ankle=12 knee=14",
    )
    .requiredOption("--seed <seed>", "seed of the permutations")
    .option("--folds <n>", "number of folds (default: min exams per site)")
    .option("--json", "print one JSON line")
    .action((f: { site: string[]; seed: string; folds?: string; json?: boolean }) => {
      const sites = f.site.map((s) => {
        const m = /^([^=]+)=(\d+)$/.exec(s);
        if (m === null) throw fjError("FJ_CLI_ARG", `--site is '${s}', expected name=count, e.g. knee=14`);
        return { site: m[1], nExams: Number(m[2]) };
      });
      let folds: number | undefined;
      if (f.folds !== undefined) {
        folds = Number(f.folds);
        if (!Number.isInteger(folds))
          throw fjError("FJ_CLI_ARG", `--folds is '${f.folds}', expected an integer`);
      }
      const plan = planFolds({ sites, seed: f.seed, folds });
      if (f.json) {
        printJson(plan);
        return;
      }
      const lines = [`seed ${plan.seed}, ${plan.nFolds} folds`];
      for (const { site } of sites) lines.push(`π[${site}] = ${plan.permutations[site].join(" ")}`);
      for (const fold of plan.folds) {
        const parts = sites.map(({ site }) => {
          const s = fold.sites[site];
          return `${site}: test ${s.test}, val ${s.validation}, train ${s.train.join(" ")}`;
        });
        lines.push(`fold ${fold.index}: ${parts.join(" | ")}`);
      }
      process.stdout.write(`${lines.join("\n")}\n`);
    });
  evalCmd
    .command("bench")
    .description("Time stacking, post-processing and metrics on a synthetic volume")
    .option("--dims <X,Y,Z>", "volume size", "512,512,300")
    .option("--train-size <n>", "training slice size", "256")
    .option("--json", "print one JSON line")
    .action((f: { dims: string; trainSize: string; json?: boolean }) => {
      const trainSize = Number(f.trainSize);
      if (!Number.isInteger(trainSize) || trainSize < 8) {
        throw fjError("FJ_CLI_ARG", `--train-size is '${f.trainSize}', expected an integer ≥ 8`);
      }
      const r = benchEvaluation({ dims: parseDims(f.dims), trainSize });
      if (f.json) printJson(r);
      else
        process.stdout.write(
          `volume ${r.dims.join("×")} (${r.voxels} voxels), ${r.labels} labels\n` +
            `stack (bilinear + argmax): ${r.stackSeconds.toFixed(2)} s\n` +
            `post-process (largest component + ball(2) closing): ${r.postprocessSeconds.toFixed(2)} s\n` +
            `metrics (3D, all labels): ${r.metricsSeconds.toFixed(2)} s\n` +
            `total: ${r.totalSeconds.toFixed(2)} s wall, ${r.cpuSeconds.toFixed(2)} s CPU (mean Dice ${r.meanDice.toFixed(4)})\n`,
        );
    });
}
