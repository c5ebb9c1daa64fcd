import type { Command } from "commander";
import { createLogger } from "../../log.js";
import { benchTrainStep } from "../../model/bench.js";
import { initEngine, parseBackendChoice } from "../../model/engine/backend.js";
import { printJson } from "../run.js";

/** `fedjoint demo`: the newcomer's first command, on embedded defaults. */
export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("run the main job on embedded defaults")
    .option("--backend <name>", "auto|tensorflow|wasm|webgpu|cpu", process.env.FEDJOINT_BACKEND ?? "auto")
    .option("--json", "print one JSON line")
    .action(async (f: { backend: string; json?: boolean }) => {
      const log = createLogger({ name: "demo" });
      const engine = await initEngine(parseBackendChoice(f.backend), { log });
      const result = await benchTrainStep({ base: 16, depth: 4, size: 64, batch: 9, domains: 3, classes: 5, steps: 3, warmup: 1 });
      const out = { engine, trainStep: result };
      if (f.json) printJson(out);
      else process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    });
}
