/**
 * The site's own report, written into its state directory and never sent: what the site
 * reported per leave-one-out fold (its test exam's 3D metrics per bone and its validation Dice —
 * the same numbers it sent the coordinator), figures of its test exams with the ground truth and
 * the prediction overlaid, and the per-round validation Dice curve. Exam ids appear here because
 * the report stays at the site (DESIGN §4, §10).
 *
 * ```
 * <state>/report/
 *   report.md                 tables + figures, readable in any Markdown viewer
 *   metrics.csv, metrics.json per fold × bone × metric; folds, rounds, the model to use
 *   figures/fold<i>-<case>.png  test exam of fold i: image | ground truth | prediction
 *   figures/validation-dice.png validation Dice of the aggregate per round, one line per fold
 *   folds/fold-<i>.json, rounds.jsonl  what the report is made of, written as the study runs
 * ```
 * Fold records and rounds are written as they happen, so a site-client restarted mid-study still
 * reports every fold.
 */
import { appendFile, mkdir, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../atomic-write.js";
import { type ExamResult, examResultSchema, METRIC_NAMES, type MetricName } from "../eval/types.js";
import type { Joint } from "../joints.js";
import type { Dims3 } from "../volume/grid.js";
import { diceCurveFigure, LABEL_COLOUR_NAMES, type OverlayLayout, overlayFigure } from "./figures.js";
import { encodePng } from "./png.js";

const foldRecordSchema = z.object({
  fold: z.number().int().nonnegative(),
  testExam: z.string(),
  validationExam: z.string(),
  validation: z.object({ mean: z.number(), dice: z.record(z.string(), z.number()) }),
  test: examResultSchema,
  figure: z.object({
    file: z.string(),
    width: z.number().int(),
    height: z.number().int(),
    layout: z.object({
      scale: z.number().int(),
      panel: z.tuple([z.number().int(), z.number().int()]),
      columns: z.object({ image: z.number().int(), truth: z.number().int(), prediction: z.number().int() }),
      rows: z.array(z.object({ slice: z.number().int(), y: z.number().int() })),
    }),
  }),
});
/** One evaluated fold as the report keeps it. */
export type FoldRecord = z.infer<typeof foldRecordSchema>;

const roundRecordSchema = z.object({
  fold: z.number().int(),
  phase: z.string(),
  round: z.number().int(),
  steps: z.number().int(),
  samples: z.number().int(),
  loss: z.record(z.string(), z.number()),
  valDiceBefore: z.number().optional(),
});
/** One trained round: the validation Dice of the aggregate it started from (SEG) and its losses. */
export type RoundRecord = z.infer<typeof roundRecordSchema>;

/** A fold's test exam at evaluation: what the figure is drawn from. */
export interface TestExamView {
  fold: number;
  testExam: string;
  validationExam: string;
  validation: { mean: number; dice: Record<string, number> };
  test: ExamResult;
  /** The exam's intensities, its label and the post-processed prediction, on its grid. */
  image: ArrayLike<number>;
  truth: ArrayLike<number>;
  prediction: ArrayLike<number>;
  dims: Dims3;
}

export interface ReportContext {
  site: string;
  joint: Joint;
  study: string;
  method: string;
  folds: number;
  /** Label names per value (background first). */
  labels: string[];
  /** The model directory the site keeps (absolute path), if written. */
  model?: { dir: string; fold: number };
}

export interface WrittenReport {
  dir: string;
  folds: FoldRecord[];
  rounds: RoundRecord[];
  files: string[];
}

const METRIC_HEADERS: Record<MetricName, string> = {
  dice: "Dice",
  sensitivity: "sens.",
  specificity: "spec.",
  mssd: "MSSD mm",
  assd: "ASSD mm",
  ravd: "RAVD %",
};

export class SiteReport {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, "report");
  }

  /** Appends a trained round (rounds.jsonl; a resumed site may append one twice, read keeps the last). */
  async addRound(r: RoundRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const rec: RoundRecord = {
      fold: r.fold,
      phase: r.phase,
      round: r.round,
      steps: r.steps,
      samples: r.samples,
      loss: r.loss,
      ...(r.valDiceBefore === undefined ? {} : { valDiceBefore: r.valDiceBefore }),
    };
    await appendFile(path.join(this.dir, "rounds.jsonl"), `${JSON.stringify(rec)}\n`);
  }

  /** Writes an evaluated fold: its figure (PNG) and its record (folds/fold-<i>.json). */
  async addFold(v: TestExamView): Promise<FoldRecord> {
    await mkdir(path.join(this.dir, "figures"), { recursive: true });
    await mkdir(path.join(this.dir, "folds"), { recursive: true });
    const fig = overlayFigure(v.image, v.truth, v.prediction, v.dims, {
      title: `fold ${v.fold} test exam ${v.testExam}`,
    });
    const file = `figures/fold${v.fold}-${safeName(v.testExam)}.png`;
    await writeFileAtomic(path.join(this.dir, file), encodePng(fig.image));
    const record: FoldRecord = {
      fold: v.fold,
      testExam: v.testExam,
      validationExam: v.validationExam,
      validation: v.validation,
      test: v.test,
      figure: {
        file,
        width: fig.image.width,
        height: fig.image.height,
        layout: fig.layout satisfies OverlayLayout,
      },
    };
    await writeFileAtomic(
      path.join(this.dir, "folds", `fold-${v.fold}.json`),
      `${JSON.stringify(record, null, 1)}\n`,
    );
    return record;
  }

  /** The fold records written so far, in fold order. */
  async folds(): Promise<FoldRecord[]> {
    const dir = path.join(this.dir, "folds");
    const names = await readdir(dir).catch(() => [] as string[]);
    const out: FoldRecord[] = [];
    for (const n of names.filter((x) => /^fold-\d+\.json$/.test(x))) {
      out.push(foldRecordSchema.parse(JSON.parse(await readFile(path.join(dir, n), "utf8"))));
    }
    return out.sort((a, b) => a.fold - b.fold);
  }

  /** The rounds written so far (the last record of each fold/phase/round). */
  async rounds(): Promise<RoundRecord[]> {
    const text = await readFile(path.join(this.dir, "rounds.jsonl"), "utf8").catch(() => "");
    const byKey = new Map<string, RoundRecord>();
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      const r = roundRecordSchema.parse(JSON.parse(line));
      byKey.set(`${r.fold}/${r.phase}/${r.round}`, r);
    }
    return [...byKey.values()].sort(
      (a, b) => a.fold - b.fold || a.phase.localeCompare(b.phase) || a.round - b.round,
    );
  }

  /** Writes report.md, metrics.csv, metrics.json and the validation Dice curve from what was recorded. */
  async write(ctx: ReportContext): Promise<WrittenReport> {
    await mkdir(path.join(this.dir, "figures"), { recursive: true });
    const folds = await this.folds();
    const rounds = await this.rounds();
    const curve = diceCurveFigure(diceSeries(folds, rounds), `validation dice per round - ${ctx.site}`);
    const curveFile = "figures/validation-dice.png";
    await writeFileAtomic(path.join(this.dir, curveFile), encodePng(curve));
    await writeFileAtomic(path.join(this.dir, "metrics.csv"), metricsCsv(folds));
    await writeFileAtomic(
      path.join(this.dir, "metrics.json"),
      `${JSON.stringify({ ...ctx, folds, rounds, figures: { validationDice: curveFile } }, null, 1)}\n`,
    );
    await writeFileAtomic(path.join(this.dir, "report.md"), markdown(ctx, folds, rounds, curveFile));
    return {
      dir: this.dir,
      folds,
      rounds,
      files: ["report.md", "metrics.csv", "metrics.json", curveFile, ...folds.map((f) => f.figure.file)],
    };
  }
}

