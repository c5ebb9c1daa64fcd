/**
 * `fedjoint bench quality --preset demo`, through the built CLI: on the same phantoms and budget it
 * trains pooled, alone and federated (a real coordinator and site processes), and prints one JSON
 * line `{preset, budget, results, summary}` with a result for every run, site and fold; report.md,
 * figure.svg and metrics.json land in --out. A bad preset is one FJ_ line and a non-zero exit.
 * A run trained later with another seed (`--runs`, `--seeds`) merges into one report (`--merge`).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QualityResult } from "../../../src/bench/quality.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const CLI = path.join(ROOT, "dist/cli/fedjoint.js");
const SITES = ["ankle", "knee", "shoulder"];

interface Line {
  preset: string;
  budget: { segSteps: number; aeSteps: number; slicesPerStep: number; slicesPerDomain: number };
  results: QualityResult[];
  summary: {
    reference: string | null;
    federationCost: Record<string, number> | null;
    multiDomainGain: Record<string, number> | null;
    targets: Record<string, boolean> | null;
    runs: { run: string; kind: string; meanDice: number }[];
  };
}

let out: string;
let line: Line;
let stderr = "";

/** Runs `fedjoint bench quality <args> --json` and returns its one JSON line. */
async function benchJson(args: string[]): Promise<Line> {
  const stdout = await new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, "bench", "quality", ...args, "--json"], {
      cwd: ROOT,
      env: { ...process.env, FEDJOINT_LOG_JSON: "1" },
    });
    let text = "";
    p.stdout.on("data", (d: Buffer) => {
      text += d.toString();
    });
    p.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    p.on("error", reject);
    p.on("exit", (code) =>
      code === 0
        ? resolve(text)
        : reject(new Error(`bench quality exited ${code}: ${stderr.split("\n").slice(-5).join("\n")}`)),
    );
  });
  const lines = stdout.trim().split("\n");
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]) as Line;
}

beforeAll(async () => {
  out = await mkdtemp(path.join(tmpdir(), "fj-bench-quality-"));
  line = await benchJson(["--preset", "demo", "--out", out]);
}, 900_000);

afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

