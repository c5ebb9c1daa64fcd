import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { type QualityFlags, qualityCommand } from "../../bench/command.js";
import { InputError } from "../../errors.js";
import { createLogger } from "../../log.js";
import { benchTrainStep, type TrainStepBenchOptions } from "../../model/bench.js";
import { initEngine, parseBackendChoice } from "../../model/engine/backend.js";
import { intOption, printJson } from "../run.js";

interface TrainStepFlags extends TrainStepBenchOptions {
  arch: string;
  backend: string;
  json?: boolean;
}

const TORCH_REFERENCE_CANDIDATES = [
  process.env.FEDJOINT_TORCH_REFERENCE ?? "",
  path.resolve(process.cwd(), "../shared/bench/torch_reference.py"),
  path.resolve(process.cwd(), "shared/bench/torch_reference.py"),
];

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
    .option("--warmup <n>", "untimed steps first", intOption("--warmup", 0), 1)
    .option("--backend <name>", "auto|tensorflow|wasm|webgpu|cpu", process.env.FEDJOINT_BACKEND ?? "auto")
    .option("--json", "print one JSON line");
}

function validate(f: TrainStepFlags): void {
  if (f.arch !== "att-unet") throw new InputError("FJ_CLI_ARG", `--arch is '${f.arch}', expected att-unet`);
  if (f.domains > 3)
    throw new InputError("FJ_CLI_ARG", `--domains is ${f.domains}, expected 1–3 (ankle, knee, shoulder)`);
  if (f.size % 2 ** (f.depth - 1) !== 0) {
    throw new InputError(
      "FJ_CLI_ARG",
      `--size ${f.size} must be divisible by 2^(depth−1) = ${2 ** (f.depth - 1)}`,
    );
  }
}

async function runTrainStep(f: TrainStepFlags) {
  validate(f);
  const log = createLogger({ name: "bench" });
  await initEngine(parseBackendChoice(f.backend), { log });
  const { numTensorsStable, ...result } = await benchTrainStep(f);
  if (!numTensorsStable) log.warn("tf.memory().numTensors grew during the timed steps");
  return result;
}

/** Runs shared/bench/torch_reference.py with the same shape; undefined when torch is missing. */
function runTorchReference(f: TrainStepFlags): Record<string, unknown> | undefined {
  const script = TORCH_REFERENCE_CANDIDATES.find((p) => p && existsSync(p));
  if (!script) return undefined;
  const python = process.env.FEDJOINT_PYTHON ?? "/usr/bin/python3";
  const probe = spawnSync(python, ["-c", "import torch"], { encoding: "utf8" });
  if (probe.status !== 0) return undefined;
  const args = [
    script,
    "--base",
    f.base,
    "--depth",
    f.depth,
    "--size",
    f.size,
    "--batch",
    f.batch,
    "--domains",
    f.domains,
  ];
  args.push("--classes", f.classes, "--steps", f.steps, "--threads", 2);
  const run = spawnSync(python, args.map(String), { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`torch reference failed: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}") as Record<string, unknown>;
}

/** `fedjoint bench quality` (src/bench): centralised vs individual vs federated on the same data. */
function registerQuality(bench: Command): void {
  bench
    .command("quality")
    .description(
      "centralised vs individual vs federated runs on the same phantoms, folds and per-domain budget",
    )
    .option("--preset <name>", "demo | standard | paper", "demo")
    .option("--folds <n>", "leave-one-out folds (default: the preset's)", intOption("--folds"))
    .option("--seeds <list>", "comma-separated study seeds (default: the preset's)")
    .option("--data <dirs>", "ankle,knee,shoulder datasets instead of phantoms")
    .option("--out <dir>", "report.md, figure.svg, metrics.json (and data/, runs/)", "bench-quality")
    .option("--keep-runs", "keep each run's coordinator and site state under <out>/runs")
    .option("--backend <name>", "auto|tensorflow|wasm|webgpu|cpu", process.env.FEDJOINT_BACKEND ?? "auto")
    .option("--json", "print one JSON line {preset, budget, results, summary}")
    .action((f: QualityFlags) => qualityCommand(f));
}

export function registerBench(program: Command): void {
  const bench = program.command("bench").description("engine and quality benchmarks");
  registerQuality(bench);
  addTrainStepOptions(
    bench.command("train-step").description("time one optimiser step of the multi-domain Att-UNet"),
  ).action(async (f: TrainStepFlags) => {
    const result = await runTrainStep(f);
    if (f.json) printJson(result);
    else
      process.stdout.write(
        `${result.backend}: ${result.msPerStep} ms/step, ${result.imagesPerSecond} images/s ` +
          `(${result.images} images, ${result.sharedParams} shared / ${result.totalParams} total parameters)\n`,
      );
  });
  addTrainStepOptions(
    bench
      .command("compare")
      .description("train-step next to shared/bench/torch_reference.py, same shape, same run, alternating"),
  )
    .option(
      "--rounds <n>",
      "alternate fedjoint and torch this many times; report the medians",
      intOption("--rounds"),
      3,
    )
    .action(async (f: TrainStepFlags & { rounds: number }) => {
      // Alternating runs, medians: both engines see the same machine conditions.
      const oursRuns: Awaited<ReturnType<typeof runTrainStep>>[] = [];
      const torchRuns: Record<string, unknown>[] = [];
      for (let r = 0; r < f.rounds; r++) {
        oursRuns.push(await runTrainStep(f));
        const t = runTorchReference(f);
        if (t) torchRuns.push(t);
      }
      const median = <T>(runs: T[], key: (t: T) => number): T =>
        [...runs].sort((a, b) => key(a) - key(b))[Math.floor(runs.length / 2)];
      const ours = median(oursRuns, (r) => r.imagesPerSecond);
      const torch = torchRuns.length > 0 ? median(torchRuns, (r) => Number(r.imagesPerSecond)) : undefined;
      const ratio = torch
        ? Math.round((ours.imagesPerSecond / Number(torch.imagesPerSecond)) * 1000) / 1000
        : null;
      if (f.json) printJson({ fedjoint: ours, torch: torch ?? null, ratio, rounds: f.rounds });
      else {
        process.stdout.write(`fedjoint ${JSON.stringify(ours)}\n`);
        process.stdout.write(
          torch
            ? `torch    ${JSON.stringify(torch)}\nratio    ${ratio}× the PyTorch images/s\n`
            : "torch    not available (/usr/bin/python3 -c 'import torch' failed; apt-get install -y python3-torch)\n",
        );
      }
    });
}