function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9_.-]/g, "_");
}

/**
 * Per fold: the validation Dice of the aggregate each SEG round started from (round r: Θ_r), and
 * the fold's final model at round R (its evaluation).
 */
export function diceSeries(
  folds: readonly FoldRecord[],
  rounds: readonly RoundRecord[],
): { fold: number; points: [number, number][] }[] {
  const foldIds = [...new Set([...rounds.map((r) => r.fold), ...folds.map((f) => f.fold)])].sort(
    (a, b) => a - b,
  );
  return foldIds.map((fold) => {
    const seg = rounds.filter((r) => r.fold === fold && r.phase === "seg" && r.valDiceBefore !== undefined);
    const points: [number, number][] = seg.map((r) => [r.round, r.valDiceBefore!]);
    const f = folds.find((x) => x.fold === fold);
    const last = seg.length > 0 ? seg[seg.length - 1].round + 1 : 0;
    if (f) points.push([last, f.validation.mean]);
    return { fold, points };
  });
}

function metricsCsv(folds: readonly FoldRecord[]): string {
  const lines = ["fold,test_exam,bone,metric,value"];
  for (const f of folds) {
    for (const [bone, m] of Object.entries(f.test.labels)) {
      for (const metric of METRIC_NAMES) {
        const v = m[metric];
        lines.push(`${f.fold},${f.testExam},${bone},${metric},${v === null ? "" : v}`);
      }
    }
  }
  return `${lines.join("\n")}\n`;
}

const fmt = (metric: MetricName, v: number | null): string => {
  if (v === null || !Number.isFinite(v)) return "–";
  return metric === "dice" || metric === "sensitivity" || metric === "specificity"
    ? (100 * v).toFixed(1)
    : v.toFixed(2);
};

