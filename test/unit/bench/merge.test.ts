/**
 * Merging quality benchmarks run in pieces (`--merge`) and choosing runs (`--runs`): the merged
 * summary averages over every source's folds × seeds, wall time is per seed, a bone at Dice 0 in
 * every fold × seed is named, and folders of another preset or budget, a run × seed twice, or a
 * metrics.json that is not one are refused with one FJ_ line.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { qualityCommand, resolvePreset } from "../../../src/bench/command.js";
import { mergeOutcomes, readQualityOutcome } from "../../../src/bench/merge.js";
import type { QualityDetail, QualityOutcome, RunRecord } from "../../../src/bench/quality.js";
import { renderMarkdown, renderTable, summarise, writeQualityReport } from "../../../src/bench/report.js";
import { FedjointError } from "../../../src/errors.js";

const budget = { segSteps: 200, aeSteps: 30, slicesPerStep: 6, slicesPerDomain: 1200 };
const SITES = ["ankle", "knee", "shoulder"];

/** One run × seed: 2 folds × 3 sites; the knee's fibula at Dice 0 when `fibula` is 0. */
function piece(
  run: string,
  kind: QualityDetail["kind"],
  seed: number,
  dice: number,
  fibula = dice,
  method = kind === "individual" ? "individual" : "dsl+msc+mjap",
) {
  const record: RunRecord = {
    run,
    kind,
    method,
    strategy: kind === "federated" ? "fedadam(gradient)" : null,
    seed,
    schedule: { rounds: 200, localSteps: 1, aeRounds: 30, aeLocalSteps: 1 },
    seconds: 100 * (seed + 1),
  };
  const results = SITES.flatMap((site) =>
    [0, 1].map(
      (fold): QualityDetail => ({
        run,
        kind,
        method: record.method,
        strategy: record.strategy,
        site,
        fold,
        seed,
        dice,
        assd: 1,
        bones:
          site === "knee"
            ? { femur: { dice, assd: 1 }, fibula: { dice: fibula, assd: 200 } }
            : { a: { dice, assd: 1 } },
      }),
    ),
  );
  return { record, results };
}

/** The one line a CLI prints for what `f` throws. */
async function lineOf(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (e) {
    if (e instanceof FedjointError) return e.toLine();
    throw e;
  }
  throw new Error("expected an FJ_ error");
}

function outcome(pieces: ReturnType<typeof piece>[], over: Partial<QualityOutcome> = {}): QualityOutcome {
  return {
    preset: "standard",
    budget,
    seconds: pieces.reduce((a, p) => a + p.record.seconds, 0),
    runs: pieces.map((p) => p.record),
    results: pieces.flatMap((p) => p.results),
    ...over,
  };
}

const seed0 = outcome([
  piece("centralised dsl+msc+mjap", "centralised", 0, 0.8, 0),
  piece("individual", "individual", 0, 0.7),
  piece("federated shared", "federated", 0, 0.3, 0, "shared"),
  piece("federated dsl+msc+mjap", "federated", 0, 0.78, 0),
]);
const seeds12 = outcome([
  piece("centralised dsl+msc+mjap", "centralised", 1, 0.9, 0),
  piece("centralised dsl+msc+mjap", "centralised", 2, 0.7, 0),
  piece("individual", "individual", 1, 0.8),
  piece("federated dsl+msc+mjap", "federated", 1, 0.8, 0.5),
]);

describe("bench quality --merge", () => {
  const merged = mergeOutcomes([
    { dir: "a", outcome: seed0 },
    { dir: "b", outcome: seeds12 },
  ]);
  const s = summarise(merged);

  it("averages every source's folds × seeds, keeps the first source's run order, and times one seed", () => {
    expect(s.runs.map((r) => r.run)).toEqual([
      "centralised dsl+msc+mjap",
      "individual",
      "federated shared",
      "federated dsl+msc+mjap",
    ]);
    const central = s.runs[0];
    expect(central.seeds).toEqual([0, 1, 2]);
    expect(central.sites.knee.dice.n).toBe(6);
    expect(central.sites.ankle.dice.mean).toBeCloseTo(0.8, 10);
    expect(central.seconds).toBeCloseTo(200, 10); // (100 + 200 + 300) / 3
    expect(s.runs[2].seeds).toEqual([0]);
    expect(merged.results.filter((r) => r.run === "individual").map((r) => r.seed)).toEqual([
      0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1,
    ]);
    expect(merged.seconds).toBe(seed0.seconds + seeds12.seconds);
    // federated (0.78, 0.8) − centralised (0.8, 0.9, 0.7) on the ankle: 79 − 80 = −1 point
    expect(s.federationCost?.ankle).toBeCloseTo(-1, 10);
  });

  it("names a bone at Dice 0 in every fold × seed of a run, and only then", () => {
    // the federated run found the fibula with seed 1; the pooled and shared runs never did
    expect(s.neverFound).toEqual([
      { site: "knee", bone: "fibula", runs: ["centralised dsl+msc+mjap", "federated shared"] },
    ]);
    expect(renderTable(merged, s)).toContain(
      "never found (test Dice 0 in every fold × seed; its ASSD is the volume diagonal): knee fibula in 2 of 4 runs",
    );
    const md = renderMarkdown(merged, s, "figure.svg");
    expect(md).toContain("| knee | femur | fibula |");
    expect(md).toContain("| federated dsl+msc+mjap | 79.0 | 25.0 |");
    expect(md).toMatch(/\| centralised dsl\+msc\+mjap \|.*\| 0, 1, 2 \| 200 \|/);
  });

  it("refuses another preset, another budget, a run × seed twice, and a single folder", async () => {
    const other = outcome([piece("individual", "individual", 5, 0.5)], { preset: "demo" });
    expect(
      await lineOf(() =>
        mergeOutcomes([
          { dir: "a", outcome: seed0 },
          { dir: "c", outcome: other },
        ]),
      ),
    ).toBe("FJ_BENCH_MERGE: c: preset is 'demo', expected 'standard' as in a");
    const budget2 = outcome([piece("individual", "individual", 5, 0.5)], {
      budget: { ...budget, segSteps: 100 },
    });
    expect(
      await lineOf(() =>
        mergeOutcomes([
          { dir: "a", outcome: seed0 },
          { dir: "d", outcome: budget2 },
        ]),
      ),
    ).toMatch(/^FJ_BENCH_MERGE: d: budget is .*"segSteps":100.*, expected .*"segSteps":200.* as in a$/);
    const again = outcome([piece("individual", "individual", 0, 0.5)]);
    expect(
      await lineOf(() =>
        mergeOutcomes([
          { dir: "a", outcome: seed0 },
          { dir: "e", outcome: again },
        ]),
      ),
    ).toBe("FJ_BENCH_MERGE: e: 'individual' seed 0 is also in a, expected each run × seed once");
    expect(await lineOf(() => mergeOutcomes([{ dir: "a", outcome: seed0 }]))).toBe(
      "FJ_BENCH_MERGE: --merge names 1 folder(s), expected at least 2",
    );
  });
});

