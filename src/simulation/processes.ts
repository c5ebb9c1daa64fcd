/**
 * Child processes of `fedjoint simulate` and of the integration tests: the `coordinator` and
 * `site-client` bins run as real processes (the compiled dist/cli/*.js, or the TypeScript
 * sources under tsx when running from src). stderr (pino JSON lines) is saved to a log file and
 * scanned line by line so callers can await a log event instead of sleeping.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { fjError } from "../errors.js";

/** Path of a bin script next to this module's build (dist/cli/<name>.js or src/cli/<name>.ts). */
export function binScript(name: "coordinator" | "site-client"): { script: string; execArgv: string[] } {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const js = path.resolve(here, "../cli", `${name}.js`);
  if (existsSync(js)) return { script: js, execArgv: [] };
  const ts = path.resolve(here, "../cli", `${name}.ts`);
  if (existsSync(ts)) return { script: ts, execArgv: ["--import", "tsx"] };
  throw fjError("FJ_SIM_BIN", `cannot find the ${name} bin next to ${here} (run npm run build)`);
}

export interface LogLine {
  msg?: string;
  level?: number;
  [key: string]: unknown;
}

export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  private stdout = "";
  private readonly lines: LogLine[] = [];
  private readonly watchers = new Set<(l: LogLine) => void>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    name: string,
    bin: "coordinator" | "site-client",
    args: string[],
    options: { logFile: string; env?: NodeJS.ProcessEnv },
  ) {
    this.name = name;
    this.logFile = options.logFile;
    const { script, execArgv } = binScript(bin);
    this.child = spawn(process.execPath, [...execArgv, script, ...args], {
      env: { ...process.env, FEDJOINT_LOG_JSON: "1", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const log = createWriteStream(options.logFile, { flags: "a" });
    this.child.stdout!.on("data", (d: Buffer) => {
      this.stdout += d.toString("utf8");
    });
    const rl = createInterface({ input: this.child.stderr! });
    rl.on("line", (line) => {
      log.write(`${line}\n`);
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        parsed = { msg: line };
      }
      this.lines.push(parsed);
      for (const w of [...this.watchers]) w(parsed);
    });
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => {
        rl.close();
        log.end();
        for (const w of [...this.watchers]) w({ msg: "__exit__", code, signal });
        resolve({ code, signal });
      });
    });
  }

  /** Resolves with the first log line (past or future) matching `pred`; rejects if the process exits first. */
  waitFor(pred: (l: LogLine) => boolean, what = "log line"): Promise<LogLine> {
    const past = this.lines.find(pred);
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const w = (l: LogLine) => {
        if (l.msg === "__exit__") {
          this.watchers.delete(w);
          reject(
            fjError(
              "FJ_SIM_EXITED",
              `${this.name} exited (code ${String(l.code)}, signal ${String(l.signal)}) before ${what}; log: ${this.logFile}`,
            ),
          );
        } else if (pred(l)) {
          this.watchers.delete(w);
          resolve(l);
        }
      };
      this.watchers.add(w);
    });
  }

  logLines(): LogLine[] {
    return [...this.lines];
  }

  /** Stdout as one JSON value (the --json summary) after exit. */
  json<T>(): T {
    const last = this.stdout.trim().split("\n").pop() ?? "";
    try {
      return JSON.parse(last) as T;
    } catch {
      throw fjError("FJ_SIM_OUTPUT", `${this.name} printed no JSON summary; log: ${this.logFile}`);
    }
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}
