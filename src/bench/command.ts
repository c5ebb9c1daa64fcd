/**
 * The `fedjoint bench quality` command: a preset with the command line's overrides, a progress
 * bar on a terminal (stderr), the table on stdout (or one JSON line with --json), and report.md,
 * figure.svg and metrics.json in --out.
 */
import cliProgress from "cli-progress";
import { fjError } from "../errors.js";
import { createLogger } from "../log.js";
import { PRESET_NAMES, type PresetName, QUALITY_PRESETS, type QualityPreset } from "./presets.js";
import { runQualityBench } from "./quality.js";
import { jsonLine, renderTable, summarise, writeQualityReport } from "./report.js";

export interface QualityFlags {
  preset: string;
  folds?: number;
  seeds?: string;
  data?: string;
  out: string;
  backend: string;
  keepRuns?: boolean;
  json?: boolean;
}

/** The preset named by --preset, with --folds and --seeds applied. */
export function resolvePreset(f: Pick<QualityFlags, "preset" | "folds" | "seeds">): QualityPreset {
  if (!(PRESET_NAMES as readonly string[]).includes(f.preset)) {
    throw fjError("FJ_CLI_ARG", `--preset is '${f.preset}', expected one of ${PRESET_NAMES.join(", ")}`);
  }
  const base = QUALITY_PRESETS[f.preset as PresetName];
  let seeds = base.seeds;
  if (f.seeds !== undefined) {
    seeds = f.seeds.split(",").map((x) => Number(x.trim()));
    if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) {
      throw fjError("FJ_CLI_ARG", `--seeds is '${f.seeds}', expected comma-separated integers ≥ 0`);
    }
  }
  return { ...base, folds: f.folds ?? base.folds, seeds };
}

export async function qualityCommand(f: QualityFlags): Promise<void> {
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
  const summary = summarise(outcome);
  const files = await writeQualityReport(f.out, outcome, summary);
  if (f.json) {
    process.stdout.write(`${JSON.stringify(jsonLine(outcome, summary))}\n`);
    return;
  }
  process.stdout.write(renderTable(outcome, summary));
  process.stdout.write(`\nreport: ${files.report} (figure ${files.figure}), metrics: ${files.metrics}\n`);
}
