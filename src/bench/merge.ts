/**
 * Merging `fedjoint bench quality` outputs: seeds or runs trained in separate invocations (another
 * session, another machine) become one report, as if one invocation had trained them all. Each
 * folder's metrics.json is validated; the folders must share the preset and the per-domain budget,
 * and each run × seed may come from one folder only (results are never averaged twice).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { fjError } from "../errors.js";
import type { QualityOutcome } from "./quality.js";

const kind = z.enum(["centralised", "individual", "federated"]);
const count = z.number().int().nonnegative();
const finite = z.number().finite();

const metricsFileSchema = z.object({
  schema: z.literal("fedjoint.quality/1"),
  preset: z.string().min(1),
  budget: z.object({ segSteps: count, aeSteps: count, slicesPerStep: count, slicesPerDomain: count }),
  seconds: finite.nonnegative(),
  runs: z.array(
    z.object({
      run: z.string().min(1),
      kind,
      method: z.string().min(1),
      strategy: z.string().nullable(),
      seed: count,
      schedule: z.object({ rounds: count, localSteps: count, aeRounds: count, aeLocalSteps: count }),
      seconds: finite.nonnegative(),
    }),
  ),
  results: z.array(
    z.object({
      run: z.string().min(1),
      kind,
      method: z.string().min(1),
      strategy: z.string().nullable(),
      site: z.string().min(1),
      fold: count,
      seed: count,
      dice: z.number().min(0).max(1),
      assd: finite.nonnegative(),
      bones: z.record(z.string(), z.object({ dice: z.number().min(0).max(1), assd: finite.nonnegative() })),
    }),
  ),
});

/** A quality benchmark's outcome read back from `<dir>/metrics.json`. */
export async function readQualityOutcome(dir: string): Promise<QualityOutcome> {
  const file = path.join(dir, "metrics.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw fjError("FJ_BENCH_METRICS_INVALID", "cannot be read (is this a bench quality --out folder?)", {
      file,
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw fjError("FJ_BENCH_METRICS_INVALID", "is not valid JSON", { file, cause: err });
  }
  const parsed = metricsFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw fjError(
      "FJ_BENCH_METRICS_INVALID",
      `field ${issue.path.join(".") || "<root>"}: ${issue.message} (expected a fedjoint.quality/1 file)`,
      { file },
    );
  }
  const { preset, budget, seconds, runs, results } = parsed.data;
  for (const r of results) {
    if (!runs.some((x) => x.run === r.run && x.seed === r.seed)) {
      throw fjError(
        "FJ_BENCH_METRICS_INVALID",
        `results: '${r.run}' seed ${r.seed} has no entry in runs, expected every result's run × seed among them`,
        { file },
      );
    }
  }
  return { preset, budget, seconds, runs, results };
}

/** One outcome of several: the runs in order of first appearance, each run × seed from one source. */
export function mergeOutcomes(sources: { dir: string; outcome: QualityOutcome }[]): QualityOutcome {
  if (sources.length < 2) {
    throw fjError("FJ_BENCH_MERGE", `--merge names ${sources.length} folder(s), expected at least 2`);
  }
  const [first] = sources;
  const owner = new Map<string, string>();
  for (const { dir, outcome } of sources) {
    if (outcome.preset !== first.outcome.preset) {
      throw fjError(
        "FJ_BENCH_MERGE",
        `${dir}: preset is '${outcome.preset}', expected '${first.outcome.preset}' as in ${first.dir}`,
      );
    }
    if (!isDeepStrictEqual(outcome.budget, first.outcome.budget)) {
      throw fjError(
        "FJ_BENCH_MERGE",
        `${dir}: budget is ${JSON.stringify(outcome.budget)}, expected ${JSON.stringify(first.outcome.budget)} as in ${first.dir}`,
      );
    }
    for (const r of outcome.runs) {
      const key = `'${r.run}' seed ${r.seed}`;
      const other = owner.get(key);
      if (other !== undefined) {
        throw fjError("FJ_BENCH_MERGE", `${dir}: ${key} is also in ${other}, expected each run × seed once`);
      }
      owner.set(key, dir);
    }
  }
  const order = [...new Set(sources.flatMap((s) => s.outcome.runs.map((r) => r.run)))];
  const rank = (run: string) => order.indexOf(run);
  // Array.prototype.sort is stable: within a run × seed, each source's own order stays
  const byRunThenSeed = (a: { run: string; seed: number }, b: { run: string; seed: number }) =>
    rank(a.run) - rank(b.run) || a.seed - b.seed;
  return {
    preset: first.outcome.preset,
    budget: first.outcome.budget,
    runs: sources.flatMap((s) => s.outcome.runs).sort(byRunThenSeed),
    results: sources.flatMap((s) => s.outcome.results).sort(byRunThenSeed),
    seconds: sources.reduce((a, s) => a + s.outcome.seconds, 0),
  };
}