function meanStd(xs: number[]): string {
  if (xs.length === 0) return "–";
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
  return `${m.toFixed(2)} ± ${sd.toFixed(2)}`;
}

function markdown(
  ctx: ReportContext,
  folds: readonly FoldRecord[],
  rounds: readonly RoundRecord[],
  curveFile: string,
): string {
  const bones = ctx.labels.slice(1);
  const out: string[] = [];
  out.push(`# Site report: ${ctx.site} (${ctx.joint})`, "");
  out.push(
    `Study \`${ctx.study}\`, method \`${ctx.method}\`, ${folds.length} of ${ctx.folds} leave-one-out folds evaluated at this site. ` +
      "The metrics are the numbers this site reported to the coordinator (keyed by fold only); exam ids, images and " +
      "predictions below never left this machine.",
    "",
  );
  if (ctx.model) {
    out.push(
      `**The model to use:** \`${ctx.model.dir}/\` — fold ${ctx.model.fold}'s model (the last fold: the final aggregate Θ with this site's Γ). ` +
        `Segment a new exam with \`fedjoint segment --model ${ctx.model.dir} --image exam.nii.gz --out exam_seg.nii.gz\`.`,
      "",
    );
  }
  out.push("## Test exams: 3D metrics per bone", "");
  out.push(
    "On the post-processed label map (largest 3D component per bone, closing with a 5×5×5 ball). Dice, sensitivity " +
      "and specificity in %; MSSD and ASSD (paper eq. S5) in mm; RAVD in %.",
    "",
  );
  out.push(
    `| fold | test exam | bone | ${METRIC_NAMES.map((m) => METRIC_HEADERS[m]).join(" | ")} |`,
    `|---|---|---|${METRIC_NAMES.map(() => "---:").join("|")}|`,
  );
  for (const f of folds) {
    for (const bone of bones) {
      const m = f.test.labels[bone];
      if (!m) continue;
      out.push(
        `| ${f.fold} | ${f.testExam} | ${bone} | ${METRIC_NAMES.map((k) => fmt(k, m[k])).join(" | ")} |`,
      );
    }
  }
  out.push(
    "",
    "Over folds (mean ± std), Dice in %:",
    "",
    "| bone | Dice | ASSD mm | MSSD mm |",
    "|---|---:|---:|---:|",
  );
  for (const bone of bones) {
    const of = (k: MetricName, scale = 1) =>
      meanStd(
        folds
          .map((f) => f.test.labels[bone]?.[k])
          .filter((v): v is number => typeof v === "number" && Number.isFinite(v))
          .map((v) => v * scale),
      );
    out.push(`| ${bone} | ${of("dice", 100)} | ${of("assd")} | ${of("mssd")} |`);
  }
  out.push("", "## Validation exams: Dice of each fold's final model (2D, pooled over slices, %)", "");
  out.push(
    `| fold | validation exam | ${bones.join(" | ")} | mean |`,
    `|---|---|${bones.map(() => "---:").join("|")}|---:|`,
  );
  for (const f of folds) {
    const cells = bones.map((b) =>
      f.validation.dice[b] === undefined ? "–" : (100 * f.validation.dice[b]).toFixed(1),
    );
    out.push(
      `| ${f.fold} | ${f.validationExam} | ${cells.join(" | ")} | ${(100 * f.validation.mean).toFixed(1)} |`,
    );
  }
  out.push("", "## Validation Dice per round", "", `![validation Dice per round](${curveFile})`, "");
  out.push(
    "Round r: the mean validation Dice of the aggregate Θ_r this site started the round from (after re-estimating its DSBN statistics); the last point of each fold is its final model.",
    "",
  );
  const seg = rounds.filter((r) => r.phase === "seg" && r.valDiceBefore !== undefined);
  if (seg.length > 0) {
    out.push("| fold | round | Dice % | loss |", "|---|---:|---:|---:|");
    for (const r of seg) {
      out.push(
        `| ${r.fold} | ${r.round} | ${(100 * r.valDiceBefore!).toFixed(1)} | ${(r.loss.total ?? Number.NaN).toFixed(4)} |`,
      );
    }
    out.push("");
  }
  out.push("## Test exam figures", "");
  out.push(
    "Each row is one slice along the exam's third voxel axis (x to the right, y downwards): the image, the ground truth, the prediction. " +
      `Colours: ${bones.map((b, i) => `${b} ${LABEL_COLOUR_NAMES[i % LABEL_COLOUR_NAMES.length]}`).join(", ")}.`,
    "",
  );
  for (const f of folds)
    out.push(`### Fold ${f.fold}: ${f.testExam}`, "", `![fold ${f.fold}](${f.figure.file})`, "");
  return `${out.join("\n")}\n`;
}
