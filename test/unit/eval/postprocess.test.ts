import { describe, expect, it } from "vitest";
import { binaryMetrics } from "../../../src/eval/metrics.js";
import {
  ballOffsets,
  closeBall,
  largestComponent,
  largestComponents,
  neighbourOffsets,
} from "../../../src/eval/morphology.js";
import { combineMasks, postprocessLabels } from "../../../src/eval/postprocess.js";
import { decode, loadMetricsCases } from "./fixtures.js";

const cases = loadMetricsCases();

function diffCount(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

describe("structures", () => {
  it("ball(2) is the 33-voxel 5×5×5 spherical kernel; connectivities have 6/18/26 neighbours", () => {
    expect(ballOffsets(2).length).toBe(33);
    expect(neighbourOffsets(1).length).toBe(6);
    expect(neighbourOffsets(2).length).toBe(18);
    expect(neighbourOffsets(3).length).toBe(26);
  });
});

describe("post-processing matches scipy label + binary_closing(ball(2)) (committed fixtures)", () => {
  for (const c of cases) {
    for (const conn of [1, 3] as const) {
      it(`${c.name}, component connectivity ${conn}`, () => {
        const pred = decode(c.pred);
        const out = postprocessLabels(pred, c.dims, c.labels, { componentConnectivity: conn });
        for (const l of c.labels) {
          const ref = decode(c.postprocess[String(conn) as "1" | "3"][String(l)]);
          expect(diffCount(out.get(l)!, ref)).toBe(0);
        }
      });
    }
    it(`${c.name}: metrics of the post-processed masks`, () => {
      const gt = decode(c.gt);
      const out = postprocessLabels(decode(c.pred), c.dims, c.labels);
      for (const l of c.labels) {
        const ref = c.postprocessedMetrics[String(l)];
        const m = binaryMetrics(
          out.get(l)!,
          gt.map((v) => (v === l ? 1 : 0)),
          c.dims,
          c.spacing,
        );
        expect(Math.abs(m.dice - ref.dice)).toBeLessThan(1e-6);
        expect(Math.abs(m.mssd - ref.mssd)).toBeLessThan(1e-3);
        expect(Math.abs(m.assd - ref.assd)).toBeLessThan(1e-3);
      }
    });
  }

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
  });

  it("largestComponents (one pass, all labels) equals largestComponent per label", () => {
    for (const c of cases) {
      const pred = decode(c.pred);
      for (const conn of [1, 2, 3] as const) {
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

  it("the tie-break picks the component scipy numbers first", () => {
    // two 2-voxel components: A at x=4 (first in our x-fastest order), B at x=0,z=3 (first in C order)
    const dims = [6, 1, 4] as const;
    const m = new Uint8Array(24);
    m[4] = 1;
    m[5] = 1; // A: (4,0,0),(5,0,0)
    m[0 + 6 * 3] = 1;
    m[1 + 6 * 3] = 1; // B: (0,0,3),(1,0,3) — x=0 comes first in C order (x slowest)
    const kept = largestComponent(m, dims, 1);
    expect(kept[18]).toBe(1);
    expect(kept[4]).toBe(0);
  });

  it("closing removes foreground within the radius of the volume border (scipy border_value=0)", () => {
    const full = new Uint8Array(7 * 7 * 7).fill(1);
    const closed = closeBall(full, [7, 7, 7], 2);
    expect(closed.reduce((a, b) => a + b, 0)).toBe(27); // only the central 3×3×3 survives
  });
});

describe("combineMasks", () => {
  it("resolves overlaps with the prior label, else the smallest", () => {
    const a = new Uint8Array([1, 1, 0, 0]);
    const b = new Uint8Array([0, 1, 1, 0]);
    const masks = new Map([
      [1, a],
      [3, b],
    ]);
    expect([...combineMasks(masks, [4, 1, 1])]).toEqual([1, 1, 3, 0]);
    expect([...combineMasks(masks, [4, 1, 1], new Float32Array([0, 3, 0, 0]))]).toEqual([1, 3, 3, 0]);
  });
});
