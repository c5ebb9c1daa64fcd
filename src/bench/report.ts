/**
 * The quality benchmark's outputs: a summary (per run and site: mean ± std over folds and seeds;
 * federation's cost against pooled training, multi-domain gain against individual training, the
 * issue's acceptance checks, the paper's method ordering), the table on stdout, report.md with the
 * figure (figure.svg), metrics.json, and the one-line `--json` object.
 */
import path from "node:path";
import { writeFileAtomic } from "../atomic-write.js";
import { barChartSvg } from "../eval/figure.js";
import { type MeanStd, meanStd } from "../eval/stats.js";
import { JOINTS } from "../joints.js";
import { federates, type Method } from "../study/methods.js";
import type { QualityBudget, QualityDetail, QualityOutcome, QualityResult, RunRecord } from "./quality.js";

export interface RunSummary {
  run: string;
  kind: QualityResult["kind"];
  method: string;
  strategy: string | null;
  sites: Record<string, { dice: MeanStd; assd: MeanStd }>;
  /** Mean over the sites of each site's mean. */
  mean: { dice: number; assd: number };
  /** The seeds the run trained with (its results are over folds × these seeds). */
  seeds: number[];
  /** Wall-clock seconds of one seed (all its folds), mean over the seeds. */
  seconds: number;
  /** Per site and bone: test Dice, mean over folds × seeds. */
  bones: Record<string, Record<string, number>>;
}

export interface QualitySummary {
  runs: RunSummary[];
  /** The federated full method under the study's default strategy (the run the targets are about). */
  reference: string | null;
  /** Dice points per site: federated (reference) − centralised; negative = federating costs. */
  federationCost: Record<string, number> | null;
  /** Dice points per site: centralised − individual; positive = pooling the joints helps. */
  multiDomainGain: Record<string, number> | null;
  /** Dice points per site: federated (reference) − individual. */
  federatedGain: Record<string, number> | null;
  /** The issue's targets (DESIGN §12): within 2 points of pooled, ≥ individual − 1, above it on the mean. */
  targets: {
    withinTwoOfCentralised: boolean;
    atLeastIndividualMinusOne: boolean;
    aboveIndividualOnMean: boolean;
  } | null;
  /** The paper's ordering individual < shared < dsl < dsl+msc < dsl+msc+mjap (mean Dice over sites). */
  ordering: { method: string; dice: number }[];
  orderingHolds: boolean | null;
  /** Bones at test Dice 0 in every fold × seed of a run, with the runs that never found them. */
  neverFound: { site: string; bone: string; runs: string[] }[];
}

const SITE_ORDER = JOINTS as readonly string[];
const FULL = "dsl+msc+mjap";
const points = (x: number) => Math.round(x * 1000) / 10;

