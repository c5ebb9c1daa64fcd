import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { type QualityFlags, qualityCommand } from "../../bench/command.js";
import { fjError } from "../../errors.js";
import { createLogger } from "../../log.js";
import { benchTrainStep, type TrainStepBenchOptions, type TrainStepBenchResult } from "../../model/bench.js";
import { initEngine, parseBackendChoice } from "../../model/engine/backend.js";
import { intOption, printJson } from "../run.js";

interface TrainStepFlags extends TrainStepBenchOptions {
  arch: string;
  backend: string;
  json?: boolean;
}

type Shape = Pick<TrainStepBenchOptions, "base" | "depth" | "size" | "batch" | "domains">;

/**
 * The shapes of issue 12's table: the CI-sized network, then the paper's Att-UNet (base 32,
 * depth 5) at 128² and 256², up to a site's per-domain batch (6) and the paper's Table 1 (18 over
 * three domains). Paper rows time 2 steps after 1 warm-up step.
 */
export const BENCH_ROWS: Record<string, Shape & { steps: number }> = {
  small: { base: 16, depth: 4, size: 64, batch: 9, domains: 3, steps: 5 },
  "paper-128-b6": { base: 32, depth: 5, size: 128, batch: 6, domains: 1, steps: 3 },
  "paper-256-b2": { base: 32, depth: 5, size: 256, batch: 2, domains: 1, steps: 2 },
  "paper-256-b6": { base: 32, depth: 5, size: 256, batch: 6, domains: 1, steps: 2 },
  "paper-256-b18": { base: 32, depth: 5, size: 256, batch: 18, domains: 3, steps: 2 },
};

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(here, "../../..");

/** shared/bench/torch_reference.py next to the checkout (main, or a worktree one level deeper). */
function torchReferenceScript(): string | undefined {
  return [
    process.env.FEDJOINT_TORCH_REFERENCE ?? "",
    path.resolve(REPO, "../shared/bench/torch_reference.py"),
    path.resolve(REPO, "../../shared/bench/torch_reference.py"),
    path.resolve(process.cwd(), "../shared/bench/torch_reference.py"),
  ].find((p) => p && existsSync(p));
}

function addTrainStepOptions(cmd: Command): Command {
  return cmd
    .option("--arch <arch>", "network architecture (att-unet)", "att-unet")
    .option("--base <n>", "filters of the first level", intOption("--base"), 16)
    .option("--depth <n>", "levels including the bottleneck", intOption("--depth", 2), 4)
    .option("--size <n>", "image side in pixels (divisible by 2^(depth−1))", intOption("--size", 8), 64)
    .option("--batch <n>", "images per step, split equally between domains", intOption("--batch"), 9)
    .option("--domains <n>", "number of domains (joints), 1–3", intOption("--domains"), 3)
    .option("--classes <n>", "output classes per domain head", intOption("--classes", 2), 5)
    .option("--steps <n>", "timed steps", intOption("--steps"), 5)
    .option(
      "--warmup <n>",
      "untimed steps first; the last is profiled for its kernel calls",
      intOption("--warmup"),
      2,
    )
    .option(
      "--backend <name>",
      "auto|tensorflow|native|wasm|webgpu|cpu",
      process.env.FEDJOINT_BACKEND ?? "auto",
    )
    .option("--json", "print one JSON line");
}

function validate(f: Shape & { arch?: string }): void {
  if (f.arch !== undefined && f.arch !== "att-unet")
    throw fjError("FJ_CLI_ARG", `--arch is '${f.arch}', expected att-unet`);
  if (f.domains > 3)
    throw fjError("FJ_CLI_ARG", `--domains is ${f.domains}, expected 1–3 (ankle, knee, shoulder)`);
  if (f.size % 2 ** (f.depth - 1) !== 0) {
    throw fjError("FJ_CLI_ARG", `--size ${f.size} must be divisible by 2^(depth−1) = ${2 ** (f.depth - 1)}`);
  }
}

async function runTrainStep(f: TrainStepFlags): Promise<Omit<TrainStepBenchResult, "numTensorsStable">> {
  validate(f);
  const log = createLogger({ name: "bench" });
  await initEngine(parseBackendChoice(f.backend), { log });
  const { numTensorsStable, ...result } = await benchTrainStep(f);
  if (!numTensorsStable) log.warn("tf.memory().numTensors grew during the timed steps");
  return result;
}

function threads(): number {
  return Math.max(1, Number(process.env.FEDJOINT_THREADS) || os.availableParallelism());
}

