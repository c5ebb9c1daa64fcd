import { fjError } from "../errors.js";
import type { Dims3 } from "../volume/grid.js";

/**
 * Stacking 2D slice predictions back into a 3D volume on the original grid (undoing the resize to
 * the training size, e.g. 256×256).
 *
 * Geometry (must match the forward resize in src/data): slices are taken along `axis` (default 2,
 * z). In the slice plane the two remaining axes, in increasing order, are (col, row): for axis 2 the
 * column is x and the row is y, so a slice of the original volume is the row-major array
 * `slice[y * X + x]`, resized to `trainSize = [H, W]` (rows, cols) with half-pixel centres
 * (original coordinate = (train + 0.5) · size/trainSize − 0.5, like tf.image.resizeBilinear with
 * halfPixelCenters, PIL, OpenCV). Undoing it samples the training grid at
 * u = (x + 0.5) · W/X − 0.5 (and likewise rows).
 *
 * Two ways back, both provided:
 * - `stackProbabilities` (recommended, the default of the pipeline): bilinear interpolation of the
 *   per-class probabilities (or logits) to the original grid, then argmax — smooth boundaries when
 *   the original in-plane size is larger than the training size, no staircase.
 * - `stackLabels`: nearest-neighbour on label maps — cheaper, exact for labels, blocky.
 */

export interface StackGeometry {
  /** Original volume dims [X, Y, Z]. */
  dims: Dims3;
  /** Training size [rows, cols] of each slice, e.g. [256, 256]. */
  trainSize: readonly [number, number];
  /** Slicing axis; default 2 (z). */
  axis?: 0 | 1 | 2;
}

interface Plane {
  cols: number;
  rows: number;
  nSlices: number;
  /** Volume index of (col, row, slice). */
  index: (c: number, r: number, s: number) => number;
}

function plane(dims: Dims3, axis: 0 | 1 | 2): Plane {
  const [X, Y, Z] = dims;
  if (axis === 2) return { cols: X, rows: Y, nSlices: Z, index: (c, r, s) => c + X * (r + Y * s) };
  if (axis === 1) return { cols: X, rows: Z, nSlices: Y, index: (c, r, s) => c + X * (s + Y * r) };
  return { cols: Y, rows: Z, nSlices: X, index: (c, r, s) => s + X * (c + Y * r) };
}

function checkSlices(n: number, expected: number, perSlice: number, lengths: number[]): void {
  if (n !== expected)
    throw fjError("FJ_EVAL_STACK", `got ${n} slices, the volume has ${expected} along the slicing axis`);
  lengths.forEach((len, i) => {
    if (len !== perSlice)
      throw fjError("FJ_EVAL_STACK", `slice ${i} has ${len} values, expected ${perSlice}`);
  });
}

/** Nearest-neighbour source index along one axis (half-pixel centres). */
function nearestMap(size: number, train: number): Int32Array {
  const m = new Int32Array(size);
  for (let i = 0; i < size; i++) m[i] = Math.min(train - 1, Math.floor(((i + 0.5) * train) / size));
  return m;
}

/** Bilinear taps along one axis: lower index and weight of the upper neighbour (edges clamped). */
function linearMap(size: number, train: number): { lo: Int32Array; hi: Int32Array; w: Float64Array } {
  const lo = new Int32Array(size);
  const hi = new Int32Array(size);
  const w = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const u = Math.min(train - 1, Math.max(0, ((i + 0.5) * train) / size - 0.5));
    const l = Math.floor(u);
    lo[i] = l;
    hi[i] = Math.min(train - 1, l + 1);
    w[i] = u - l;
  }
  return { lo, hi, w };
}

/** Label slices (each rows×cols, row-major) at training size → label volume on the original grid. */
export function stackLabels(slices: readonly ArrayLike<number>[], geometry: StackGeometry): Uint8Array {
  const axis = geometry.axis ?? 2;
  const [H, W] = geometry.trainSize;
  const p = plane(geometry.dims, axis);
  checkSlices(
    slices.length,
    p.nSlices,
    H * W,
    slices.map((s) => s.length),
  );
  const out = new Uint8Array(geometry.dims[0] * geometry.dims[1] * geometry.dims[2]);
  const mc = nearestMap(p.cols, W);
  const mr = nearestMap(p.rows, H);
  for (let s = 0; s < p.nSlices; s++) {
    const sl = slices[s];
    for (let r = 0; r < p.rows; r++) {
      const base = mr[r] * W;
      for (let c = 0; c < p.cols; c++) {
        const v = Math.round(sl[base + mc[c]]);
        if (v < 0 || v > 255)
          throw fjError("FJ_VOLUME_LABEL", `stackLabels: label ${v} in slice ${s}, expected 0–255`);
        out[p.index(c, r, s)] = v;
      }
    }
  }
  return out;
}

/**
 * Per-class probability (or logit) slices at training size, channels last (`[rows, cols, classes]`,
 * as tfjs outputs NHWC) → label volume on the original grid: bilinear interpolation per class, then
 * argmax (the first maximal class on ties). Class c becomes label c (0 = background).
 */
export function stackProbabilities(
  slices: readonly ArrayLike<number>[],
  nClasses: number,
  geometry: StackGeometry,
): Uint8Array {
  if (!Number.isInteger(nClasses) || nClasses < 1 || nClasses > 256) {
    throw fjError("FJ_EVAL_STACK", `nClasses is ${nClasses}, expected an integer 1–256`);
  }
  const axis = geometry.axis ?? 2;
  const [H, W] = geometry.trainSize;
  const p = plane(geometry.dims, axis);
  checkSlices(
    slices.length,
    p.nSlices,
    H * W * nClasses,
    slices.map((s) => s.length),
  );
  const out = new Uint8Array(geometry.dims[0] * geometry.dims[1] * geometry.dims[2]);
  const mc = linearMap(p.cols, W);
  const mr = linearMap(p.rows, H);
  const C = nClasses;
  for (let s = 0; s < p.nSlices; s++) {
    const sl = slices[s];
    for (let r = 0; r < p.rows; r++) {
      const r0 = mr.lo[r] * W;
      const r1 = mr.hi[r] * W;
      const wr = mr.w[r];
      for (let c = 0; c < p.cols; c++) {
        const c0 = mc.lo[c];
        const c1 = mc.hi[c];
        const wc = mc.w[c];
        const w00 = (1 - wr) * (1 - wc);
        const w01 = (1 - wr) * wc;
        const w10 = wr * (1 - wc);
        const w11 = wr * wc;
        const i00 = (r0 + c0) * C;
        const i01 = (r0 + c1) * C;
        const i10 = (r1 + c0) * C;
        const i11 = (r1 + c1) * C;
        let best = 0;
        let bestV = Number.NEGATIVE_INFINITY;
        for (let k = 0; k < C; k++) {
          const v = w00 * sl[i00 + k] + w01 * sl[i01 + k] + w10 * sl[i10 + k] + w11 * sl[i11 + k];
          if (v > bestV) {
            bestV = v;
            best = k;
          }
        }
        out[p.index(c, r, s)] = best;
      }
    }
  }
  return out;
}
