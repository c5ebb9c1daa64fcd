/**
 * The quality benchmark's summary and outputs on a hand-made outcome: per-run means over folds,
 * federation's cost and multi-domain gain in Dice points, the targets, the paper's
 * ordering, the --json shape of the issue, and a figure that carries every site and run.
 */
import { describe, expect, it } from "vitest";
import { QUALITY_PRESETS } from "../../../src/bench/presets.js";
import {
  presetBudget,
  type QualityDetail,
  type QualityOutcome,
  runStudy,
} from "../../../src/bench/quality.js";
import { jsonLine, renderFigure, renderMarkdown, renderTable, summarise } from "../../../src/bench/report.js";

const SITES = ["ankle", "knee", "shoulder"];

function rows(
  run: string,
  kind: QualityDetail["kind"],
  method: string,
  strategy: string | null,
  dice: number[],
) {
  return SITES.flatMap((site, k) =>
    [0, 1].map(
      (fold): QualityDetail => ({
        run,
        kind,
        method,
        strategy,
        site,
        fold,
        seed: 0,
        dice: dice[k] + (fold === 0 ? -0.01 : 0.01),
        assd: 1 + k,
        bones: { a: { dice: dice[k], assd: 1 + k } },
      }),
    ),
  );
}

const fed = "fedadam(gradient)";
const outcome: QualityOutcome = {
  preset: "standard",
  budget: { segSteps: 200, aeSteps: 30, slicesPerStep: 3, slicesPerDomain: 600 },
  seconds: 10,
  runs: [],
  results: [
    ...rows("centralised dsl+msc+mjap", "centralised", "dsl+msc+mjap", null, [0.8, 0.7, 0.9]),
    ...rows("individual", "individual", "individual", null, [0.75, 0.72, 0.85]),
    ...rows("federated shared", "federated", "shared", fed, [0.5, 0.5, 0.5]),
    ...rows("federated dsl", "federated", "dsl", fed, [0.7, 0.6, 0.8]),
    ...rows("federated dsl+msc", "federated", "dsl+msc", fed, [0.75, 0.65, 0.85]),
    ...rows("federated dsl+msc+mjap", "federated", "dsl+msc+mjap", fed, [0.79, 0.71, 0.89]),
    ...rows(
      "federated dsl+msc+mjap fedavg",
      "federated",
      "dsl+msc+mjap",
      "fedavg(10 local steps)",
      [0.3, 0.2, 0.4],
    ),
  ],
};

describe("bench quality summary", () => {
  const s = summarise(outcome);

  it("averages over folds, and reports federation's cost and the multi-domain gain in Dice points", () => {
    expect(s.runs).toHaveLength(7);
    expect(s.runs[0].sites.knee.dice.mean).toBeCloseTo(0.7, 10);
    expect(s.runs[0].sites.knee.dice.std).toBeCloseTo(0.01, 10);
    expect(s.reference).toBe("federated dsl+msc+mjap");
    expect(s.federationCost).toEqual({ ankle: -1, knee: 1, shoulder: -1 });
    expect(s.multiDomainGain).toEqual({ ankle: 5, knee: -2, shoulder: 5 });
    expect(s.federatedGain).toEqual({ ankle: 4, knee: -1, shoulder: 4 });
    expect(s.targets).toEqual({
      withinTwoOfCentralised: true,
      atLeastIndividualMinusOne: true,
      aboveIndividualOnMean: true,
    });
    expect(s.ordering.map((o) => o.method)).toEqual([
      "individual",
      "shared",
      "dsl",
      "dsl+msc",
      "dsl+msc+mjap",
    ]);
    expect(s.orderingHolds).toBe(false); // shared (50) is below individual (77.3)
  });

  it("prints a table and a report with the figure, and a --json line in the issue's shape", () => {
    const table = renderTable(outcome, s);
    expect(table).toContain("centralised dsl+msc+mjap");
    expect(table).toMatch(/federation's cost .*: ankle -1\.0, knee \+1\.0, shoulder -1\.0/);
    expect(table).toContain("within 2 points of centralised on every site yes");
    const md = renderMarkdown(outcome, s, "figure.svg");
    expect(md).toContain("![test Dice per site](figure.svg)");
    expect(md).toContain("| individual | 75.0 ± 1.0 | 72.0 ± 1.0 | 85.0 ± 1.0 | 77.3 |");
    const svg = renderFigure(outcome, s);
    for (const label of [...SITES, "mean", ...s.runs.map((r) => r.run)])
      expect(svg).toContain(`>${label}</text>`);
    const json = jsonLine(outcome, s);
    expect(Object.keys(json)).toEqual(["preset", "budget", "results", "summary"]);
    expect(json.results).toHaveLength(42);
    expect(Object.keys(json.results[0]).sort()).toEqual(
      ["assd", "dice", "fold", "kind", "method", "seed", "site", "strategy"].sort(),
    );
    expect(JSON.parse(JSON.stringify(json)).summary.targets.withinTwoOfCentralised).toBe(true);
  });
});

describe("bench quality presets", () => {
  it("give every run of a preset the same per-domain budget, and standard is 64×64, base 16, depth 4, ≥ 2 folds", () => {
    for (const preset of Object.values(QUALITY_PRESETS)) {
      const budget = presetBudget(preset);
      for (const run of preset.runs) {
        const study = runStudy(preset, run, 0);
        expect(study.rounds * study.localSteps, `${preset.name} ${run.method}`).toBe(budget.segSteps);
        // federated sites validate about as often as pooled epochs (25 steps), not every round,
        // and at most once a round
        if (run.kind === "federated") {
          const every = study.strategy.validateEvery * study.localSteps;
          expect(every, `${preset.name} ${run.method}`).toBeLessThanOrEqual(Math.max(25, study.localSteps));
          expect(every, `${preset.name} ${run.method}`).toBeGreaterThan(12);
        }
      }
    }
    const std = runStudy(QUALITY_PRESETS.standard, QUALITY_PRESETS.standard.runs[0], 0);
    expect(std.model).toMatchObject({ size: 64, base: 16, depth: 4 });
    expect(QUALITY_PRESETS.standard.folds).toBeGreaterThanOrEqual(2);
    const paper = runStudy(QUALITY_PRESETS.paper, QUALITY_PRESETS.paper.runs[0], 0);
    expect(paper.model).toMatchObject({ size: 256, base: 32, depth: 5 });
  });
});