describe("fedjoint bench quality --preset demo", () => {
  it("scores every run on every site's test exam of the same budget, one JSON line", () => {
    expect(line.preset).toBe("demo");
    // 40 SEG rounds × 1 step of 18 / 3 slices per domain, 10 AE steps
    expect(line.budget).toEqual({ segSteps: 40, aeSteps: 10, slicesPerStep: 6, slicesPerDomain: 240 });
    const runs = [...new Set(line.results.map((r) => `${r.kind} ${r.method} ${r.strategy}`))];
    expect(runs).toEqual([
      "centralised dsl+msc+mjap null",
      "individual individual null",
      "federated dsl+msc+mjap fedadam(gradient)",
      "federated dsl+msc+mjap fedavg(10 local steps)",
    ]);
    for (const run of runs) {
      const rows = line.results.filter((r) => `${r.kind} ${r.method} ${r.strategy}` === run);
      expect(
        rows.map((r) => [r.site, r.fold, r.seed]),
        run,
      ).toEqual(SITES.map((s) => [s, 0, 0]));
      for (const r of rows) {
        expect(r.dice, `${run} ${r.site}`).toBeGreaterThanOrEqual(0);
        expect(r.dice, `${run} ${r.site}`).toBeLessThanOrEqual(1);
        expect(Number.isFinite(r.assd) && r.assd >= 0, `${run} ${r.site} ASSD ${r.assd}`).toBe(true);
      }
    }
    // the comparisons are the results' own differences, in Dice points
    const dice = (kind: string, site: string) =>
      line.results.find((r) => r.kind === kind && r.site === site && r.strategy !== "fedavg(10 local steps)")!
        .dice;
    expect(line.summary.reference).toBe("federated dsl+msc+mjap fedadam(gradient)");
    for (const s of SITES) {
      expect(line.summary.federationCost?.[s]).toBeCloseTo(
        100 * (dice("federated", s) - dice("centralised", s)),
        0,
      );
      expect(line.summary.multiDomainGain?.[s]).toBeCloseTo(
        100 * (dice("centralised", s) - dice("individual", s)),
        0,
      );
    }
    expect(Object.keys(line.summary.targets ?? {}).sort()).toEqual([
      "aboveIndividualOnMean",
      "atLeastIndividualMinusOne",
      "withinTwoOfCentralised",
    ]);
  });

  it("writes report.md with its figure and metrics.json, and removes the runs' state", async () => {
    const report = await readFile(path.join(out, "report.md"), "utf8");
    expect(report).toContain("figure.svg");
    for (const r of line.summary.runs) expect(report, r.run).toContain(r.run);
    const svg = await readFile(path.join(out, "figure.svg"), "utf8");
    expect(svg.trimStart().startsWith("<svg") || svg.trimStart().startsWith("<?xml")).toBe(true);
    for (const s of SITES) expect(svg, s).toContain(s);
    const metrics = JSON.parse(await readFile(path.join(out, "metrics.json"), "utf8")) as {
      results: unknown[];
    };
    expect(metrics.results).toHaveLength(line.results.length);
    // without --keep-runs no run's coordinator or site state is left behind
    expect(existsSync(path.join(out, "runs", "00-seed0"))).toBe(false);
    expect(existsSync(path.join(out, "runs", "02-seed0"))).toBe(false);
  });

  it("trains one run with another seed (--runs, --seeds) and merges it with the first (--merge)", async () => {
    const seed1 = path.join(out, "seed1");
    const more = await benchJson([
      "--preset",
      "demo",
      "--runs",
      "individual",
      "--seeds",
      "1",
      "--out",
      seed1,
    ]);
    expect(more.results.map((r) => [r.kind, r.site, r.seed])).toEqual(SITES.map((s) => ["individual", s, 1]));
    const merged = path.join(out, "merged");
    const both = await benchJson(["--merge", `${out},${seed1}`, "--out", merged]);
    expect(both.preset).toBe("demo");
    expect(both.results).toHaveLength(line.results.length + 3);
    const alone = both.results.filter((r) => r.kind === "individual");
    expect(alone.map((r) => r.seed)).toEqual([0, 0, 0, 1, 1, 1]);
    // the merged summary is over both seeds: the mean of the two seeds' results, in Dice points
    const mean = (rows: QualityResult[]) => rows.reduce((a, r) => a + r.dice, 0) / rows.length;
    const run = both.summary.runs.find((r) => r.kind === "individual");
    expect(run?.meanDice).toBeCloseTo(mean(alone), 10);
    expect(await readFile(path.join(merged, "report.md"), "utf8")).toContain("| individual |");
    // a folder merged twice counts its runs twice: refused with one line, nothing written
    const r = spawnSync(
      process.execPath,
      [CLI, "bench", "quality", "--merge", `${out},${out}`, "--out", path.join(out, "twice")],
      { cwd: ROOT, encoding: "utf8" },
    );
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([
      `FJ_BENCH_MERGE: ${out}: 'centralised dsl+msc+mjap' seed 0 is also in ${out}, expected each run × seed once`,
    ]);
    expect(existsSync(path.join(out, "twice"))).toBe(false);
  }, 300_000);

  it("refuses an unknown preset with one line and a non-zero exit, before writing anything", () => {
    const dir = path.join(out, "never");
    const r = spawnSync(process.execPath, [CLI, "bench", "quality", "--preset", "huge", "--out", dir], {
      cwd: ROOT,
      encoding: "utf8",
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split("\n")).toEqual([
      "FJ_CLI_ARG: --preset is 'huge', expected one of demo, standard, paper",
    ]);
    expect(existsSync(dir)).toBe(false);
  });
});
