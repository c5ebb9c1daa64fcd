import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../atomic-write.js";
import { fjError } from "../errors.js";
import { CosineAccumulator, type CosineCell, scaleOrder } from "./cosine.js";
import { ks2samp } from "./ks.js";
import { distribution, meanStd } from "./stats.js";
import {
  type AssdDefinition,
  LOWER_IS_BETTER,
  METRIC_NAMES,
  METRIC_UNITS,
  type MetricName,
  SLICE_METRIC_NAMES,
  type SliceMetricName,
  STUDY_RESULTS_SCHEMA,
  type StudyResults,
  studyResultsSchema,
} from "./types.js";

/**
 * Study reports (paper Tables 2–5) from `StudyResults`:
 * - 3D metrics per site × method × metric: mean ± std (ddof 0) over the test exams of all folds of
 *   the per-exam mean over bones ("label" = "mean"), and the same per bone;
 * - per-slice 2D Dice/sens/spec distributions (mean, 16th/84th percentiles) pooled over sites
 *   ("all", as the paper concatenates the datasets) and per site, with two-sample KS p-values of
 *   every method against a reference method (default: the last method);
 * - intra/inter-domain cosine similarity of embeddings per scale (pairs formed inside one fold).
 * `writeReport` writes report.md, metrics.csv and metrics.json atomically (temp file + rename).
 */

export interface Row3d {
  method: string;
  site: string;
  joint: string;
  /** Bone name, or "mean" for the per-exam mean over bones. */
  label: string;
  metric: MetricName;
  unit: "fraction" | "mm" | "%";
  mean: number | null;
  std: number | null;
  /** Number of values averaged. */
  n: number;
  /** Values excluded because undefined (RAVD with an empty ground truth). */
  excluded: number;
}

export interface SliceRow {
  method: string;
  /** "all" (every site pooled) or a site name. */
  scope: string;
  metric: SliceMetricName;
  n: number;
  mean: number | null;
  std: number | null;
  p16: number | null;
  p84: number | null;
}

export interface KsRow {
  scope: string;
  metric: SliceMetricName;
  reference: string;
  method: string;
  statistic: number;
  pValue: number;
  n1: number;
  n2: number;
  test: "exact" | "asymp";
}

export interface CosineRow extends CosineCell {
  method: string;
}

export interface ReportSummary {
  methods: string[];
  /** How the ASSD values were computed (paper eq. S5 "pooled" unless the results say otherwise). */
  assdDefinition: AssdDefinition;
  sites: { site: string; joint: string }[];
  reference: string;
  rows3d: Row3d[];
  slices: SliceRow[];
  ks: KsRow[];
  cosine: CosineRow[];
}

export const METRICS_FILE_SCHEMA = "fedjoint.metrics/1" as const;

/** metrics.json: the results (without raw embeddings) and everything derived from them. */
export interface MetricsFile {
  schema: typeof METRICS_FILE_SCHEMA;
  study: string;
  generatedAt: string;
  results: StudyResults;
  summary: ReportSummary;
}

export interface ReportOptions {
  /** Method the KS tests compare against; default the last method. */
  reference?: string;
  /** Cosine rows already computed (used by `mergeMetricsFiles`, whose inputs carry no embeddings). */
  cosine?: CosineRow[];
  /** Pairs per (domain, domain, scale, fold) above which pairs are sampled; default 10⁵. */
  maxPairs?: number;
  seed?: string | number;
  /** Time stamp written in the reports; default now. */
  now?: Date;
}

