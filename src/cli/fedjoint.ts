#!/usr/bin/env node
import { Command } from "commander";
import { registerBench } from "./commands/bench.js";
import { registerCerts } from "./commands/certs.js";
import { registerDashboard } from "./commands/dashboard.js";
import { registerData } from "./commands/data.js";
import { registerDemo } from "./commands/demo.js";
import { registerEval } from "./commands/eval.js";
import { registerEvents } from "./commands/events.js";
import { registerModel } from "./commands/model.js";
import { registerReport } from "./commands/report.js";
import { registerSegment } from "./commands/segment.js";
import { registerSimulate } from "./commands/simulate.js";
import { registerSynth } from "./commands/synth.js";
import { registerTrain } from "./commands/train.js";
import { runProgram } from "./run.js";

/**
 * `fedjoint` — the umbrella CLI. Each subcommand lives in its own file under ./commands and
 * registers itself here with one line.
 */
const program = new Command("fedjoint")
  .description("Federated multi-domain bone segmentation (Boutillon et al. 2022)")
  .version("0.1.0");

registerBench(program);
registerCerts(program);
registerSimulate(program);
registerData(program);
registerSynth(program);
registerDemo(program);
registerModel(program);
registerTrain(program);
registerSegment(program);
registerEval(program);
registerReport(program);
registerEvents(program);
registerDashboard(program);

await runProgram(program);
