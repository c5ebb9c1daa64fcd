import { Command, CommanderError } from "commander";
import { FedjointError, fjError } from "../errors.js";

/**
 * Runs a CLI program: a FedjointError becomes one line `CODE: message` on stderr and its exit
 * code — plus, only when stderr is a terminal, a second line with the registry's remedy (scripts
 * and tests reading stderr see exactly one line); anything else is a bug and prints its stack with
 * exit code 1.
 */
export async function runProgram(program: Command, argv: string[] = process.argv): Promise<void> {
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (err instanceof FedjointError) {
      process.stderr.write(`${err.toLine()}\n`);
      if (process.stderr.isTTY && err.remedy !== undefined) process.stderr.write(`  → ${err.remedy}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}

/** Prints one JSON line on stdout (the `--json` contract: exactly one object per command). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Parses a positive integer flag value or throws a one-line InputError naming the flag. */
export function intOption(flag: string, min = 1) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw fjError("FJ_CLI_ARG", `${flag} is '${value}', expected an integer ≥ ${min}`);
    }
    return n;
  };
}

export function numberOption(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n)) throw fjError("FJ_CLI_ARG", `${flag} is '${value}', expected a number`);
    return n;
  };
}

export { Command };
