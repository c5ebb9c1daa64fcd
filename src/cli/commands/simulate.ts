import type { Command } from "commander";
import { demoOptions, simulate } from "../../coordinator/simulate.js";
import { InputError } from "../../errors.js";
import { createLogger } from "../../log.js";
import { METHODS, type Method } from "../../model/api.js";
import { intOption, numberOption, printJson } from "../run.js";

interface SimulateFlags {
  sites: string;
  rounds: number;
  aeRounds?: number;
  method: string;
  data?: string;
  steps: number;
  subjects: number;
  dataSize: number;
  size: number;
  base: number;
  depth: number;
  batch: number;
  lr?: number;
  embeddings: number;
  mix: number;
  noise: number;
  minSites?: number;
  roundTimeout: number;
  compression: string;
  weighting: string;
  folds: number;
  seed: number;
  workdir?: string;
  backend: string;
  threads: number;
  insecure?: boolean;
  nats?: string;
  json?: boolean;
}

const demo = demoOptions();
/** Embedded defaults (src/coordinator/simulate.ts demoOptions), as flag defaults. */
export const SIMULATE_DEFAULTS = {
  sites: demo.sites.join(","),
  rounds: demo.rounds,
  aeRounds: demo.aeRounds!,
  method: demo.method,
  steps: demo.steps,
  lr: demo.lr!,
  subjects: demo.subjects,
  dataSize: demo.dataSize,
  size: demo.size,
  base: demo.base,
  depth: demo.depth,
  batch: demo.batch,
  embeddings: demo.embeddings,
};

/** `fedjoint simulate`: coordinator + one site-client process per site on loopback mTLS. */
export function registerSimulate(program: Command): void {
  const d = SIMULATE_DEFAULTS;
  program
    .command("simulate")
    .description(
      "run a federated study on loopback: a coordinator and one site-client process per site (mTLS, phantoms)",
    )
    .option("--sites <list>", "site names (joints) or name:joint, comma-separated", d.sites)
    .option("--rounds <n>", "SEG rounds per fold", intOption("--rounds"), d.rounds)
    .option("--ae-rounds <n>", "AE rounds per fold (+mjap methods)", intOption("--ae-rounds"), d.aeRounds)
    .option("--method <m>", METHODS.join(" | "), d.method)
    .option(
      "--data <dirs>",
      "dataset directories, comma-separated, one per site (default: synthesised phantoms)",
    )
    .option("--steps <n>", "local Adam steps per round", intOption("--steps"), d.steps)
    .option("--subjects <n>", "phantom exams per site", intOption("--subjects", 3), d.subjects)
    .option("--data-size <n>", "phantom matrix size", intOption("--data-size", 16), d.dataSize)
    .option("--size <n>", "model slice size", intOption("--size", 8), d.size)
    .option("--base <n>", "first-level filters", intOption("--base"), d.base)
    .option("--depth <n>", "levels incl. bottleneck", intOption("--depth", 2), d.depth)
    .option("--batch <n>", "local batch (SEG and AE)", intOption("--batch"), d.batch)
    .option(
      "--lr <x>",
      "Adam learning rate of both phases (Table 1: 5e-4 SEG, 1e-4 AE; higher suits the tiny demo model)",
      numberOption("--lr"),
      d.lr,
    )
    .option(
      "--embeddings <n>",
      "embedding vectors uploaded per site per round",
      intOption("--embeddings"),
      d.embeddings,
    )
    .option("--mix <m>", "prototype mixing m (1 = none)", intOption("--mix"), 1)
    .option("--noise <sigma>", "Gaussian noise σ on embeddings", numberOption("--noise"), 0)
    .option("--min-sites <n>", "minSites (default: all sites)", intOption("--min-sites"))
    .option("--round-timeout <s>", "roundTimeoutS", numberOption("--round-timeout"), 600)
    .option("--compression <c>", "none | float16", "none")
    .option("--weighting <w>", "samples | uniform", "samples")
    .option("--folds <n>", "leave-one-out folds", intOption("--folds"), 1)
    .option("--seed <n>", "seed", intOption("--seed", 0), 0)
    .option(
      "--workdir <dir>",
      "keep certs, data, state and logs here (default: a temp dir, removed after a successful run)",
    )
    .option(
      "--backend <name>",
      "auto|tensorflow|native|wasm|webgpu|cpu",
      process.env.FEDJOINT_BACKEND ?? "auto",
    )
    .option("--threads <n>", "wasm threads per site process", intOption("--threads"), 1)
    .option("--insecure", "plaintext gRPC (no certificates)")
    .option("--nats <url>", "publish study events to NATS JetStream (else in-process)")
    .option("--json", "print one JSON line")
    .action(async (f: SimulateFlags) => {
      if (!(METHODS as readonly string[]).includes(f.method)) {
        throw new InputError(
          "FJ_CLI_ARG",
          `--method is '${f.method}', expected one of ${METHODS.join(", ")}`,
        );
      }
      if (f.compression !== "none" && f.compression !== "float16") {
        throw new InputError("FJ_CLI_ARG", `--compression is '${f.compression}', expected none or float16`);
      }
      if (f.weighting !== "samples" && f.weighting !== "uniform") {
        throw new InputError("FJ_CLI_ARG", `--weighting is '${f.weighting}', expected samples or uniform`);
      }
      const list = (s: string) =>
        s
          .split(",")
          .map((x) => x.trim())
          .filter((x) => x.length > 0);
      const log = createLogger({ name: "simulate" });
      const summary = await simulate({
        sites: list(f.sites),
        method: f.method as Method,
        rounds: f.rounds,
        aeRounds: f.aeRounds,
        steps: f.steps,
        data: f.data ? list(f.data) : undefined,
        subjects: f.subjects,
        dataSize: f.dataSize,
        size: f.size,
        base: f.base,
        depth: f.depth,
        batch: f.batch,
        lr: f.lr,
        embeddings: f.embeddings,
        mix: f.mix,
        noise: f.noise,
        minSites: f.minSites,
        roundTimeoutS: f.roundTimeout,
        compression: f.compression,
        weighting: f.weighting,
        folds: f.folds,
        seed: f.seed,
        workdir: f.workdir,
        backend: f.backend,
        threads: f.threads,
        insecure: f.insecure === true,
        nats: f.nats,
        log,
      });
      if (f.json) printJson(summary);
      else process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    });
}
