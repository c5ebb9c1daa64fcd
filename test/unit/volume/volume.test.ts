/**
 * The volume toolkit (src/volume): grid checks, bounding boxes, the one connected-components flood
 * fill, morphology, the exact EDT and the z-score. The scipy reference cases are the eval fixtures
 * (test/fixtures/eval/make_fixtures.py).
 */
import { describe, expect, it } from "vitest";
import { FedjointError } from "../../../src/errors.js";
import { boundingBox, boundingBoxWhere } from "../../../src/volume/box.js";
import {
  countComponents,
  keepLargestComponents,
  largestComponent,
  largestComponents,
  neighbourOffsets,
} from "../../../src/volume/components.js";
import { squaredEdt } from "../../../src/volume/edt.js";
import { assertDims, assertSpacing, type Dims3 } from "../../../src/volume/grid.js";
import { intensityStats, zScore, zScoreMap } from "../../../src/volume/intensity.js";
import { ballOffsets, closeBall, erode, surface } from "../../../src/volume/morphology.js";
import { decode, loadMetricsCases } from "../eval/fixtures.js";

const cases = loadMetricsCases();

function diffCount(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof FedjointError ? e.code : "not a FedjointError";
  }
  return undefined;
}

describe("grid", () => {
  it("dims and spacing are checked with FJ_VOLUME_GRID", () => {
    expect(codeOf(() => assertDims([2, 2, 2], 7, "x"))).toBe("FJ_VOLUME_GRID");
    expect(codeOf(() => assertDims([2, 0, 2], 0, "x"))).toBe("FJ_VOLUME_GRID");
    expect(codeOf(() => assertSpacing([1, 0, 1], "x"))).toBe("FJ_VOLUME_GRID");
    expect(codeOf(() => assertDims([2, 2, 2], 8, "x"))).toBeUndefined();
  });
});

describe("structures", () => {
  it("ball(2) is the 33-voxel 5×5×5 spherical kernel; connectivities have 6/18/26 neighbours", () => {
    expect(ballOffsets(2).length).toBe(33);
    expect(neighbourOffsets(6).length).toBe(6);
    expect(neighbourOffsets(18).length).toBe(18);
    expect(neighbourOffsets(26).length).toBe(26);
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
    expect(boundingBoxWhere(dims, (i) => a[i] !== 0 || b[i] !== 0)).toEqual(boundingBox(dims, a, b));
  });
});

describe("connected components", () => {
  it("count 6-, 18- and 26-connected components", () => {
    // two voxels touching only at a corner: 2 components with 6 and 18, 1 with 26
    const corner = new Uint8Array(8);
    corner[0] = 1;
    corner[7] = 1;
    expect(countComponents(corner, [2, 2, 2], 1, 6)).toBe(2);
    expect(countComponents(corner, [2, 2, 2], 1, 18)).toBe(2);
    expect(countComponents(corner, [2, 2, 2], 1, 26)).toBe(1);
    // touching along an edge: 2 with 6, 1 with 18
    const edge = new Uint8Array(8);
    edge[0] = 1;
    edge[3] = 1; // (1,1,0)
    expect(countComponents(edge, [2, 2, 2], 1, 6)).toBe(2);
    expect(countComponents(edge, [2, 2, 2], 1, 18)).toBe(1);
    expect(countComponents(new Uint8Array(8), [2, 2, 2], 1, 6)).toBe(0);
  });

  it("largestComponents (one pass, all labels) equals largestComponent per label", () => {
    for (const c of cases) {
      const pred = decode(c.pred);
      for (const conn of [6, 18, 26] as const) {
        const all = largestComponents(pred, c.dims, [...c.labels, 9], conn);
        for (const l of c.labels) {
          const single = largestComponent(
            pred.map((v) => (v === l ? 1 : 0)),
            c.dims,
            conn,
          );
          expect(diffCount(all.get(l)!, single)).toBe(0);
        }
        expect(all.get(9)!.reduce((a, b) => a + b, 0)).toBe(0);
      }
    }
  });

  it("keepLargestComponents removes exactly what largestComponents does not keep", () => {
    for (const c of cases) {
      const pred = decode(c.pred);
      const kept = largestComponents(pred, c.dims, c.labels, 6);
      const inPlace = Uint8Array.from(pred);
      const removed = keepLargestComponents(inPlace, c.dims, c.labels, 6);
      let expected = 0;
      for (let i = 0; i < pred.length; i++) {
        const l = pred[i];
        const keep = l !== 0 && kept.get(l)?.[i] === 1;
        expect(inPlace[i]).toBe(keep || !c.labels.includes(l) ? l : 0);
        if (l !== 0 && c.labels.includes(l) && !keep) expected++;
      }
      expect(removed).toBe(expected);
      for (const l of c.labels) if (pred.includes(l)) expect(countComponents(inPlace, c.dims, l, 6)).toBe(1);
    }
  });

  it("the tie-break picks the component scipy numbers first", () => {
    // two 2-voxel components: A at x=4 (first in our x-fastest order), B at x=0,z=3 (first in C order)
    const dims = [6, 1, 4] as const;
    const m = new Uint8Array(24);
    m[4] = 1;
    m[5] = 1; // A: (4,0,0),(5,0,0)
    m[0 + 6 * 3] = 1;
    m[1 + 6 * 3] = 1; // B: (0,0,3),(1,0,3) — x=0 comes first in C order (x slowest)
    const kept = largestComponent(m, dims, 6);
    expect(kept[18]).toBe(1);
    expect(kept[4]).toBe(0);
  });
});