export function summarise(outcome: QualityOutcome): QualitySummary {
  const labels = [...new Set(outcome.results.map((r) => r.run))];
  const runs: RunSummary[] = labels.map((label) => {
    const rows = outcome.results.filter((r) => r.run === label);
    const sites = [...new Set(rows.map((r) => r.site))].sort(
      (a, b) => SITE_ORDER.indexOf(a) - SITE_ORDER.indexOf(b),
    );
    const perSite = Object.fromEntries(
      sites.map((s) => {
        const mine = rows.filter((r) => r.site === s);
        return [s, { dice: meanStd(mine.map((r) => r.dice)), assd: meanStd(mine.map((r) => r.assd)) }];
      }),
    );
    const mean = (f: (x: { dice: MeanStd; assd: MeanStd }) => number) =>
      sites.reduce((a, s) => a + f(perSite[s]), 0) / Math.max(sites.length, 1);
    const records = outcome.runs.filter((r) => r.run === label);
    const bones = Object.fromEntries(
      sites.map((s) => {
        const mine = rows.filter((r) => r.site === s);
        const names = [...new Set(mine.flatMap((r) => Object.keys(r.bones)))].sort();
        return [
          s,
          Object.fromEntries(
            names.map((b) => {
              const d = mine.flatMap((r) => (r.bones[b] ? [r.bones[b].dice] : []));
              return [b, d.reduce((a, x) => a + x, 0) / d.length];
            }),
          ),
        ];
      }),
    );
    return {
      run: label,
      kind: rows[0].kind,
      method: rows[0].method,
      strategy: rows[0].strategy,
      sites: perSite,
      mean: { dice: mean((x) => x.dice.mean), assd: mean((x) => x.assd.mean) },
      seeds: [...new Set(records.map((r) => r.seed))].sort((a, b) => a - b),
      seconds: records.reduce((a, r) => a + r.seconds, 0) / Math.max(records.length, 1),
      bones,
    };
  });
  const neverFound = new Map<string, { site: string; bone: string; runs: string[] }>();
  for (const r of runs) {
    for (const [site, bones] of Object.entries(r.bones)) {
      for (const [bone, dice] of Object.entries(bones)) {
        if (dice !== 0) continue;
        const key = `${site}/${bone}`;
        const entry = neverFound.get(key) ?? { site, bone, runs: [] };
        entry.runs.push(r.run);
        neverFound.set(key, entry);
      }
    }
  }
  // The reference: the first federated full-method run (the preset lists the default strategy first).
  const fed = runs.find((r) => r.kind === "federated" && r.method === FULL);
  const central = runs.find((r) => r.kind === "centralised");
  const alone = runs.find((r) => r.kind === "individual");
  const diff = (a?: RunSummary, b?: RunSummary) =>
    a && b
      ? Object.fromEntries(
          Object.keys(a.sites)
            .filter((s) => b.sites[s])
            .map((s) => [s, points(a.sites[s].dice.mean - b.sites[s].dice.mean)]),
        )
      : null;
  const federationCost = diff(fed, central);
  const multiDomainGain = diff(central, alone);
  const federatedGain = diff(fed, alone);
  const targets =
    federationCost && federatedGain && fed && alone
      ? {
          withinTwoOfCentralised: Object.values(federationCost).every((d) => d >= -2),
          atLeastIndividualMinusOne: Object.values(federatedGain).every((d) => d >= -1),
          aboveIndividualOnMean: fed.mean.dice > alone.mean.dice,
        }
      : null;
  const order: Method[] = ["individual", "shared", "dsl", "dsl+msc", FULL];
  const byMethod = (m: Method) =>
    !federates(m)
      ? alone
      : runs.find(
          (r) => r.kind === "federated" && r.method === m && (fed ? r.strategy === fed.strategy : true),
        );
  const ordering = order.flatMap((m) => {
    const r = byMethod(m);
    return r ? [{ method: m, dice: points(r.mean.dice) }] : [];
  });
  const orderingHolds =
    ordering.length === order.length
      ? ordering.every((o, i) => i === 0 || o.dice > ordering[i - 1].dice)
      : null;
  return {
    runs,
    reference: fed?.run ?? null,
    federationCost,
    multiDomainGain,
    federatedGain,
    targets,
    ordering,
    orderingHolds,
    neverFound: [...neverFound.values()].sort(
      (a, b) => SITE_ORDER.indexOf(a.site) - SITE_ORDER.indexOf(b.site) || a.bone.localeCompare(b.bone),
    ),
  };
}

const pm = (m: MeanStd, scale = 100, digits = 1) =>
  m.n > 1
    ? `${(m.mean * scale).toFixed(digits)} ± ${(m.std * scale).toFixed(digits)}`
    : (m.mean * scale).toFixed(digits);

function sitesOf(summary: QualitySummary): string[] {
  const all = new Set(summary.runs.flatMap((r) => Object.keys(r.sites)));
  return [...all].sort((a, b) => SITE_ORDER.indexOf(a) - SITE_ORDER.indexOf(b));
}

