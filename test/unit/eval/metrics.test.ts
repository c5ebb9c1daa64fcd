import { describe, expect, it } from "vitest";
import { FedjointError } from "../../../src/errors.js";
import {
  binaryMetrics,
  labelMapMetrics,
  sliceMetrics,
  surfaceDistances,
  volumeDiagonal,
} from "../../../src/eval/metrics.js";
import type { Dims3 } from "../../../src/volume/grid.js";
import { surface } from "../../../src/volume/morphology.js";
import { decode, loadMetricsCases } from "./fixtures.js";

const cases = loadMetricsCases();

function maskEq(labels: Uint8Array, l: number): Uint8Array {
  return labels.map((v) => (v === l ? 1 : 0));
}

describe("metrics agree with MedPy's algorithm on scipy (committed fixtures)", () => {
  for (const c of cases) {
    for (const conn of [6, 18, 26] as const) {
      it(`${c.name}, surface connectivity ${conn}: pooled ASSD (eq. S5) and the directed option`, () => {
        const pred = decode(c.pred);
        const gt = decode(c.gt);
        for (const l of c.labels) {
          const ref = c.metrics[String(conn) as "6" | "18" | "26"][String(l)];
          const m = binaryMetrics(maskEq(pred, l), maskEq(gt, l), c.dims, c.spacing, { connectivity: conn });
          expect(m.status).toBe("ok");
          expect(m.predVoxels).toBe(ref.predVoxels);
          expect(m.gtVoxels).toBe(ref.gtVoxels);
          expect(Math.abs(m.dice - ref.dice)).toBeLessThan(1e-6);
          expect(Math.abs(m.sensitivity - ref.sensitivity)).toBeLessThan(1e-6);
          expect(Math.abs(m.specificity - ref.specificity)).toBeLessThan(1e-6);
          expect(Math.abs((m.ravd ?? Number.NaN) - ref.ravd)).toBeLessThan(1e-6);
          expect(Math.abs(m.mssd - ref.mssd)).toBeLessThan(1e-3);
          expect(Math.abs(m.assd - ref.assd)).toBeLessThan(1e-3);
          const d = binaryMetrics(maskEq(pred, l), maskEq(gt, l), c.dims, c.spacing, {
            connectivity: conn,
            assd: "directed",
          });
          expect(Math.abs(d.assd - ref.assdDirected)).toBeLessThan(1e-3);
          expect({ ...d, assd: 0 }).toEqual({ ...m, assd: 0 });
        }
      });
    }
  }

  it("the two definitions differ where a component is missed (pooled weighs its distances by number)", () => {
    const c = cases.find((x) => x.name === "missed_component")!;
    const ref = c.metrics["26"]["1"];
    expect(ref.assd - ref.assdDirected).toBeGreaterThan(0.1);
    const pred = decode(c.pred);
    const gt = decode(c.gt);
    const m = binaryMetrics(pred, gt, c.dims, c.spacing);
    const d = binaryMetrics(pred, gt, c.dims, c.spacing, { assd: "directed" });
    expect(m.assd).toBeCloseTo(ref.assd, 6);
    expect(d.assd).toBeCloseTo(ref.assdDirected, 6);
    const s = surfaceDistances(pred, gt, c.dims, c.spacing);
    expect(s.assd).toBeCloseTo(
      (s.asdPredToGt * s.surfacePred + s.asdGtToPred * s.surfaceGt) / (s.surfacePred + s.surfaceGt),
      12,
    );
    expect(s.assdDirected).toBeCloseTo((s.asdPredToGt + s.asdGtToPred) / 2, 12);
  });

  it("labelMapMetrics gives the same numbers per label, default connectivity 26 and pooled ASSD", () => {
    const c = cases[0];
    const res = labelMapMetrics(decode(c.pred), decode(c.gt), c.dims, c.spacing, c.labels);
    for (const { label, metrics } of res) {
      expect(metrics.assd).toBeCloseTo(c.metrics["26"][String(label)].assd, 6);
      expect(metrics.mssd).toBeCloseTo(c.metrics["26"][String(label)].mssd, 6);
    }
  });

  it("surfaceDistances of an empty mask is a registry error", () => {
    const empty = new Uint8Array(8);
    const one = new Uint8Array(8);
    one[3] = 1;
    for (const [p, g, which] of [
      [empty, one, "prediction"],
      [one, empty, "ground truth"],
    ] as const) {
      let err: unknown;
      try {
        surfaceDistances(p, g, [2, 2, 2], [1, 1, 1]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FedjointError);
      expect((err as FedjointError).toLine()).toBe(
        `FJ_EVAL_EMPTY_MASKS: surfaceDistances: the ${which} is empty`,
      );
    }
  });
});

describe("empty masks have documented values", () => {
  const dims: Dims3 = [4, 5, 6];
  const sp: [number, number, number] = [0.5, 0.5, 2];
  const empty = new Uint8Array(120);
  const some = new Uint8Array(120);
  some[7] = 1;
  some[8] = 1;
  const diag = volumeDiagonal(dims, sp);

  it("both empty: perfect scores", () => {
    const m = binaryMetrics(empty, empty, dims, sp);
    expect(m).toMatchObject({
      status: "bothEmpty",
      dice: 1,
      sensitivity: 1,
      specificity: 1,
      mssd: 0,
      assd: 0,
      ravd: 0,
    });
  });
  it("empty prediction: Dice 0, distances = volume diagonal, RAVD 100", () => {
    const m = binaryMetrics(empty, some, dims, sp);
    expect(m).toMatchObject({ status: "emptyPred", dice: 0, sensitivity: 0, specificity: 1, ravd: 100 });
    expect(m.mssd).toBeCloseTo(Math.hypot(2, 2.5, 12), 12);
    expect(m.assd).toBe(diag);
  });
  it("empty ground truth: Dice 0, RAVD null, specificity from counts", () => {
    const m = binaryMetrics(some, empty, dims, sp);
    expect(m).toMatchObject({ status: "emptyGt", dice: 0, sensitivity: 0, ravd: null, mssd: diag });
    expect(m.specificity).toBeCloseTo(118 / 120, 12);
  });
});

describe("sliceMetrics", () => {
  it("keeps slices with ground truth and averages labels as documented", () => {
    const dims: Dims3 = [2, 2, 3];
    // z=0: gt empty (dropped). z=1: gt label 1 on 2 voxels, pred label 1 on 1 of them + label 2 on 1 voxel.
    // z=2: gt label 2 on all 4, pred label 2 on all 4.
    const gt = new Uint8Array([0, 0, 0, 0, 1, 1, 0, 0, 2, 2, 2, 2]);
    const pred = new Uint8Array([1, 0, 0, 0, 1, 0, 2, 0, 2, 2, 2, 2]);
    const s = sliceMetrics(pred, gt, dims, [1, 2]);
    expect(s.dice.length).toBe(2);
    // z=1: label1 dice 2*1/(1+2)=2/3, label2 dice 0 (predicted, absent) -> mean 1/3
    expect(s.dice[0]).toBeCloseTo(1 / 3, 12);
    expect(s.sensitivity[0]).toBeCloseTo(0.5, 12);
    // spec label1: negatives 2, fp 0 -> 1; label2: negatives 4, fp 1 -> 0.75; mean 0.875
    expect(s.specificity[0]).toBeCloseTo(0.875, 12);
    expect(s.dice[1]).toBe(1);
    expect(s.sensitivity[1]).toBe(1);
    // label 2 fills the slice: no negatives -> 1; label 1: 4 negatives, no fp -> 1
    expect(s.specificity[1]).toBe(1);
    // same result from per-label masks
    const masks = new Map([
      [1, maskEq(pred, 1)],
      [2, maskEq(pred, 2)],
    ]);
    expect(sliceMetrics(masks, gt, dims, [1, 2])).toEqual(s);
  });
});

describe("binaryMetrics against brute force on odd-sized volumes", () => {
  it("counts, Hausdorff and both ASSDs match an O(n²) computation (7×5×3, unaligned views)", () => {
    const dims: Dims3 = [7, 5, 3];
    const sp: [number, number, number] = [0.7, 1.1, 2.3];
    const n = 105;
    let seed = 99;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    // views at byte offset 1 exercise the unaligned path; the tail (105 = 4·26 + 1) the remainder loop
    const pbuf = new Uint8Array(n + 1);
    const gbuf = new Uint8Array(n + 1);
    const p = pbuf.subarray(1);
    const g = gbuf.subarray(1);
    for (let i = 0; i < n; i++) {
      p[i] = rnd() < 0.45 ? 1 : 0;
      g[i] = rnd() < 0.4 ? 1 : 0;
    }
    p[104] = 1;
    const coords = (i: number) => [i % 7, Math.floor(i / 7) % 5, Math.floor(i / 35)];
    const surf = (m: Uint8Array) => surface(m, dims, 26);
    const sp1 = surf(p);
    const sg1 = surf(g);
    const dist = (i: number, j: number) => {
      const a = coords(i);
      const b = coords(j);
      return Math.hypot((a[0] - b[0]) * sp[0], (a[1] - b[1]) * sp[1], (a[2] - b[2]) * sp[2]);
    };
    const directed = (from: Uint8Array, to: Uint8Array) => {
      const ds: number[] = [];
      for (let i = 0; i < n; i++) {
        if (!from[i]) continue;
        let best = Number.POSITIVE_INFINITY;
        for (let j = 0; j < n; j++) if (to[j]) best = Math.min(best, dist(i, j));
        ds.push(best);
      }
      return ds;
    };
    const a = directed(sp1, sg1);
    const b = directed(sg1, sp1);
    const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
    let tp = 0;
    let np = 0;
    let ng = 0;
    for (let i = 0; i < n; i++) {
      np += p[i];
      ng += g[i];
      tp += p[i] & g[i];
    }
    for (const [pp, gg] of [
      [p, g],
      [Uint8Array.from(p), Uint8Array.from(g)],
    ]) {
      const m = binaryMetrics(pp, gg, dims, sp);
      expect(m.predVoxels).toBe(np);
      expect(m.gtVoxels).toBe(ng);
      expect(m.dice).toBeCloseTo((2 * tp) / (np + ng), 12);
      expect(m.mssd).toBeCloseTo(Math.max(...a, ...b), 9);
      expect(m.assd).toBeCloseTo(mean([...a, ...b]), 9);
      expect(binaryMetrics(pp, gg, dims, sp, { assd: "directed" }).assd).toBeCloseTo(
        (mean(a) + mean(b)) / 2,
        9,
      );
    }
  });
});
