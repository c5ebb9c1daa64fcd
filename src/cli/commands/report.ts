import { resolve } from "node:path";
import type { Command } from "commander";
import { fjError } from "../../errors.js";
import { mergeMetrics, readMetricsFile, writeReport } from "../../eval/report.js";
import { printJson } from "../run.js";

interface ReportFlags {
  runs: string[];
  out: string;
  name?: string;
  reference?: string;
  json?: boolean;
}

/** `fedjoint report --runs DIR... --out DIR`: merges several studies' metrics.json into one comparison. */
export async function mergeReports(f: ReportFlags) {
  if (f.runs.length === 0) throw fjError("FJ_CLI_ARG", "--runs needs at least one study folder");
  const loaded = [];
  for (const dir of f.runs) loaded.push(await readMetricsFile(resolve(dir, "metrics.json")));
  const merged = mergeMetrics(f.name ?? "comparison", loaded);
  const methods = merged.results.methods.map((m) => m.method);
  if (f.reference !== undefined && !methods.includes(f.reference)) {
    throw fjError("FJ_CLI_ARG", `--reference is '${f.reference}', expected one of: ${methods.join(", ")}`);
  }
  const written = await writeReport(f.out, merged.results, { cosine: merged.cosine, reference: f.reference });
  return {
    out: resolve(f.out),
    files: written.files.map((p) => resolve(p)),
    methods,
    reference: written.summary.reference,
    assdDefinition: written.summary.assdDefinition,
  };
}

export function registerReport(program: Command): void {
  program
    .command("report")
    .description("Merge several studies (methods) into one comparison: report.md, metrics.csv, metrics.json")
    .requiredOption("--runs <dirs...>", "study report folders, each holding a metrics.json")
    .requiredOption("--out <dir>", "output folder")
    .option("--name <name>", "name of the comparison", "comparison")
    .option("--reference <method>", "method the KS tests compare against (default: the last one)")
    .option("--json", "print one JSON line")
    .action(async (f: ReportFlags) => {
      const r = await mergeReports(f);
      if (f.json) printJson(r);
      else
        process.stdout.write(
          `wrote ${r.files.join(", ")}\nmethods: ${r.methods.join(", ")} (KS reference: ${r.reference})\n`,
        );
    });
}