export function summarise(results: StudyResults, options: ReportOptions = {}): ReportSummary {
  const methods = results.methods.map((m) => m.method);
  if (methods.length === 0) throw fjError("FJ_EVAL_REPORT", "the study has no methods");
  if (new Set(methods).size !== methods.length)
    throw fjError("FJ_EVAL_REPORT", `method names must be unique, got ${methods.join(", ")}`);
  const reference = options.reference ?? methods[methods.length - 1];
  if (!methods.includes(reference)) {
    throw fjError("FJ_EVAL_REPORT", `reference method '${reference}' is not one of ${methods.join(", ")}`);
  }
  const siteJoint = new Map<string, string>();
  for (const m of results.methods)
    for (const f of m.folds)
      for (const s of f.sites) if (!siteJoint.has(s.site)) siteJoint.set(s.site, s.joint);
  const sites = [...siteJoint.keys()].sort().map((site) => ({ site, joint: siteJoint.get(site)! }));

  const rows3d: Row3d[] = [];
  const slices: SliceRow[] = [];
  const pooled = new Map<string, Map<SliceMetricName, number[]>>(); // key method|scope
  for (const m of results.methods) {
    for (const { site, joint } of sites) {
      const labelNames = new Set<string>();
      const exams = m.folds.flatMap((f) => f.sites.filter((s) => s.site === site).flatMap((s) => s.exams));
      for (const e of exams) for (const l of Object.keys(e.labels)) labelNames.add(l);
      const labels = [...labelNames].sort();
      for (const metric of METRIC_NAMES) {
        const perExamMeans: number[] = [];
        let examExcluded = 0;
        for (const e of exams) {
          const vals = Object.values(e.labels)
            .map((lm) => lm[metric])
            .filter((v): v is number => v !== null);
          if (vals.length === 0) examExcluded++;
          else perExamMeans.push(meanStd(vals).mean);
        }
        rows3d.push(row3d(m.method, site, joint, "mean", metric, perExamMeans, examExcluded));
        for (const label of labels) {
          const vals: number[] = [];
          let excluded = 0;
          for (const e of exams) {
            const lm = e.labels[label];
            if (lm === undefined) continue;
            const v = lm[metric];
            if (v === null) excluded++;
            else vals.push(v);
          }
          rows3d.push(row3d(m.method, site, joint, label, metric, vals, excluded));
        }
      }
      for (const metric of SLICE_METRIC_NAMES) {
        const vals = exams.flatMap((e) => e.slices[metric]);
        for (const scope of [site, "all"]) {
          const key = `${m.method}\u0000${scope}`;
          const byMetric = pooled.get(key) ?? new Map<SliceMetricName, number[]>();
          const list = byMetric.get(metric) ?? [];
          for (const v of vals) list.push(v);
          byMetric.set(metric, list);
          pooled.set(key, byMetric);
        }
      }
    }
  }
  const scopes = ["all", ...sites.map((s) => s.site)];
  const sample = (method: string, scope: string, metric: SliceMetricName) =>
    pooled.get(`${method}\u0000${scope}`)?.get(metric) ?? [];
  for (const m of methods) {
    for (const scope of scopes) {
      for (const metric of SLICE_METRIC_NAMES) {
        const v = sample(m, scope, metric);
        const d = v.length > 0 ? distribution(v) : null;
        slices.push({
          method: m,
          scope,
          metric,
          n: v.length,
          mean: d?.mean ?? null,
          std: d?.std ?? null,
          p16: d?.p16 ?? null,
          p84: d?.p84 ?? null,
        });
      }
    }
  }
  const ks: KsRow[] = [];
  for (const scope of scopes) {
    for (const metric of SLICE_METRIC_NAMES) {
      const ref = sample(reference, scope, metric);
      if (ref.length === 0) continue;
      for (const m of methods) {
        if (m === reference) continue;
        const other = sample(m, scope, metric);
        if (other.length === 0) continue;
        const r = ks2samp(ref, other);
        ks.push({
          scope,
          metric,
          reference,
          method: m,
          statistic: r.statistic,
          pValue: r.pValue,
          n1: r.n1,
          n2: r.n2,
          test: r.method,
        });
      }
    }
  }
  const cosine = options.cosine ?? computeCosine(results, options);
  const assdDefinition = results.assdDefinition ?? "pooled";
  return { methods, assdDefinition, sites, reference, rows3d, slices, ks, cosine };
}

function row3d(
  method: string,
  site: string,
  joint: string,
  label: string,
  metric: MetricName,
  values: number[],
  excluded: number,
): Row3d {
  const s = meanStd(values);
  return {
    method,
    site,
    joint,
    label,
    metric,
    unit: METRIC_UNITS[metric],
    mean: s.n > 0 ? s.mean : null,
    std: s.n > 0 ? s.std : null,
    n: s.n,
    excluded,
  };
}

function computeCosine(results: StudyResults, options: ReportOptions): CosineRow[] {
  const out: CosineRow[] = [];
  for (const m of results.methods) {
    const acc = new CosineAccumulator({
      maxPairs: options.maxPairs,
      seed: `${options.seed ?? 0}/${m.method}`,
    });
    let any = false;
    for (const f of m.folds) {
      const byDomain = new Map<string, Record<string, number[][]>>();
      for (const s of f.sites) {
        if (s.embeddings === undefined) continue;
        const prev = byDomain.get(s.joint) ?? {};
        for (const [scale, vecs] of Object.entries(s.embeddings))
          prev[scale] = [...(prev[scale] ?? []), ...vecs];
        byDomain.set(s.joint, prev);
      }
      if (byDomain.size > 0) {
        acc.add(byDomain);
        any = true;
      }
    }
    if (any) for (const c of acc.cells()) out.push({ method: m.method, ...c });
  }
  return out;
}

