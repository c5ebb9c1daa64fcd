import { describe, expect, it } from "vitest";
import { FedjointError } from "../../../src/errors.js";
import { binaryMetrics } from "../../../src/eval/metrics.js";
import { combineMasks, postprocessLabels, postprocessMask } from "../../../src/eval/postprocess.js";
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
