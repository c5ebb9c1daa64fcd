/**
 * The `fedjoint bench quality` command: a preset with the command line's overrides, a progress
 * bar on a terminal (stderr), the table on stdout (or one JSON line with --json), and report.md,
 * figure.svg and metrics.json in --out.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import cliProgress from "cli-progress";
import { fjError } from "../errors.js";
import { createLogger } from "../log.js";
import { mergeOutcomes, readQualityOutcome } from "./merge.js";
import { PRESET_NAMES, type PresetName, QUALITY_PRESETS, type QualityPreset } from "./presets.js";
import { type QualityOutcome, runQualityBench, runStudy } from "./quality.js";
import { jsonLine, renderTable, summarise, writeQualityReport } from "./report.js";

export interface QualityFlags {
  /** Absent: `demo` (with --merge: the merged folders' preset). */
  preset?: string;
  folds?: number;
  seeds?: string;
  runs?: string;
  data?: string;
  out: string;
  backend: string;
  keepRuns?: boolean;
  /** Comma-separated --out folders of earlier runs: merge their results instead of training. */
  merge?: string;
  json?: boolean;
}

/**
 * A run's selector for --runs: `kind:method:strategy`, e.g. `federated:dsl+msc+mjap:fedadam`
 * (pooled and individual runs have no strategy: `centralised:dsl+msc+mjap`, `individual:individual`).
 */
function runSelector(preset: QualityPreset, run: QualityPreset["runs"][number]): string {
  const parts: string[] = [run.kind, run.method];
  if (run.kind === "federated") parts.push(runStudy(preset, run, preset.seeds[0]).strategy.name);
  return parts.join(":");
}

/**
 * The preset's runs that --runs selects: each comma-separated item is a prefix of a run's
 * selector (`kind[:method[:strategy]]`) and must match at least one run.
 */
function selectRuns(preset: QualityPreset, list: string): QualityPreset["runs"] {
  const selectors = preset.runs.map((r) => runSelector(preset, r));
  const items = list
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  if (items.length === 0) {
    throw fjError(
      "FJ_CLI_ARG",
      `--runs is '${list}', expected kind[:method[:strategy]],… (${selectors.join(", ")})`,
    );
  }
  const matches = (sel: string, item: string) => sel === item || sel.startsWith(`${item}:`);
  for (const item of items) {
    if (!selectors.some((sel) => matches(sel, item))) {
      throw fjError(
        "FJ_CLI_ARG",
        `--runs: '${item}' matches no run of preset ${preset.name}, expected a prefix of one of ${selectors.join(", ")}`,
      );
    }
  }
  return preset.runs.filter((_, i) => items.some((item) => matches(selectors[i], item)));
}

/** The preset named by --preset, with --folds, --seeds and --runs applied. */
export function resolvePreset(f: Pick<QualityFlags, "preset" | "folds" | "seeds" | "runs">): QualityPreset {
  const name = f.preset ?? "demo";
  if (!(PRESET_NAMES as readonly string[]).includes(name)) {
    throw fjError("FJ_CLI_ARG", `--preset is '${name}', expected one of ${PRESET_NAMES.join(", ")}`);
  }
  const base = QUALITY_PRESETS[name as PresetName];
  let seeds = base.seeds;
  if (f.seeds !== undefined) {
    seeds = f.seeds.split(",").map((x) => Number(x.trim()));
    if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) {
      throw fjError("FJ_CLI_ARG", `--seeds is '${f.seeds}', expected comma-separated integers ≥ 0`);
    }
  }
  const preset = { ...base, folds: f.folds ?? base.folds, seeds };
  return f.runs === undefined ? preset : { ...preset, runs: selectRuns(preset, f.runs) };
}

/** The outcome of `--merge a,b,…`: the folders' results as one benchmark (nothing is trained). */
async function mergedOutcome(f: QualityFlags): Promise<QualityOutcome> {
  const training = (
    [
      ["--folds", f.folds],
      ["--seeds", f.seeds],
      ["--runs", f.runs],
      ["--data", f.data],
      ["--keep-runs", f.keepRuns],
    ] as const
  ).filter(([, v]) => v !== undefined);
  if (training.length > 0) {
    throw fjError(
      "FJ_CLI_ARG",
      `--merge takes no ${training.map(([k]) => k).join(", ")}, expected only --out, --preset and --json (the folders' runs are already trained)`,
    );
  }
  const dirs = (f.merge ?? "")
    .split(",")
    .map((d) => d.trim())
    .filter(Boolean);
  if (dirs.some((d) => path.resolve(d) === path.resolve(f.out))) {
    throw fjError(
      "FJ_CLI_ARG",
      `--out ${f.out} is one of the --merge folders, expected a folder of its own (its metrics.json would be replaced)`,
    );
  }
  const sources = [];
  for (const dir of dirs) sources.push({ dir, outcome: await readQualityOutcome(dir) });
  const outcome = mergeOutcomes(sources);
  if (f.preset !== undefined && f.preset !== outcome.preset) {
    throw fjError(
      "FJ_CLI_ARG",
      `--preset is '${f.preset}', the merged folders are preset '${outcome.preset}'`,
    );
  }
  return outcome;
}

export async function qualityCommand(f: QualityFlags): Promise<void> {
  if (f.merge !== undefined) {
    const outcome = await mergedOutcome(f);
    return printOutcome(f, outcome);
  }
  const preset = resolvePreset(f);
  const log = createLogger({ name: "bench-quality" });
  const tty = process.stderr.isTTY === true;
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          format: "bench quality |{bar}| {value}/{total} runs · {elapsed}s · {run}",
          stream: process.stderr,
          hideCursor: true,
          etaBuffer: 4,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const t0 = Date.now();
  const outcome = await runQualityBench({
    preset,
    out: f.out,
    backend: f.backend,
    data: f.data
      ?.split(",")
      .map((d) => d.trim())
      .filter(Boolean),
    keepRuns: f.keepRuns,
    log: tty ? createLogger({ name: "bench-quality", level: "warn" }) : log,
    onProgress: ({ done, total, run }) => {
      if (!bar) return;
      if (done === 0) bar.start(total, 0, { run, elapsed: 0 });
      bar.update(done, { run, elapsed: Math.round((Date.now() - t0) / 1000) });
      if (done === total) bar.stop();
    },
  });
  return printOutcome(f, outcome);
}

/** report.md, figure.svg and metrics.json in --out; the table (or the --json line) on stdout. */
async function printOutcome(f: QualityFlags, outcome: QualityOutcome): Promise<void> {
  await mkdir(f.out, { recursive: true });
  const summary = summarise(outcome);
  const files = await writeQualityReport(f.out, outcome, summary);
  if (f.json) {
    process.stdout.write(`${JSON.stringify(jsonLine(outcome, summary))}\n`);
    return;
  }
  process.stdout.write(renderTable(outcome, summary));
  process.stdout.write(`\nreport: ${files.report} (figure ${files.figure}), metrics: ${files.metrics}\n`);
}