// ---- formatting -----------------------------------------------------------------------------------

function fmtMetric(metric: MetricName, v: number | null): string {
  if (v === null) return "n/a";
  if (METRIC_UNITS[metric] === "fraction") return (100 * v).toFixed(1);
  return v.toFixed(metric === "ravd" ? 1 : 2);
}

function fmtP(p: number): string {
  if (p === 0) return "0";
  return p < 1e-3 ? p.toExponential(1) : p.toFixed(3);
}

const HEADERS: Record<MetricName, string> = {
  dice: "Dice ↑",
  sensitivity: "Sens. ↑",
  specificity: "Spec. ↑",
  mssd: "MSSD ↓",
  assd: "ASSD ↓",
  ravd: "RAVD ↓",
};

const ASSD_NOTE: Record<AssdDefinition, string> = {
  pooled:
    "ASSD pools the surface distances of both directions (paper eq. S5, MedPy ≥ 0.5 `assd`): " +
    "(Σ_{S_G} d(s, S_P) + Σ_{S_P} d(s, S_G)) / (|S_G| + |S_P|).",
  directed:
    "ASSD is the mean of the two directed average surface distances (MedPy ≤ 0.4), not the paper's eq. S5.",
};

function mdEscape(s: string): string {
  return s.replace(/\|/g, "\\|");
}

