/**
 * Attack 6 of issue 13 (losses and metrics): an update with 50,000 loss keys and a NaN loss was
 * accepted and bloated state.json (1.78 MB, rewritten on every save). An update now carries only
 * the method's loss terms and the site-client's metrics, each a finite number: the malicious
 * site's variants are refused on their header (FJ_AGG_SCALARS), nothing of them reaches the
 * ledger or state.json, and the honest sites finish.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { perDomainBatch } from "../../../src/study/config.js";
import {
  ATTACKER,
  type Bench,
  bench,
  expectHonestFinish,
  filledTheta,
  joinAsKnee,
  pushUpdate,
} from "./helpers.js";

describe("attack 6: losses and metrics", () => {
  let b: Bench | undefined;
  afterAll(async () => b?.close());

  it("refuses unknown, excess and non-finite loss and metric values on the header", async () => {
    b = await bench();
    b.startHonest();
    for (const s of ["ankle", "shoulder"])
      await b.coordinator.waitFor((l) => l.msg === "site joined" && l.site === s, `${s} joined`);
    await joinAsKnee(b);
    const ref = { fold: 0, phase: "seg", round: 0 };
    const samples = b.config.localSteps * perDomainBatch(b.config, "seg");
    const theta = filledTheta(b, 0.01);
    const flood = Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, i]));
    const cases: [Record<string, number>, Record<string, number>, RegExp][] = [
      [flood, {}, /^loss has 50000 keys, expected at most 2 \(total, ce\)$/],
      [{ total: Number.NaN, ce: 1 }, {}, /^loss\.total is NaN, expected a finite number/],
      [{ total: 1, msc: 1 }, {}, /^loss\.msc is not one of total, ce$/],
      [{ total: 1 }, { compute_ms: Number.POSITIVE_INFINITY }, /^metrics\.compute_ms is Infinity/],
      [
        { total: 1 },
        { secret: 1 },
        /^metrics\.secret is not one of compute_ms, train_ms, pull_ms, val_dice_before$/,
      ],
    ];
    for (const [loss, metrics, reason] of cases) {
      const ack = await pushUpdate(b.attacker, { site: ATTACKER, ref, samples, loss, metrics }, theta);
      expect(ack).toMatchObject({ status: "rejected", code: "FJ_AGG_SCALARS" });
      expect((ack as { reason: string }).reason).toMatch(reason);
    }
    const st = await expectHonestFinish(b);
    expect(st.ledger.map((e) => e.site).sort()).toEqual(["ankle", "shoulder"]);
    for (const e of st.ledger) {
      expect(Object.keys(e.loss).sort()).toEqual(["ce", "total"]);
      expect(Object.values(e.loss).every(Number.isFinite)).toBe(true);
    }
    const size = (await stat(path.join(b.env.work, "coordinator", "state.json"))).size;
    expect(size).toBeLessThan(200_000);
  });
});
