/**
 * Attack 2 of issue 13: "the first update of a phase fixes what is valid". The malicious site
 * pushes a single tensor `shared/evil [4]` the moment the round opens. The tensor schema of every
 * phase is computed from the study config before any update arrives, so the push is refused on
 * its header (FJ_AGG_UNKNOWN_TENSOR) — as are a missing tensor and a wrong shape — and the honest
 * sites' updates, which arrive afterwards, are accepted; they finish the study without knee.
 */
import { afterAll, describe, expect, it } from "vitest";
import {
  ATTACKER,
  type Bench,
  bench,
  coordinatorLog,
  expectHonestFinish,
  filledTheta,
  joinAsKnee,
  pushUpdate,
} from "./helpers.js";

describe("attack 2: the first update does not define the schema", () => {
  let b: Bench | undefined;
  afterAll(async () => b?.close());

  it("refuses shared/evil [4] on its header; the honest updates are accepted and finish the study", async () => {
    b = await bench();
    b.startHonest();
    for (const s of ["ankle", "shoulder"])
      await b.coordinator.waitFor((l) => l.msg === "site joined" && l.site === s, `${s} joined`);
    await joinAsKnee(b);
    const ref = { fold: 0, phase: "seg", round: 0 };
    const evil = await pushUpdate(b.attacker, { site: ATTACKER, ref }, [
      { name: "shared/evil", shape: [4], data: new Float32Array(4) },
    ]);
    expect(evil).toMatchObject({ status: "rejected", code: "FJ_AGG_UNKNOWN_TENSOR" });
    expect((evil as { reason: string }).reason).toBe("unexpected tensor shared/evil");
    // Θ without its last tensor, and Θ with one tensor reshaped: refused the same way
    const missing = await pushUpdate(b.attacker, { site: ATTACKER, ref }, filledTheta(b, 0.1).slice(0, -1));
    expect(missing).toMatchObject({ status: "rejected", code: "FJ_AGG_MISSING_TENSOR" });
    const theta = filledTheta(b, 0.1);
    theta[0] = { ...theta[0], shape: [theta[0].data.length] };
    const reshaped = await pushUpdate(b.attacker, { site: ATTACKER, ref }, theta);
    expect(reshaped).toMatchObject({ status: "rejected", code: "FJ_AGG_SHAPE" });

    const st = await expectHonestFinish(b);
    expect(st.ledger.map((e) => e.site).sort()).toEqual(["ankle", "shoulder"]);
    // the evil update came first, the honest ones were accepted after it
    const log = coordinatorLog(b);
    const evilAt = log.findIndex(
      (l) => l.msg === "update rejected" && l.site === ATTACKER && l.code === "FJ_AGG_UNKNOWN_TENSOR",
    );
    expect(evilAt).toBeGreaterThanOrEqual(0);
    for (const s of ["ankle", "shoulder"]) {
      const at = log.findIndex((l) => l.msg === "update accepted" && l.site === s);
      expect(at).toBeGreaterThan(evilAt);
    }
    const rejected = b.events
      .filter((e) => e.kind === "update.rejected")
      .map((e) => JSON.parse(e.json) as { site: string; code: string });
    expect(rejected.filter((r) => r.site === ATTACKER).map((r) => r.code)).toEqual([
      "FJ_AGG_UNKNOWN_TENSOR",
      "FJ_AGG_MISSING_TENSOR",
      "FJ_AGG_SHAPE",
    ]);
  });
});
