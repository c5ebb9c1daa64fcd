/**
 * Attack 1 of issue 13: "one site replaces the global model". The malicious site pushes all-zero
 * weights declaring 10¹² samples: refused on its header (FJ_AGG_SAMPLES: at most the round's
 * steps × the per-joint batch). It then pushes the same zeros with the largest sample count it
 * may declare: accepted into the round, but the study runs with `relativeNormBound: 3`, and its
 * distance from Θ_r (‖Θ_r‖ itself) is far beyond 3 × the round's median, so the aggregation
 * leaves it out (FJ_AGG_NORM_OUTLIER, recorded with the round). The aggregate stays where honest
 * training put it, and the honest sites finish. The study's results travel without voxel counts.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { unpackTensorSet } from "../../../src/protocol/tensors.js";
import { perDomainBatch } from "../../../src/study/config.js";
import {
  ATTACKER,
  type Bench,
  bench,
  expectHonestFinish,
  filledTheta,
  initialTheta,
  joinAsKnee,
  pushUpdate,
} from "./helpers.js";

const norm = (ts: { data: Float32Array }[]) =>
  Math.sqrt(ts.reduce((s, t) => s + t.data.reduce((a, v) => a + v * v, 0), 0));

describe("attack 1: one site replaces the global model", () => {
  let b: Bench | undefined;
  afterAll(async () => b?.close());

  it("refuses 10¹² samples, leaves the zero update out of the aggregate, and the aggregate keeps its norm", async () => {
    b = await bench({ relativeNormBound: 3 });
    b.startHonest();
    for (const s of ["ankle", "shoulder"])
      await b.coordinator.waitFor((l) => l.msg === "site joined" && l.site === s, `${s} joined`);
    await joinAsKnee(b);
    const ref = { fold: 0, phase: "seg", round: 0 };
    const zeros = filledTheta(b, 0);
    const huge = await pushUpdate(b.attacker, { site: ATTACKER, ref, samples: 1e12 }, zeros);
    expect(huge).toMatchObject({ status: "rejected", code: "FJ_AGG_SAMPLES" });
    expect((huge as { reason: string }).reason).toMatch(
      /sample count 1000000000000, expected an integer 1\.\.8 /,
    );
    const most = b.config.localSteps * perDomainBatch(b.config, "seg");
    const accepted = await pushUpdate(b.attacker, { site: ATTACKER, ref, samples: most }, zeros);
    expect(accepted).toMatchObject({ status: "accepted" });

    const st = await expectHonestFinish(b);
    // the ledger holds knee's update (it was received), the aggregation record says it was left out
    expect(st.ledger.map((e) => e.site).sort()).toEqual(["ankle", ATTACKER, "shoulder"]);
    expect(st.aggregations).toHaveLength(1);
    const agg = st.aggregations[0];
    expect(agg.excluded?.map((e) => [e.site, e.code])).toEqual([[ATTACKER, "FJ_AGG_NORM_OUTLIER"]]);
    expect(agg.samples).toBe(st.ledger.filter((e) => e.site !== ATTACKER).reduce((n, e) => n + e.samples, 0));
    const events = b.events.map((e) => JSON.parse(e.json) as { kind: string; site?: string; code?: string });
    expect(
      events.filter((e) => e.kind === "update.rejected" && e.site === ATTACKER).map((e) => e.code),
    ).toEqual(["FJ_AGG_SAMPLES", "FJ_AGG_NORM_OUTLIER"]);
    // Θ_1 is the honest sites' mean: a few Adam steps from Θ_0, nowhere near zero (a zero update
    // weighted in would have cut the norm by a third)
    const dir = path.join(b.env.work, "coordinator");
    const theta1 = unpackTensorSet(await readFile(path.join(dir, st.models["0/seg"].file)), "model");
    const ratio = norm(theta1) / norm(initialTheta(b));
    expect(ratio).toBeGreaterThan(0.9);
    expect(ratio).toBeLessThan(1.1);
    // results.json: Dice and RAVD travel, the bones' voxel counts do not
    const results = await readFile(path.join(dir, "results.json"), "utf8");
    expect(results).toContain('"dice"');
    expect(results).toContain('"ravd"');
    expect(results).not.toMatch(/predVoxels|gtVoxels/);
  });
});