describe("bench quality metrics.json read back", () => {
  let root = "";
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("reads what writeQualityReport wrote, and names the field of a file that is not one", async () => {
    root = await mkdtemp(path.join(tmpdir(), "fj-merge-"));
    const good = path.join(root, "good");
    await mkdir(good);
    await writeQualityReport(good, seed0, summarise(seed0));
    const back = await readQualityOutcome(good);
    expect(back).toEqual(seed0);

    const bad = path.join(root, "bad");
    await mkdir(bad);
    await writeQualityReport(bad, seeds12, summarise(seeds12));
    const file = path.join(bad, "metrics.json");
    const json = JSON.parse(await readFile(file, "utf8"));
    json.results[3].dice = 1.5;
    await writeFile(file, JSON.stringify(json));
    expect(await lineOf(() => readQualityOutcome(bad))).toMatch(
      /^FJ_BENCH_METRICS_INVALID: .*bad\/metrics\.json: field results\.3\.dice: .*\(expected a fedjoint\.quality\/1 file\)$/,
    );
    json.results[3].dice = 0.5;
    json.runs = json.runs.slice(1);
    await writeFile(file, JSON.stringify(json));
    await expect(readQualityOutcome(bad)).rejects.toThrow(
      "results: 'centralised dsl+msc+mjap' seed 1 has no entry in runs",
    );
    expect(await lineOf(() => readQualityOutcome(path.join(root, "none")))).toMatch(
      /^FJ_BENCH_METRICS_INVALID: .*none\/metrics\.json: cannot be read/,
    );
    // training flags make no sense with --merge; nothing is written
    const out = path.join(root, "out");
    expect(
      await lineOf(() => qualityCommand({ merge: `${good},${bad}`, seeds: "1", out, backend: "cpu" })),
    ).toBe(
      "FJ_CLI_ARG: --merge takes no --seeds, expected only --out, --preset and --json (the folders' runs are already trained)",
    );
    await expect(readFile(path.join(out, "metrics.json"))).rejects.toThrow(/ENOENT/);
    // the merged report never replaces one of its sources
    expect(await lineOf(() => qualityCommand({ merge: `${good},${bad}`, out: good, backend: "cpu" }))).toBe(
      `FJ_CLI_ARG: --out ${good} is one of the --merge folders, expected a folder of its own (its metrics.json would be replaced)`,
    );
  });
});

describe("bench quality --runs", () => {
  it("keeps the runs whose kind:method:strategy starts with an item, and names the choices otherwise", async () => {
    const p = resolvePreset({
      preset: "standard",
      seeds: "1,2",
      runs: "centralised,individual,federated:dsl+msc+mjap:fedadam",
    });
    expect(p.seeds).toEqual([1, 2]);
    expect(p.runs.map((r) => `${r.kind} ${r.method} ${r.strategy?.name ?? ""}`.trim())).toEqual([
      "centralised dsl+msc+mjap",
      "individual individual",
      "federated dsl+msc+mjap",
    ]);
    expect(resolvePreset({ preset: "standard", runs: "federated:dsl+msc+mjap" }).runs).toHaveLength(2);
    expect(
      await lineOf(() => resolvePreset({ preset: "standard", runs: "federated:dsl+msc+mjap:fedprox" })),
    ).toBe(
      "FJ_CLI_ARG: --runs: 'federated:dsl+msc+mjap:fedprox' matches no run of preset standard, expected a prefix of one of centralised:dsl+msc+mjap, individual:individual, federated:shared:fedadam, federated:dsl:fedadam, federated:dsl+msc:fedadam, federated:dsl+msc+mjap:fedadam, federated:dsl+msc+mjap:fedavg",
    );
    // a prefix is whole fields: "federated:dsl" is the dsl run only, not dsl+msc
    expect(resolvePreset({ preset: "standard", runs: "federated:dsl" }).runs.map((r) => r.method)).toEqual([
      "dsl",
    ]);
  });
});