describe("morphology", () => {
  it("a full 3×3×3 cube in a 5×5×5 volume has one interior voxel; border voxels are surface", () => {
    const dims: Dims3 = [5, 5, 5];
    const m = new Uint8Array(125);
    for (let z = 1; z < 4; z++)
      for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) m[x + 5 * (y + 5 * z)] = 1;
    expect(erode(m, dims, 26).reduce((a, b) => a + b, 0)).toBe(1);
    expect(surface(m, dims, 26).reduce((a, b) => a + b, 0)).toBe(26);
    const full = new Uint8Array(27).fill(1);
    expect(surface(full, [3, 3, 3], 26).reduce((a, b) => a + b, 0)).toBe(26);
  });

  it("the decomposed radius-2 closing and the EDT closing agree on every fixture mask", () => {
    for (const c of cases) {
      for (const l of c.labels) {
        const m = decode(c.pred).map((v) => (v === l ? 1 : 0));
        const a = closeBall(m, c.dims, 2, "decomposed");
        const b = closeBall(m, c.dims, 2, "edt");
        expect(diffCount(a, b)).toBe(0);
        expect(a.reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
      }
    }
    const one = new Uint8Array(27);
    one[13] = 1;
    expect(codeOf(() => closeBall(one, [3, 3, 3], 3, "decomposed"))).toBe("FJ_VOLUME_KERNEL");
  });

  it("closing removes foreground within the radius of the volume border (scipy border_value=0)", () => {
    const full = new Uint8Array(7 * 7 * 7).fill(1);
    const closed = closeBall(full, [7, 7, 7], 2);
    expect(closed.reduce((a, b) => a + b, 0)).toBe(27); // only the central 3×3×3 survives
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

describe("z-score", () => {
  it("gives mean 0 and std 1, and the same map from stored values with a negative slope", () => {
    const v = Float32Array.from({ length: 200 }, (_, i) => Math.sin(i) * 30 + i * 0.5);
    const z = zScore(Float32Array.from(v));
    const s = intensityStats(z);
    expect(s.mean).toBeCloseTo(0, 5);
    expect(s.std).toBeCloseTo(1, 5);
    // scaled = stored·slope + inter with slope −2: z(scaled) = −z(stored)
    const m = zScoreMap(v, -2);
    for (let i = 0; i < v.length; i += 17) expect(v[i] * m.scale + m.shift).toBeCloseTo(-z[i], 5);
    // a constant volume becomes 0 (std 1 by convention)
    expect([...zScore(new Float32Array(5).fill(7))]).toEqual([0, 0, 0, 0, 0]);
  });
});
