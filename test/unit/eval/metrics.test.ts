import { describe, expect, it } from "vitest";
import { squaredEdt } from "../../../src/eval/edt.js";
import { binaryMetrics, labelMapMetrics, sliceMetrics, volumeDiagonal } from "../../../src/eval/metrics.js";
import { erode, surface } from "../../../src/eval/morphology.js";
import { boundingBox, type Dims3 } from "../../../src/eval/volume.js";
import { decode, loadMetricsCases } from "./fixtures.js";

const cases = loadMetricsCases();

function maskEq(labels: Uint8Array, l: number): Uint8Array {
  return labels.map((v) => (v === l ? 1 : 0));
}

describe("metrics agree with MedPy's algorithm on scipy (committed fixtures)", () => {
  for (const c of cases) {
    for (const conn of [1, 2, 3] as const) {
      it(`${c.name}, surface connectivity ${conn}`, () => {
        const pred = decode(c.pred);
        const gt = decode(c.gt);
        for (const l of c.labels) {
          const ref = c.metrics[String(conn) as "1" | "2" | "3"][String(l)];
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
        }
      });
    }
  }

  it("labelMapMetrics gives the same numbers per label, default connectivity 3", () => {
    const c = cases[0];
    const res = labelMapMetrics(decode(c.pred), decode(c.gt), c.dims, c.spacing, c.labels);
    for (const { label, metrics } of res) {
      expect(metrics.assd).toBeCloseTo(c.metrics["3"][String(label)].assd, 6);
      expect(metrics.mssd).toBeCloseTo(c.metrics["3"][String(label)].mssd, 6);
    }
  });
});

describe("squaredEdt", () => {
  it("matches brute force with anisotropic spacing", () => {
    const dims: Dims3 = [9, 7, 5];
    const sp: [number, number, number] = [0.5, 1.3, 2.7];
    const sites = new Uint8Array(9 * 7 * 5);
    let s = 12345;
    for (let i = 0; i < sites.length; i++) {
      s = (s * 1103515245 + 12345) % 2147483648;
      sites[i] = s % 17 === 0 ? 1 : 0;
    }
    const d = squaredEdt(sites, dims, sp);
    for (let z = 0; z < 5; z++)
      for (let y = 0; y < 7; y++)
        for (let x = 0; x < 9; x++) {
          let best = Number.POSITIVE_INFINITY;
          for (let k = 0; k < 5; k++)
            for (let j = 0; j < 7; j++)
              for (let i = 0; i < 9; i++)
                if (sites[i + 9 * (j + 7 * k)])
                  best = Math.min(
                    best,
                    ((x - i) * sp[0]) ** 2 + ((y - j) * sp[1]) ** 2 + ((z - k) * sp[2]) ** 2,
                  );
          expect(d[x + 9 * (y + 7 * z)]).toBeCloseTo(best, 9);
        }
  });

  it("is Infinity everywhere without sites", () => {
    const d = squaredEdt(new Uint8Array(8), [2, 2, 2], [1, 1, 1]);
    expect([...d].every((v) => v === Number.POSITIVE_INFINITY)).toBe(true);
  });
});

describe("surface and erosion", () => {
  it("a full 3×3×3 cube in a 5×5×5 volume has one interior voxel; border voxels are surface", () => {
    const dims: Dims3 = [5, 5, 5];
    const m = new Uint8Array(125);
    for (let z = 1; z < 4; z++)
      for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) m[x + 5 * (y + 5 * z)] = 1;
    expect(erode(m, dims, 3).reduce((a, b) => a + b, 0)).toBe(1);
    expect(surface(m, dims, 3).reduce((a, b) => a + b, 0)).toBe(26);
    const full = new Uint8Array(27).fill(1);
    expect(surface(full, [3, 3, 3], 3).reduce((a, b) => a + b, 0)).toBe(26);
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
  it("counts, Hausdorff and ASSD match an O(n²) computation (7×5×3, unaligned views)", () => {
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
    const surf = (m: Uint8Array) => surface(m, dims, 3);
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
      expect(m.assd).toBeCloseTo((mean(a) + mean(b)) / 2, 9);
    }
  });
});

describe("boundingBox", () => {
  it("finds the box of several masks, aligned or not, and null when empty", () => {
    const dims: Dims3 = [5, 3, 3];
    const buf = new Uint8Array(46);
    const a = buf.subarray(1);
    a[1 + 5 * (2 + 3 * 0)] = 1; // (1,2,0)
    const b = new Uint8Array(45);
    b[4 + 5 * (0 + 3 * 2)] = 1; // (4,0,2) — the last word's tail voxel 44 is (4,2,2)
    b[44] = 1;
    expect(boundingBox(dims, a, b)).toEqual({ lo: [1, 0, 0], hi: [5, 3, 3] });
    expect(boundingBox(dims, a)).toEqual({ lo: [1, 2, 0], hi: [2, 3, 1] });
    expect(boundingBox(dims, new Uint8Array(45))).toBeNull();
  });
});
