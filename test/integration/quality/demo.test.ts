/**
 * Acceptance of `npm run demo` (issue 11): the embedded demo — coordinator and three site-client
 * processes on loopback mTLS, ankle, knee and shoulder phantoms, the study's default strategy —
 * ends with every bone's 3D post-processed test Dice > 0 and every site's mean test Dice ≥ 0.70.
 * Its wall time is printed (the ≤ 3 min budget is measured, not asserted: no timed assertions).
 */
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { demoOptions, simulate } from "../../../src/simulation/simulate.js";

const work = path.join(os.tmpdir(), `fj-demo-it-${process.pid}`);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("npm run demo", () => {
  it("segments every bone of every site's test exam (Dice > 0; site mean ≥ 0.70)", async () => {
    // the default engine, as `npm run demo` runs it
    const summary = await simulate(demoOptions({ workdir: work }));
    const lines = Object.entries(summary.sites).map(
      ([site, s]) =>
        `${site}: ${Object.entries(s.testDicePerLabel)
          .map(([bone, d]) => `${bone} ${d.toFixed(3)}`)
          .join(", ")}`,
    );
    process.stderr.write(`demo: ${summary.wallSeconds.toFixed(0)} s wall\n  ${lines.join("\n  ")}\n`);
    expect(Object.keys(summary.sites)).toEqual(["ankle", "knee", "shoulder"]);
    for (const [site, s] of Object.entries(summary.sites)) {
      const dice = Object.values(s.testDicePerLabel);
      expect(dice.length, site).toBeGreaterThan(1);
      for (const [bone, d] of Object.entries(s.testDicePerLabel))
        expect(d, `${site} ${bone}`).toBeGreaterThan(0);
      const mean = dice.reduce((a, b) => a + b, 0) / dice.length;
      expect(mean, `${site} mean test Dice`).toBeGreaterThanOrEqual(0.7);
    }
  }, 1_200_000);
});
