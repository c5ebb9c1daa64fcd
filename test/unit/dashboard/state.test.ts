import { describe, expect, it } from "vitest";
import { DashboardStateBuilder, meanStd, reduceEvents, roundKey } from "../../../src/dashboard/state.js";
import type { StudyEvent } from "../../../src/events/events.js";
import { EventClock, joinEvents, roundEvents, wholeStudy } from "../events/study-events.js";

describe("dashboard view model", () => {
  it("folds a whole study: sites, rounds, losses, bytes, LOO tables", () => {
    const s = reduceEvents("st", wholeStudy("st", 2));
    expect(s.status).toBe("done");
    expect(s.events).toBe(wholeStudy("st", 2).length);
    expect(s.sites.map((x) => [x.site, x.status, x.accepted, x.rejected])).toEqual([
      ["ankle-hospital", "done", 2, 0],
      ["knee-hospital", "done", 2, 0],
      ["shoulder-hospital", "done", 1, 1],
    ]);
    expect(s.sites[2]?.lastRejection).toEqual({
      round: "f0 seg r1",
      code: "FJ_AGG_NONFINITE",
      reason: "non-finite values",
    });
    expect(s.sites[0]?.bytes).toBe(8_000_000);
    expect(s.sites[0]?.vectors).toBe(64);
    expect(s.rounds.map((r) => r.key)).toEqual(["f0 seg r0", "f0 seg r1"]);
    const r1 = s.rounds[1];
    expect(r1?.accepted).toEqual(["ankle-hospital", "knee-hospital"]);
    expect(r1?.rejected.map((x) => x.site)).toEqual(["shoulder-hospital"]);
    expect(r1?.missing).toEqual(["shoulder-hospital"]);
    expect([r1?.bytesIn, r1?.bytesOut, r1?.durationMs, r1?.aggregationMs]).toEqual([
      8_000_000, 12_000_000, 7_500, 120,
    ]);
    expect(s.losses).toHaveLength(5);
    expect(s.embeddingsReceived).toBe(6);
    expect(s.loo.map((l) => [l.site, l.folds, l.metricNames])).toEqual([
      ["ankle-hospital", [0], ["dice", "assd"]],
      ["knee-hospital", [0], ["dice", "assd"]],
      ["shoulder-hospital", [0], ["dice", "assd"]],
    ]);
    expect(s.loo[1]?.rows[0]).toEqual({
      label: "bone_a",
      values: { dice: { mean: 0.89, std: 0, n: 1 }, assd: { mean: 0.5, std: 0, n: 1 } },
    });
    expect(s.recent[0]?.kind).toBe("study.done");
    expect(s.done).toEqual({ folds: 1, rounds: 2, durationMs: 60_000 });
  });

  it("tracks site status through a round and ignores replays and other studies", () => {
    const clock = new EventClock("st");
    const b = new DashboardStateBuilder("st");
    for (const e of joinEvents(clock)) b.apply(e);
    expect(b.snapshot().sites.every((x) => x.status === "joined")).toBe(true);
    const round = roundEvents(clock, 0, { reject: "knee-hospital" });
    b.apply(round[0] as StudyEvent);
    expect(b.snapshot().sites.every((x) => x.status === "training")).toBe(true);
    for (const e of round.slice(1, 4)) b.apply(e);
    expect(b.snapshot().sites.map((x) => x.status)).toEqual(["submitted", "rejected", "submitted"]);
    b.apply(round[4] as StudyEvent); // round.closed
    expect(b.snapshot().sites.map((x) => x.status)).toEqual(["waiting", "missed", "waiting"]);
    expect(b.apply(round[4] as StudyEvent)).toBe(false);
    expect(b.apply({ ...(round[5] as StudyEvent), study: "other", seq: 999 })).toBe(false);
    const left: StudyEvent = {
      kind: "site.left",
      study: "st",
      seq: 100,
      time: new Date().toISOString(),
      site: "knee-hospital",
      reason: "timeout",
    };
    expect(b.apply(left)).toBe(true);
    const knee = b.snapshot().sites[1];
    expect([knee?.status, knee?.leftReason]).toEqual(["left", "timeout"]);
    expect(b.snapshot().lastSeq).toBe(100);
  });

  it("averages LOO metrics over folds with the sample standard deviation", () => {
    const clock = new EventClock("st");
    const b = new DashboardStateBuilder("st");
    for (const e of joinEvents(clock)) b.apply(e);
    for (const [fold, dice] of [
      [0, 0.8],
      [1, 0.9],
      [2, 1.0],
    ] as const) {
      b.apply(
        clock.next({
          kind: "evaluation.reported",
          study: "st",
          site: "knee-hospital",
          joint: "knee",
          fold,
          metrics: { femur: { dice } },
        }),
      );
    }
    const loo = b.snapshot().loo[0];
    expect(loo?.folds).toEqual([0, 1, 2]);
    expect(loo?.rows[0]?.values.dice?.mean).toBeCloseTo(0.9, 12);
    expect(loo?.rows[0]?.values.dice?.std).toBeCloseTo(0.1, 12);
    expect(meanStd([])).toEqual({ mean: Number.NaN, std: Number.NaN, n: 0 });
  });

  it("names rounds by fold, phase and index", () => {
    expect(roundKey({ fold: 2, phase: "ae", round: 11 })).toBe("f2 ae r11");
  });
});