/** `fedjoint bench train-step --json` in a child process, so that its peak RSS is its own. */
function runOursChild(
  shape: Shape,
  f: { classes: number; steps: number; backend: string },
): TrainStepBenchResult {
  const cli = path.join(REPO, "dist/cli/fedjoint.js");
  const args = [cli, "bench", "train-step", "--json", "--backend", f.backend, "--classes", String(f.classes)];
  args.push("--steps", String(f.steps));
  for (const [k, v] of Object.entries(shape)) args.push(`--${k}`, String(v));
  const run = spawnSync(process.execPath, args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 1 << 20,
  });
  if (run.status !== 0)
    throw new Error(`fedjoint bench train-step failed (exit ${run.status}): ${args.join(" ")}`);
  return JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}") as TrainStepBenchResult;
}

interface TorchResult {
  engine: string;
  msPerStep: number;
  imagesPerSecond: number;
  peakRssMB: number;
}

/** shared/bench/torch_reference.py, same shape, with its peak RSS; undefined when torch is missing. */
function runTorch(shape: Shape, f: { classes: number; steps: number }): TorchResult | undefined {
  const script = torchReferenceScript();
  if (!script) return undefined;
  const python = process.env.FEDJOINT_PYTHON ?? "/usr/bin/python3";
  if (spawnSync(python, ["-c", "import torch"], { encoding: "utf8" }).status !== 0) return undefined;
  const argv = [script, "--classes", f.classes, "--steps", f.steps, "--threads", threads()];
  for (const [k, v] of Object.entries(shape)) argv.push(`--${k}`, v);
  // The script prints one JSON line; the wrapper adds the process's peak RSS.
  const wrapper = [
    "import json, resource, runpy, sys, io, contextlib",
    `sys.argv = ${JSON.stringify(argv.map(String))}`,
    "out = io.StringIO()",
    "with contextlib.redirect_stdout(out): runpy.run_path(sys.argv[0], run_name='__main__')",
    "r = json.loads(out.getvalue().strip().splitlines()[-1])",
    "r['peakRssMB'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)",
    "print(json.dumps(r))",
  ].join("\n");
  const run = spawnSync(python, ["-c", wrapper], { encoding: "utf8", maxBuffer: 1 << 20 });
  if (run.status !== 0) throw new Error(`torch reference failed: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}") as TorchResult;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface CompareRow {
  row: string;
  shape: Shape;
  fedjoint: {
    backend: string;
    imagesPerSecond: number;
    msPerStep: number;
    peakRssMB: number;
    kernelsPerStep: number;
  };
  torch: { engine: string; imagesPerSecond: number; msPerStep: number; peakRssMB: number } | null;
  /** Median over rounds of fedjoint images/s ÷ PyTorch images/s measured right after it. */
  ratio: number | null;
  rounds: number;
}

/** Alternates fedjoint and PyTorch `rounds` times on one shape; medians and the median ratio. */
function compareRow(
  row: string,
  shape: Shape,
  f: { classes: number; steps: number; backend: string; rounds: number },
): CompareRow {
  const ours: TrainStepBenchResult[] = [];
  const torch: TorchResult[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < f.rounds; r++) {
    const o = runOursChild(shape, f);
    ours.push(o);
    const t = runTorch(shape, f);
    if (t) {
      torch.push(t);
      ratios.push(o.imagesPerSecond / t.imagesPerSecond);
    }
  }
  const m = (runs: { imagesPerSecond: number; msPerStep: number; peakRssMB: number }[]) => ({
    imagesPerSecond: Math.round(median(runs.map((r) => r.imagesPerSecond)) * 100) / 100,
    msPerStep: Math.round(median(runs.map((r) => r.msPerStep)) * 10) / 10,
    peakRssMB: Math.max(...runs.map((r) => r.peakRssMB)),
  });
  return {
    row,
    shape,
    fedjoint: { backend: ours[0].backend, kernelsPerStep: ours[0].kernelsPerStep, ...m(ours) },
    torch: torch.length > 0 ? { engine: torch[0].engine, ...m(torch) } : null,
    ratio: ratios.length > 0 ? Math.round(median(ratios) * 1000) / 1000 : null,
    rounds: f.rounds,
  };
}

function printRow(r: CompareRow): void {
  const s = r.shape;
  const name = `${r.row} (base ${s.base}, depth ${s.depth}, ${s.size}², batch ${s.batch}, ${s.domains} domain${s.domains > 1 ? "s" : ""})`;
  const t = r.torch;
  process.stdout.write(
    `${name}\n` +
      `  fedjoint ${r.fedjoint.backend}: ${r.fedjoint.imagesPerSecond} img/s, ${r.fedjoint.msPerStep} ms/step, peak RSS ${r.fedjoint.peakRssMB} MB, ${r.fedjoint.kernelsPerStep} kernels/step\n` +
      (t
        ? `  ${t.engine}: ${t.imagesPerSecond} img/s, ${t.msPerStep} ms/step, peak RSS ${t.peakRssMB} MB\n  ratio ${r.ratio}× the PyTorch images/s (median of ${r.rounds} alternating rounds)\n`
        : "  torch not available (/usr/bin/python3 -c 'import torch' failed; apt-get install -y python3-torch)\n"),
  );
}

/** `fedjoint bench quality` (src/bench): centralised vs individual vs federated on the same data. */
function registerQuality(bench: Command): void {
  bench
    .command("quality")
    .description(
      "centralised vs individual vs federated runs on the same phantoms, folds and per-domain budget",
    )
    .option("--preset <name>", "demo | standard | paper (default: demo)")
    .option("--folds <n>", "leave-one-out folds (default: the preset's)", intOption("--folds"))
    .option("--seeds <list>", "comma-separated study seeds (default: the preset's)")
    .option(
      "--runs <list>",
      "only these runs: kind[:method[:strategy]],… e.g. centralised,individual,federated:dsl+msc+mjap:fedadam",
    )
    .option("--data <dirs>", "ankle,knee,shoulder datasets instead of phantoms")
    .option("--out <dir>", "report.md, figure.svg, metrics.json (and data/, runs/)", "bench-quality")
    .option("--keep-runs", "keep each run's coordinator and site state under <out>/runs")
    .option(
      "--merge <dirs>",
      "comma-separated --out folders of earlier runs (other seeds or runs of the preset): one report of them all, nothing trained",
    )
    .option("--backend <name>", "auto|tensorflow|wasm|webgpu|cpu", process.env.FEDJOINT_BACKEND ?? "auto")
    .option("--json", "print one JSON line {preset, budget, results, summary}")
    .action((f: QualityFlags) => qualityCommand(f));
}

export function registerBench(program: Command): void {
  const bench = program.command("bench").description("engine and quality benchmarks");
  registerQuality(bench);
  addTrainStepOptions(
    bench
      .command("train-step")
      .description("time one optimiser step of the multi-domain Att-UNet (with peak RSS and kernel calls)"),
  ).action(async (f: TrainStepFlags) => {
    const result = await runTrainStep(f);
    if (f.json) printJson(result);
    else
      process.stdout.write(
        `${result.backend}: ${result.msPerStep} ms/step, ${result.imagesPerSecond} images/s ` +
          `(${result.images} images, ${result.sharedParams} shared / ${result.totalParams} total parameters), ` +
          `peak RSS ${result.peakRssMB} MB, ${result.kernelsPerStep} kernels/step\n`,
      );
  });
  addTrainStepOptions(
    bench
      .command("compare")
      .description(
        "train-step next to shared/bench/torch_reference.py, same shape, alternating, each run in its own process",
      ),
  )
    .option(
      "--rows <list>",
      `issue-12 table rows instead of the shape flags: all or a comma list of ${Object.keys(BENCH_ROWS).join(", ")}`,
    )
    .option(
      "--rounds <n>",
      "alternate fedjoint and torch this many times; report the medians",
      intOption("--rounds"),
      3,
    )
    .action((f: TrainStepFlags & { rounds: number; rows?: string }) => {
      const names = f.rows === "all" ? Object.keys(BENCH_ROWS) : f.rows?.split(",").map((r) => r.trim());
      const unknown = names?.find((n) => !(n in BENCH_ROWS));
      if (unknown)
        throw fjError(
          "FJ_CLI_ARG",
          `--rows has '${unknown}', expected all or ${Object.keys(BENCH_ROWS).join(", ")}`,
        );
      const jobs: [string, Shape, number][] = names
        ? names.map((n) => {
            const { steps, ...shape } = BENCH_ROWS[n];
            return [n, shape, steps];
          })
        : [
            [
              "custom",
              { base: f.base, depth: f.depth, size: f.size, batch: f.batch, domains: f.domains },
              f.steps,
            ],
          ];
      for (const [, shape] of jobs) validate(shape);
      const rows: CompareRow[] = [];
      for (const [name, shape, steps] of jobs) {
        const row = compareRow(name, shape, {
          classes: f.classes,
          steps,
          backend: f.backend,
          rounds: f.rounds,
        });
        rows.push(row);
        if (!f.json) printRow(row);
      }
      if (f.json) printJson({ rows });
    });
}
