/**
 * The `fedjoint` program with only the evaluation subcommands registered, exactly as
 * src/cli/fedjoint.ts registers them, so that these tests exercise the real command wiring
 * (commander, runProgram's one-line errors and exit codes) independently of other subcommands.
 */
import { Command } from "commander";
import { registerEval } from "../../../src/cli/commands/eval.js";
import { registerReport } from "../../../src/cli/commands/report.js";
import { runProgram } from "../../../src/cli/run.js";

const program = new Command("fedjoint");
registerEval(program);
registerReport(program);
await runProgram(program);