export function renderMarkdown(
  study: string,
  results: StudyResults,
  summary: ReportSummary,
  now: Date,
): string {
  const L: string[] = [];
  L.push(`# Study report: ${mdEscape(study)}`, "");
  L.push(`Generated ${now.toISOString()} by fedjoint. Methods: ${summary.methods.map(mdEscape).join(", ")}.`);
  const nFolds = Math.max(0, ...results.methods.map((m) => m.folds.length));
  L.push(
    `Folds: ${nFolds}. Sites: ${summary.sites.map((s) => `${mdEscape(s.site)} (${s.joint})`).join(", ")}.`,
  );
  if (results.foldPlan !== undefined) {
    const perms = Object.entries(results.foldPlan.permutations)
      .map(([s, p]) => `${mdEscape(s)}: [${p.join(", ")}]`)
      .join("; ");
    L.push(
      `Leave-one-out plan: seed \`${results.foldPlan.seed}\`, ${results.foldPlan.nFolds} folds, π_k = ${perms}.`,
    );
  }
  L.push("");
  L.push("## 3D metrics (Tables 2–3)", "");
  L.push(
    "Mean ± std (ddof 0) over the test exams of all folds of the per-exam mean over bones, on post-processed masks. " +
      "Dice, sensitivity, specificity in %; MSSD, ASSD in mm; RAVD in %. " +
      `${ASSD_NOTE[summary.assdDefinition]} ` +
      "Empty masks: see src/eval/metrics.ts (missed bone: distances = volume diagonal).",
    "",
  );
  for (const { site, joint } of summary.sites) {
    L.push(`### ${mdEscape(site)} (${joint})`, "");
    L.push(`| Method | ${METRIC_NAMES.map((m) => HEADERS[m]).join(" | ")} | n |`);
    L.push(`|---|${METRIC_NAMES.map(() => "---").join("|")}|---|`);
    for (const method of summary.methods) {
      const cells = METRIC_NAMES.map((metric) => {
        const r = summary.rows3d.find(
          (x) => x.method === method && x.site === site && x.label === "mean" && x.metric === metric,
        );
        if (r === undefined || r.mean === null) return "n/a";
        const ex = r.excluded > 0 ? ` (${r.excluded} n/a)` : "";
        return `${fmtMetric(metric, r.mean)} ± ${fmtMetric(metric, r.std)}${ex}`;
      });
      const n =
        summary.rows3d.find((x) => x.method === method && x.site === site && x.label === "mean")?.n ?? 0;
      L.push(`| ${mdEscape(method)} | ${cells.join(" | ")} | ${n} |`);
    }
    L.push("");
    const labels = [
      ...new Set(summary.rows3d.filter((r) => r.site === site && r.label !== "mean").map((r) => r.label)),
    ];
    if (labels.length > 0) {
      L.push(`Per bone (${summary.methods.length > 1 ? "rows: method / bone" : "rows: bone"}):`, "");
      L.push(`| Method | Bone | ${METRIC_NAMES.map((m) => HEADERS[m]).join(" | ")} |`);
      L.push(`|---|---|${METRIC_NAMES.map(() => "---").join("|")}|`);
      for (const method of summary.methods) {
        for (const label of labels) {
          const cells = METRIC_NAMES.map((metric) => {
            const r = summary.rows3d.find(
              (x) => x.method === method && x.site === site && x.label === label && x.metric === metric,
            );
            return r === undefined || r.mean === null
              ? "n/a"
              : `${fmtMetric(metric, r.mean)} ± ${fmtMetric(metric, r.std)}`;
          });
          L.push(`| ${mdEscape(method)} | ${mdEscape(label)} | ${cells.join(" | ")} |`);
        }
      }
      L.push("");
    }
  }
  L.push("## 2D slice scores and Kolmogorov–Smirnov tests (Table 4)", "");
  L.push(
    `Per-slice scores of slices with at least one bone, pooled over all sites; mean with the distances to the 84th (+) ` +
      `and 16th (−) percentiles, in %. p-values: two-sample KS test (two-sided, scipy ks_2samp "auto") of each ` +
      `method against the reference **${mdEscape(summary.reference)}**.`,
    "",
  );
  L.push("| Method | Dice 2D ↑ | p-value | Sens. 2D ↑ | p-value | Spec. 2D ↑ | p-value | slices |");
  L.push("|---|---|---|---|---|---|---|---|");
  for (const method of summary.methods) {
    const cells: string[] = [];
    let n = 0;
    for (const metric of SLICE_METRIC_NAMES) {
      const s = summary.slices.find((x) => x.method === method && x.scope === "all" && x.metric === metric);
      n = s?.n ?? 0;
      if (s === undefined || s.mean === null || s.p16 === null || s.p84 === null) cells.push("n/a");
      else
        cells.push(
          `${(100 * s.mean).toFixed(1)} (+${(100 * Math.max(0, s.p84 - s.mean)).toFixed(1)} / −${(100 * Math.max(0, s.mean - s.p16)).toFixed(1)})`,
        );
      if (method === summary.reference) cells.push("—");
      else {
        const k = summary.ks.find((x) => x.scope === "all" && x.metric === metric && x.method === method);
        cells.push(k === undefined ? "n/a" : fmtP(k.pValue));
      }
    }
    L.push(`| ${mdEscape(method)} | ${cells.join(" | ")} | ${n} |`);
  }
  L.push("");
  if (summary.cosine.length > 0) {
    L.push("## Cosine similarity of embeddings (Table 5)", "");
    L.push(
      "Mean (std) cosine similarity between pairs of embeddings within (diagonal) and between domains.",
      "",
    );
    for (const method of summary.methods) {
      const rows = summary.cosine.filter((c) => c.method === method);
      if (rows.length === 0) continue;
      const scales = [...new Set(rows.map((r) => r.scale))].sort((a, b) => scaleOrder(a) - scaleOrder(b));
      const domains = [...new Set(rows.map((r) => r.domainA))].sort();
      L.push(`### ${mdEscape(method)}`, "");
      L.push(`| Domain | ${scales.flatMap((s) => domains.map((d) => `${s}: ${d}`)).join(" | ")} |`);
      L.push(`|---|${scales.flatMap(() => domains.map(() => "---")).join("|")}|`);
      for (const a of domains) {
        const cells = scales.flatMap((s) =>
          domains.map((b) => {
            const c = rows.find((r) => r.scale === s && r.domainA === a && r.domainB === b);
            return c === undefined ? "n/a" : `${c.mean.toFixed(2)} (${c.std.toFixed(2)})`;
          }),
        );
        L.push(`| ${a} | ${cells.join(" | ")} |`);
      }
      L.push("");
    }
  }
  return `${L.join("\n")}\n`;
}

