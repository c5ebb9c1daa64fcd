import type { Command } from "commander";
import { fjError } from "../../errors.js";
import { createLogger } from "../../log.js";
import { DEMO_PHANTOMS, DEMO_STUDY, parseSite, simulate } from "../../simulation/simulate.js";
import { parseStudyConfig, readStudyConfigFile, withOverrides } from "../../study/config.js";
import { METHODS } from "../../study/methods.js";
import { intOption, numberOption, printJson } from "../run.js";

interface SimulateFlags {
  config?: string;
  sites?: string;
  rounds?: number;
  aeRounds?: number;
  method?: string;
  data?: string;
  steps?: number;
  subjects: number;
  dataSize: number;
  size?: number;
  base?: number;
  depth?: number;
  batch?: number;
  lr?: number;
  embeddings?: number;
  mix?: number;
  noise?: number;
  minSites?: number;
  roundTimeout?: number;
  compression?: string;
  weighting?: string;
  folds?: number;
  seed?: number;
  workdir?: string;
  backend: string;
  threads: number;
  insecure?: boolean;
  nats?: string;
  json?: boolean;
}

const list = (s: string) =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x.length > 0);

/** The study of a `fedjoint simulate` command line: --config or the embedded demo, flags on top. */
export async function simulateStudy(f: Omit<SimulateFlags, "subjects" | "dataSize" | "backend" | "threads">) {
  const base = f.config ? await readStudyConfigFile(f.config) : DEMO_STUDY;
  const raw = withOverrides(base, [
    [["sites"], f.sites === undefined ? undefined : list(f.sites).map(parseSite)],
    [["method"], f.method],
    [["rounds"], f.rounds],
    [["aeRounds"], f.aeRounds],
    [["localSteps"], f.steps],
    [["model", "size"], f.size],
    [["model", "base"], f.base],
    [["model", "depth"], f.depth],
    [["training", "seg", "batch"], f.batch],
    [["training", "ae", "batch"], f.batch],
    [["training", "seg", "lr"], f.lr],
    [["training", "ae", "lr"], f.lr],
    [["embeddings", "count"], f.embeddings],
    [["embeddings", "mix"], f.mix],
    [["embeddings", "noise"], f.noise],
    [["minSites"], f.minSites],
    [["roundTimeoutS"], f.roundTimeout],
    [["compression"], f.compression],
    [["strategy", "weighting"], f.weighting],
    [["folds"], f.folds],
    [["seed"], f.seed],
  ]);
  return parseStudyConfig(raw, f.config ?? "fedjoint simulate flags");
}

/** `fedjoint simulate`: coordinator + one site-client process per site on loopback mTLS. */
export function registerSimulate(program: Command): void {
  const d = parseStudyConfig(DEMO_STUDY);
  program
    .command("simulate")
    .description(
      "run a federated study on loopback: a coordinator and one site-client process per site (mTLS, phantoms)",
    )
    .option(
      "--config <file>",
      "study config (.json/.yaml) instead of the embedded demo; flags override its fields",
    )
    .option(
      "--sites <list>",
      `site names (joints) or name:joint, comma-separated (demo: ${d.sites.map((s) => s.name).join(",")})`,
    )
    .option("--rounds <n>", `SEG rounds per fold (demo: ${d.rounds})`, intOption("--rounds"))
    .option(
      "--ae-rounds <n>",
      `AE rounds per fold, +mjap methods (demo: ${d.aeRounds})`,
      intOption("--ae-rounds"),
    )
    .option("--method <m>", `${METHODS.join(" | ")} (demo: ${d.method})`)
    .option(
      "--data <dirs>",
      "dataset directories, comma-separated, one per site (default: synthesised phantoms)",
    )
    .option("--steps <n>", `local steps per round (demo: ${d.localSteps})`, intOption("--steps"))
    .option("--subjects <n>", "phantom exams per site", intOption("--subjects", 3), DEMO_PHANTOMS.subjects)
    .option("--data-size <n>", "phantom matrix size", intOption("--data-size", 16), DEMO_PHANTOMS.dataSize)
    .option("--size <n>", `model slice size (demo: ${d.model.size})`, intOption("--size", 8))
    .option("--base <n>", `first-level filters (demo: ${d.model.base})`, intOption("--base"))
    .option("--depth <n>", `levels incl. bottleneck (demo: ${d.model.depth})`, intOption("--depth", 2))
    .option(
      "--batch <n>",
      `pooled batch of both phases, split equally between the joints: a site trains batch/|joints| (demo: ${d.training.seg.batch})`,
      intOption("--batch"),
    )
    .option(
      "--lr <x>",
      `Adam learning rate of both phases (Table 1: 5e-4 SEG, 1e-4 AE; demo: ${d.training.seg.lr})`,
      numberOption("--lr"),
    )
    .option("--embeddings <n>", "embedding vectors uploaded per site per round", intOption("--embeddings"))
    .option("--mix <m>", "prototype mixing m (1 = none)", intOption("--mix"))
    .option("--noise <sigma>", "Gaussian noise σ on embeddings", numberOption("--noise"))
    .option("--min-sites <n>", "minSites (default: all sites)", intOption("--min-sites"))
    .option("--round-timeout <s>", "roundTimeoutS", numberOption("--round-timeout"))
    .option("--compression <c>", "none | float16")
    .option("--weighting <w>", "samples | uniform (the strategy's weighting)")
    .option("--folds <n>", "leave-one-out folds", intOption("--folds"))
    .option("--seed <n>", "seed", intOption("--seed", 0))
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
      if (f.method !== undefined && !(METHODS as readonly string[]).includes(f.method)) {
        throw fjError("FJ_CLI_ARG", `--method is '${f.method}', expected one of ${METHODS.join(", ")}`);
      }
      const study = await simulateStudy(f);
      const log = createLogger({ name: "simulate" });
      const summary = await simulate({
        study,
        data: f.data ? list(f.data) : undefined,
        subjects: f.subjects,
        dataSize: f.dataSize,
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
