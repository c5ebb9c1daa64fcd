import { describe, expect, it } from "vitest";
import { FedjointError } from "../../../src/errors.js";
import { evaluateExam } from "../../../src/eval/exam.js";
import { binaryMetrics } from "../../../src/eval/metrics.js";
import {
  combineMasks,
  postprocessLabelMap,
  postprocessLabels,
  postprocessMask,
} from "../../../src/eval/postprocess.js";
import { maskOf } from "../../../src/volume/grid.js";
import { decode, loadMetricsCases } from "./fixtures.js";

const cases = loadMetricsCases();

function diffCount(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

describe("post-processing matches scipy label + binary_closing(ball(2)) (committed fixtures)", () => {
  for (const c of cases) {
    for (const conn of [6, 26] as const) {
      it(`${c.name}, component connectivity ${conn}`, () => {
        const pred = decode(c.pred);
        const out = postprocessLabels(pred, c.dims, c.labels, { componentConnectivity: conn });
        for (const l of c.labels) {
          const ref = decode(c.postprocess[String(conn) as "6" | "26"][String(l)]);
          expect(diffCount(out.get(l)!, ref)).toBe(0);
          const single = postprocessMask(
            pred.map((v) => (v === l ? 1 : 0)),
            c.dims,
            { componentConnectivity: conn },
          );
          expect(diffCount(single, ref)).toBe(0);
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
    expect(() => combineMasks(new Map([[256, a]]), [4, 1, 1])).toThrow(FedjointError);
    expect(() => combineMasks(new Map([[256, a]]), [4, 1, 1])).toThrow(
      /label 256, expected an integer 1–255/,
    );
  });
});

describe("postprocessLabelMap and evaluateExam: the metrics are those of the written label map", () => {
  // Bone 1 is two slabs around a narrow gap that bone 2 sits in (a socket around a head):
  // closing bone 1 with ball(2) fills the gap, so its post-processed mask overlaps bone 2's; one
  // label map cannot hold both, and the voxels keep their predicted label.
  const dims = [16, 8, 8] as const;
  const pred = new Uint8Array(16 * 8 * 8);
  const gt = new Uint8Array(pred.length);
  for (let z = 1; z < 7; z++)
    for (let y = 1; y < 7; y++)
      for (let x = 1; x < 15; x++) {
        const i = x + 16 * (y + 8 * z);
        const inGap = (x === 7 || x === 8) && y > 1; // bone 1 is a U: its slabs meet at y = 1
        pred[i] = inGap ? 2 : x === 6 && y > 1 ? 0 : 1;
        gt[i] = inGap ? 2 : 1;
      }

  it("overlapping closings are resolved into one label per voxel", () => {
    const masks = postprocessLabels(pred, dims, [1, 2]);
    let overlap = 0;
    for (let i = 0; i < pred.length; i++) if (masks.get(1)![i] && masks.get(2)![i]) overlap++;
    expect(overlap).toBeGreaterThan(0);
    const map = postprocessLabelMap(pred, dims, [1, 2]);
    expect([...map]).toEqual([...combineMasks(masks, dims, pred)]);
  });

  it("evaluateExam's Dice is the Dice of postprocessLabelMap's map, not of the overlapping masks", () => {
    const r = evaluateExam(pred, gt, dims, [1, 1, 1], { background: 0, a: 1, b: 2 });
    const map = postprocessLabelMap(pred, dims, [1, 2]);
    const masks = postprocessLabels(pred, dims, [1, 2]);
    for (const [name, v] of [
      ["a", 1],
      ["b", 2],
    ] as const) {
      const ofMap = binaryMetrics(maskOf(map, v), maskOf(gt, v), dims, [1, 1, 1]).dice;
      const ofMask = binaryMetrics(masks.get(v)!, maskOf(gt, v), dims, [1, 1, 1]).dice;
      expect(r.labels[name].dice).toBe(ofMap);
      if (name === "a") expect(ofMask).not.toBe(ofMap);
    }
    const raw = evaluateExam(map, gt, dims, [1, 1, 1], { background: 0, a: 1, b: 2 }, { postprocess: false });
    expect(raw.labels).toEqual(r.labels);
  });
});