function csvField(v: string | number | null): string {
  if (v === null) return "";
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function renderCsv(study: string, summary: ReportSummary): string {
  const header = [
    "study",
    "method",
    "site",
    "joint",
    "label",
    "metric",
    "unit",
    "better",
    "mean",
    "std",
    "n",
    "excluded",
  ];
  const lines = [header.join(",")];
  for (const r of summary.rows3d) {
    lines.push(
      [
        study,
        r.method,
        r.site,
        r.joint,
        r.label,
        r.metric,
        r.unit,
        LOWER_IS_BETTER.has(r.metric) ? "lower" : "higher",
        r.mean,
        r.std,
        r.n,
        r.excluded,
      ]
        .map(csvField)
        .join(","),
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Results without raw embeddings (they are summarised into the cosine table). */
function stripEmbeddings(results: StudyResults): StudyResults {
  return {
    ...results,
    methods: results.methods.map((m) => ({
      ...m,
      folds: m.folds.map((f) => ({
        ...f,
        sites: f.sites.map(({ embeddings: _e, ...rest }) => rest),
      })),
    })),
  };
}

export interface WrittenReport {
  dir: string;
  files: string[];
  summary: ReportSummary;
}

/** Writes report.md, metrics.csv and metrics.json into `dir` (created if needed), each atomically. */
export async function writeReport(
  dir: string,
  studyResults: StudyResults,
  options: ReportOptions = {},
): Promise<WrittenReport> {
  const parsed = studyResultsSchema.safeParse(studyResults);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw fjError(
      "FJ_EVAL_REPORT",
      `invalid StudyResults at ${issue.path.join(".") || "<root>"}: ${issue.message}`,
    );
  }
  const now = options.now ?? new Date();
  const summary = summarise(studyResults, options);
  const file: MetricsFile = {
    schema: METRICS_FILE_SCHEMA,
    study: studyResults.study,
    generatedAt: now.toISOString(),
    results: stripEmbeddings(studyResults),
    summary,
  };
  await mkdir(dir, { recursive: true });
  const files = [join(dir, "report.md"), join(dir, "metrics.csv"), join(dir, "metrics.json")];
  await writeFileAtomic(files[0], renderMarkdown(studyResults.study, studyResults, summary, now));
  await writeFileAtomic(files[1], renderCsv(studyResults.study, summary));
  await writeFileAtomic(files[2], `${JSON.stringify(file)}\n`);
  return { dir, files, summary };
}

// ---- reading back and merging -------------------------------------------------------------------

const cosineRowSchema = z.object({
  method: z.string(),
  scale: z.string(),
  domainA: z.string(),
  domainB: z.string(),
  mean: z.number(),
  std: z.number(),
  pairs: z.number().int(),
  exhaustive: z.boolean(),
});

const metricsFileSchema = z.object({
  schema: z.literal(METRICS_FILE_SCHEMA),
  study: z.string(),
  generatedAt: z.string(),
  results: studyResultsSchema,
  summary: z.object({ cosine: z.array(cosineRowSchema) }).loose(),
});

export interface LoadedMetrics {
  study: string;
  assdDefinition: AssdDefinition;
  results: StudyResults;
  cosine: CosineRow[];
}

/** Reads and validates a metrics.json; errors name the file and the field. */
export async function readMetricsFile(path: string): Promise<LoadedMetrics> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw fjError("FJ_EVAL_METRICS_MISSING", "cannot read metrics.json (is this a study report folder?)", {
      file: path,
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw fjError("FJ_EVAL_METRICS_INVALID", "is not valid JSON", { file: path, cause: err });
  }
  const parsed = metricsFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw fjError(
      "FJ_EVAL_METRICS_INVALID",
      `field ${issue.path.join(".") || "<root>"}: ${issue.message} (expected a ${METRICS_FILE_SCHEMA} file)`,
      { file: path },
    );
  }
  return {
    study: parsed.data.study,
    assdDefinition: parsed.data.results.assdDefinition ?? "pooled",
    results: parsed.data.results,
    cosine: parsed.data.summary.cosine,
  };
}

/**
 * Merges several studies (typically one method each) into one comparison. Method names that occur
 * in more than one study are prefixed with their study name (`study/method`).
 */
export function mergeMetrics(
  studyName: string,
  loaded: readonly LoadedMetrics[],
): {
  results: StudyResults;
  cosine: CosineRow[];
} {
  const definitions = [...new Set(loaded.map((l) => l.assdDefinition))];
  if (definitions.length > 1) {
    throw fjError(
      "FJ_EVAL_REPORT",
      `the runs to merge compute ASSD differently (${loaded.map((l) => `${l.study}: ${l.assdDefinition}`).join(", ")}); recompute them with one definition`,
    );
  }
  const counts = new Map<string, number>();
  for (const l of loaded)
    for (const m of l.results.methods) counts.set(m.method, (counts.get(m.method) ?? 0) + 1);
  const methods: StudyResults["methods"] = [];
  const cosine: CosineRow[] = [];
  const used = new Set<string>();
  for (const l of loaded) {
    for (const m of l.results.methods) {
      const name = (counts.get(m.method) ?? 0) > 1 ? `${l.study}/${m.method}` : m.method;
      if (used.has(name)) {
        throw fjError("FJ_EVAL_METRICS_DUPLICATE", `method '${name}' appears twice in the runs to merge`, {
          file: l.study,
        });
      }
      used.add(name);
      methods.push({ ...m, method: name });
      for (const c of l.cosine) if (c.method === m.method) cosine.push({ ...c, method: name });
    }
  }
  const assdDefinition = definitions[0] ?? "pooled";
  return { results: { schema: STUDY_RESULTS_SCHEMA, study: studyName, assdDefinition, methods }, cosine };
}
