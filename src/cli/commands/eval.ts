import type { Command } from "commander";
import { readNifti } from "../../data/nifti.js";
import { InputError } from "../../errors.js";
import { benchEvaluation } from "../../eval/bench.js";
import { binaryMetrics } from "../../eval/metrics.js";
import type { Connectivity } from "../../eval/morphology.js";
import { postprocessLabels } from "../../eval/postprocess.js";
import { meanStd } from "../../eval/stats.js";
import { type LabelMetrics, METRIC_NAMES, type MetricName } from "../../eval/types.js";
import { type Dims3, maskOf } from "../../eval/volume.js";
import { planFolds } from "../../study/folds.js";
import { printJson } from "../run.js";

interface MetricsFlags {
  pred: string;
  gt: string;
  labels?: string;
  postprocess?: boolean;
  connectivity: string;
  componentConnectivity: string;
  json?: boolean;
}

function parseConnectivity(flag: string, v: string): Connectivity {
  if (v === "1" || v === "2" || v === "3") return Number(v) as Connectivity;
  throw new InputError("FJ_CLI_ARG", `${flag} is '${v}', expected 1, 2 or 3`);
}

function parseLabels(v: string): number[] {
  const parts = v.split(",").map((s) => s.trim());
  const out = parts.map(Number);
  if (
    parts.length === 0 ||
    out.some((n, i) => parts[i] === "" || !Number.isInteger(n) || n < 1 || n > 65535)
  ) {
    throw new InputError(
      "FJ_CLI_ARG",
      `--labels is '${v}', expected a comma-separated list of integers ≥ 1, e.g. 1,2,3`,
    );
  }
  return [...new Set(out)];
}

function labelValues(data: Float32Array, file: string): Set<number> {
  const seen = new Set<number>();
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isInteger(v)) {
      throw new InputError(
        "FJ_EVAL_LABEL_VALUES",
        `${file}: voxel ${i} has value ${v}; a label map must hold integers (is this a probability map or an image?)`,
      );
    }
    seen.add(v);
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
  connectivity: Connectivity;
  labels: ({ label: number } & LabelMetrics)[];
  mean: Record<MetricName, number | null>;
}

export async function evalMetrics(f: MetricsFlags): Promise<EvalMetricsOutput> {
  const connectivity = parseConnectivity("--connectivity", f.connectivity);
  const componentConnectivity = parseConnectivity("--component-connectivity", f.componentConnectivity);
  const requested = f.labels === undefined ? undefined : parseLabels(f.labels);
  const [pred, gt] = await Promise.all([readNifti(f.pred), readNifti(f.gt)]);
  if (pred.dims.some((d, i) => d !== gt.dims[i])) {
    throw new InputError(
      "FJ_EVAL_GRID_MISMATCH",
      `--pred ${f.pred} has dims ${pred.dims.join("×")} but --gt ${f.gt} has ${gt.dims.join("×")}; both must be on the same grid`,
    );
  }
  if (!sameSpacing(pred.spacing, gt.spacing)) {
    throw new InputError(
      "FJ_EVAL_GRID_MISMATCH",
      `--pred ${f.pred} has spacing ${fmt(pred.spacing)} mm but --gt ${f.gt} has ${fmt(gt.spacing)} mm; both must be on the same grid`,
    );
  }
  if (!sameAffine(pred.affine, gt.affine)) {
    throw new InputError(
      "FJ_EVAL_GRID_MISMATCH",
      `--pred ${f.pred} and --gt ${f.gt} have different voxel-to-world affines (origin or orientation); both must be on the same grid`,
    );
  }
  const pv = labelValues(pred.data, f.pred);
  const gv = labelValues(gt.data, f.gt);
  const labels = requested ?? [...new Set([...pv, ...gv])].filter((v) => v !== 0).sort((a, b) => a - b);
  if (labels.length === 0) {
    throw new InputError(
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
    ...binaryMetrics(masks.get(label)!, maskOf(gt.data, label), dims, gt.spacing, { connectivity }),
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
  const info = `# grid ${o.dims.join("×")}, spacing ${fmt(o.spacing)} mm, post-processing ${o.postprocess ? "on" : "off"}, surface connectivity ${o.connectivity}`;
  return `${info}\n${head.join("\t")}\n${lines.join("\n")}\n`;
}

function parseDims(v: string): Dims3 {
  const p = v.split(/[,x×]/).map(Number);
  if (p.length !== 3 || p.some((n) => !Number.isInteger(n) || n < 8)) {
    throw new InputError("FJ_CLI_ARG", `--dims is '${v}', expected three integers ≥ 8, e.g. 512,512,300`);
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
    .option("--labels <list>", "labels to evaluate, e.g. 1,2,3 (default: every non-zero value present)")
    .option("--postprocess", "largest 3D connected component per label, then closing with a 5×5×5 ball")
    .option("--connectivity <c>", "connectivity of the erosion defining surfaces: 1, 2 or 3 (full)", "3")
    .option(
      "--component-connectivity <c>",
      "connectivity of components for --postprocess (1 = scipy label default)",
      "1",
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
        if (m === null)
          throw new InputError("FJ_CLI_ARG", `--site is '${s}', expected name=count, e.g. knee=14`);
        return { site: m[1], nExams: Number(m[2]) };
      });
      let folds: number | undefined;
      if (f.folds !== undefined) {
        folds = Number(f.folds);
        if (!Number.isInteger(folds))
          throw new InputError("FJ_CLI_ARG", `--folds is '${f.folds}', expected an integer`);
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
        throw new InputError("FJ_CLI_ARG", `--train-size is '${f.trainSize}', expected an integer ≥ 8`);
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