/** The table: one row per run, test Dice (points) and ASSD (mm) per site, and the site mean. */
export function renderTable(outcome: QualityOutcome, summary: QualitySummary): string {
  const sites = sitesOf(summary);
  const b = outcome.budget;
  const width = Math.max(...summary.runs.map((r) => r.run.length), 10);
  const head = [
    "run".padEnd(width),
    ...sites.map((s) => `${s} Dice`.padStart(14)),
    "mean Dice".padStart(10),
    ...sites.map((s) => `${s} ASSD`.padStart(13)),
    "seeds".padStart(6),
    "wall s/seed".padStart(11),
  ].join("  ");
  const lines = [
    `fedjoint bench quality --preset ${outcome.preset}: ${b.segSteps} SEG steps × ${b.slicesPerStep} slices per domain (${b.slicesPerDomain} slices), ${b.aeSteps} AE steps; test exam 3D post-processed, mean over bones, mean ± std over folds × seeds`,
    "",
    head,
  ];
  for (const r of summary.runs) {
    lines.push(
      [
        r.run.padEnd(width),
        ...sites.map((s) => (r.sites[s] ? pm(r.sites[s].dice) : "–").padStart(14)),
        (r.mean.dice * 100).toFixed(1).padStart(10),
        ...sites.map((s) => (r.sites[s] ? `${pm(r.sites[s].assd, 1, 2)} mm` : "–").padStart(13)),
        String(r.seeds.length).padStart(6),
        r.seconds.toFixed(0).padStart(11),
      ].join("  "),
    );
  }
  const fmt = (d: Record<string, number> | null) =>
    d
      ? Object.entries(d)
          .map(([s, v]) => `${s} ${v >= 0 ? "+" : ""}${v.toFixed(1)}`)
          .join(", ")
      : "n/a";
  lines.push(
    "",
    `federation's cost (federated − centralised, Dice points): ${fmt(summary.federationCost)}`,
    `multi-domain gain (centralised − individual): ${fmt(summary.multiDomainGain)}`,
    `federated − individual: ${fmt(summary.federatedGain)}`,
  );
  if (summary.targets) {
    const t = summary.targets;
    const yes = (x: boolean) => (x ? "yes" : "NO");
    lines.push(
      `targets: within 2 points of centralised on every site ${yes(t.withinTwoOfCentralised)}; ≥ individual − 1 on every site ${yes(t.atLeastIndividualMinusOne)}; above individual on the mean ${yes(t.aboveIndividualOnMean)}`,
    );
  }
  if (summary.ordering.length > 1) {
    lines.push(
      `paper's ordering (mean Dice): ${summary.ordering.map((o) => `${o.method} ${o.dice.toFixed(1)}`).join(" < ")}${summary.orderingHolds === null ? "" : summary.orderingHolds ? " — holds" : " — does not hold"}`,
    );
  }
  if (summary.neverFound.length > 0) {
    lines.push(
      `never found (test Dice 0 in every fold × seed; its ASSD is the volume diagonal): ${summary.neverFound
        .map((n) => `${n.site} ${n.bone} in ${n.runs.length} of ${summary.runs.length} runs`)
        .join("; ")}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

export function renderFigure(outcome: QualityOutcome, summary: QualitySummary): string {
  const sites = sitesOf(summary);
  return barChartSvg({
    title: `fedjoint bench quality — ${outcome.preset}: test Dice per site`,
    axis: "test Dice (3D, post-processed)",
    groups: [...sites, "mean"],
    series: summary.runs.map((r) => ({
      label: r.run,
      values: {
        ...Object.fromEntries(sites.map((s) => [s, r.sites[s]?.dice.mean ?? Number.NaN])),
        mean: r.mean.dice,
      },
      errors: Object.fromEntries(sites.map((s) => [s, r.sites[s]?.dice.std ?? 0])),
    })),
    percent: true,
  });
}

export function renderMarkdown(outcome: QualityOutcome, summary: QualitySummary, figure: string): string {
  const sites = sitesOf(summary);
  const b = outcome.budget;
  const out = [
    `# Quality benchmark — preset \`${outcome.preset}\``,
    "",
    `Every run trains on the same phantoms, the same leave-one-out folds and the same per-domain budget: ${b.segSteps} segmentation steps of ${b.slicesPerStep} slices per domain (${b.slicesPerDomain} slices) and ${b.aeSteps} auto-encoder steps (+mjap). Scores: the test exam of each site and fold, 3D post-processed (largest component per bone, closing), mean over the site's bones; Dice in points, ASSD (eq. S5) in mm; mean ± std over folds × seeds. Federated − centralised is the cost of federating; centralised − individual the gain of multi-domain training.`,
    "",
    `![test Dice per site](${figure})`,
    "",
    `| run | ${sites.map((s) => `${s} Dice`).join(" | ")} | mean Dice | ${sites.map((s) => `${s} ASSD (mm)`).join(" | ")} | seeds | wall s/seed |`,
    `|---|${sites.map(() => "---:").join("|")}|---:|${sites.map(() => "---:").join("|")}|---:|---:|`,
  ];
  for (const r of summary.runs) {
    out.push(
      `| ${r.run} | ${sites.map((s) => (r.sites[s] ? pm(r.sites[s].dice) : "–")).join(" | ")} | ${(r.mean.dice * 100).toFixed(1)} | ${sites.map((s) => (r.sites[s] ? pm(r.sites[s].assd, 1, 2) : "–")).join(" | ")} | ${r.seeds.join(", ")} | ${r.seconds.toFixed(0)} |`,
    );
  }
  const table = renderTable(outcome, summary).split("\n");
  out.push(
    "",
    "```",
    ...table.slice(table.findIndex((l) => l.startsWith("federation's cost"))).filter(Boolean),
    "```",
    "",
    "## Test Dice per bone",
    "",
    "Mean over folds × seeds, in points.",
    "",
  );
  for (const site of sites) {
    const bones = [...new Set(summary.runs.flatMap((r) => Object.keys(r.bones[site] ?? {})))].sort();
    out.push(
      `| ${site} | ${bones.join(" | ")} |`,
      `|---|${bones.map(() => "---:").join("|")}|`,
      ...summary.runs.map(
        (r) =>
          `| ${r.run} | ${bones.map((b) => (r.bones[site]?.[b] === undefined ? "–" : (r.bones[site][b] * 100).toFixed(1))).join(" | ")} |`,
      ),
      "",
    );
  }
  return `${out.join("\n")}\n`;
}

/** The `--json` object: preset, budget, one result row per site × fold × seed × run, summary. */
export function jsonLine(outcome: QualityOutcome, summary: QualitySummary) {
  return {
    preset: outcome.preset,
    budget: outcome.budget,
    results: outcome.results.map(
      ({ kind, method, strategy, site, fold, seed, dice, assd }): QualityResult => ({
        kind,
        method,
        strategy,
        site,
        fold,
        seed,
        dice,
        assd,
      }),
    ),
    summary: {
      reference: summary.reference,
      federationCost: summary.federationCost,
      multiDomainGain: summary.multiDomainGain,
      federatedGain: summary.federatedGain,
      targets: summary.targets,
      ordering: summary.ordering,
      orderingHolds: summary.orderingHolds,
      neverFound: summary.neverFound,
      runs: summary.runs.map((r) => ({
        run: r.run,
        kind: r.kind,
        method: r.method,
        strategy: r.strategy,
        meanDice: r.mean.dice,
        meanAssd: r.mean.assd,
        seeds: r.seeds,
        seconds: r.seconds,
        sites: Object.fromEntries(
          Object.entries(r.sites).map(([s, v]) => [
            s,
            { dice: v.dice.mean, diceStd: v.dice.std, assd: v.assd.mean, assdStd: v.assd.std },
          ]),
        ),
      })),
    },
  };
}

export interface MetricsFile {
  schema: "fedjoint.quality/1";
  preset: string;
  budget: QualityBudget;
  seconds: number;
  runs: RunRecord[];
  results: QualityDetail[];
  summary: QualitySummary;
}

/** Writes report.md, figure.svg and metrics.json into `dir`; returns their paths. */
export async function writeQualityReport(
  dir: string,
  outcome: QualityOutcome,
  summary: QualitySummary,
): Promise<{ report: string; figure: string; metrics: string }> {
  const figure = path.join(dir, "figure.svg");
  const report = path.join(dir, "report.md");
  const metrics = path.join(dir, "metrics.json");
  await writeFileAtomic(figure, renderFigure(outcome, summary));
  await writeFileAtomic(report, renderMarkdown(outcome, summary, "figure.svg"));
  const file: MetricsFile = {
    schema: "fedjoint.quality/1",
    preset: outcome.preset,
    budget: outcome.budget,
    seconds: outcome.seconds,
    runs: outcome.runs,
    results: outcome.results,
    summary,
  };
  await writeFileAtomic(metrics, `${JSON.stringify(file, null, 1)}\n`);
  return { report, figure, metrics };
}
