/**
 * 2D training slices: every slice of every exam along one axis, z-scored per volume, resized to
 * size × size (bilinear images, nearest labels), held in memory so an epoch never re-reads files;
 * and a seeded batch sampler with the paper's on-the-fly augmentation (rotation ±22.5°, shift
 * ±10 %, flips in both directions) that can balance slices with and without foreground.
 *
 * Slice layout (row-major [slice][row][col]): along axis 2 rows = y and cols = x; along axis 1
 * rows = z and cols = x; along axis 0 rows = z and cols = y (voxel indices increasing).
 */
import { fjError } from "../errors.js";
import { type Random, seeded, shuffle, uniform } from "../random.js";
import { zScoreMap } from "../volume/intensity.js";
import type { SiteDataset } from "./dataset.js";
import { type NiftiRawVolume, readNiftiHeader, readNiftiRaw } from "./nifti.js";

export type SliceAxis = 0 | 1 | 2;

export interface SliceSet {
  size: number;
  /** count·size·size z-scored intensities. */
  images: Float32Array;
  /** count·size·size label values. */
  labels: Uint8Array;
  count: number;
  /** Index into `caseIds` of each slice's exam. */
  caseIndex: Int32Array;
  /** Slice position along `axis` in its exam. */
  sliceIndex: Int32Array;
  /** 1 where the (resized) label slice has any foreground. */
  hasForeground: Uint8Array;
  /** Exam ids, in the order of `caseIndex`. */
  caseIds: string[];
  axis: SliceAxis;
  /** Number of classes including background (max label value in dataset.json + 1). */
  classes: number;
}

export interface Batch {
  images: Float32Array;
  labels: Uint8Array;
  n: number;
  /** The slice index (into the SliceSet) of each batch item. */
  indices: Int32Array;
}

interface SliceGeometry {
  rows: number;
  cols: number;
  strideR: number;
  strideC: number;
  strideS: number;
  count: number;
}

export function sliceGeometry(dims: [number, number, number], axis: SliceAxis): SliceGeometry {
  const [X, Y, Z] = dims;
  switch (axis) {
    case 2:
      return { rows: Y, cols: X, strideR: X, strideC: 1, strideS: X * Y, count: Z };
    case 1:
      return { rows: Z, cols: X, strideR: X * Y, strideC: 1, strideS: X, count: Y };
    case 0:
      return { rows: Z, cols: Y, strideR: X * Y, strideC: X, strideS: 1, count: X };
  }
}

/** Bilinear sampling positions (half-pixel centres) for resizing n → size. */
function bilinearTaps(n: number, size: number): { i0: Int32Array; i1: Int32Array; w: Float32Array } {
  const i0 = new Int32Array(size);
  const i1 = new Int32Array(size);
  const w = new Float32Array(size);
  const scale = n / size;
  for (let o = 0; o < size; o++) {
    let s = (o + 0.5) * scale - 0.5;
    if (s < 0) s = 0;
    if (s > n - 1) s = n - 1;
    const a = Math.floor(s);
    i0[o] = a;
    i1[o] = Math.min(a + 1, n - 1);
    w[o] = s - a;
  }
  return { i0, i1, w };
}

function nearestTaps(n: number, size: number): Int32Array {
  const t = new Int32Array(size);
  const scale = n / size;
  for (let o = 0; o < size; o++) t[o] = Math.min(n - 1, Math.floor((o + 0.5) * scale));
  return t;
}

/**
 * Resizes every slice of a volume (bilinear) into `out` at `offset` (count·size² floats), writing
 * `scale·value + shift` (a linear map commutes with bilinear interpolation).
 */
export function resliceBilinear(
  data: ArrayLike<number>,
  dims: [number, number, number],
  axis: SliceAxis,
  size: number,
  out: Float32Array,
  offset = 0,
  scale = 1,
  shift = 0,
): number {
  const g = sliceGeometry(dims, axis);
  const r = bilinearTaps(g.rows, size);
  const c = bilinearTaps(g.cols, size);
  const plane = size * size;
  for (let s = 0; s < g.count; s++) {
    const base = s * g.strideS;
    const o = offset + s * plane;
    for (let y = 0; y < size; y++) {
      const ra = base + r.i0[y] * g.strideR;
      const rb = base + r.i1[y] * g.strideR;
      const wy = r.w[y];
      const row = o + y * size;
      for (let x = 0; x < size; x++) {
        const ca = c.i0[x] * g.strideC;
        const cb = c.i1[x] * g.strideC;
        const wx = c.w[x];
        const top = data[ra + ca] + (data[ra + cb] - data[ra + ca]) * wx;
        const bot = data[rb + ca] + (data[rb + cb] - data[rb + ca]) * wx;
        out[row + x] = (top + (bot - top) * wy) * scale + shift;
      }
    }
  }
  return g.count;
}

/** Resizes every slice of a label volume (nearest) into `out` at `offset`. */
export function resliceNearest(
  data: ArrayLike<number>,
  dims: [number, number, number],
  axis: SliceAxis,
  size: number,
  out: Uint8Array,
  offset = 0,
): number {
  const g = sliceGeometry(dims, axis);
  const r = nearestTaps(g.rows, size);
  const c = nearestTaps(g.cols, size);
  const plane = size * size;
  for (let s = 0; s < g.count; s++) {
    const base = s * g.strideS;
    const o = offset + s * plane;
    for (let y = 0; y < size; y++) {
      const rr = base + r[y] * g.strideR;
      const row = o + y * size;
      for (let x = 0; x < size; x++) out[row + x] = data[rr + c[x] * g.strideC];
    }
  }
  return g.count;
}

/**
 * Writes every slice of one exam along `axis` into `out` at `offset` (count·size² floats): the
 * stored values z-scored per volume on the fly (no float copy of the exam) and resized bilinearly.
 * The one slicing of an image, for training slices and inference alike: the same exam gives the
 * same slices bit for bit. Returns the number of slices.
 */
export function sliceExamInto(
  image: NiftiRawVolume,
  axis: SliceAxis,
  size: number,
  out: Float32Array,
  offset: number,
  file: string,
): number {
  const z = zScoreMap(image.values, image.slope);
  if (!Number.isFinite(z.mean)) {
    throw fjError("FJ_DATA_NONFINITE", "has NaN or infinite intensities (run fedjoint data check)", { file });
  }
  return resliceBilinear(image.values, image.dims, axis, size, out, offset, z.scale, z.shift);
}

/** Slices one exam in memory exactly as `loadSlices` does (`sliceExamInto`). For inference. */
export function sliceVolume(
  image: NiftiRawVolume,
  options: { size: number; axis?: SliceAxis; file?: string },
): { images: Float32Array; count: number } {
  const axis = options.axis ?? 2;
  checkSize(options.size);
  const g = sliceGeometry(image.dims, axis);
  const images = new Float32Array(g.count * options.size * options.size);
  sliceExamInto(image, axis, options.size, images, 0, options.file ?? "<volume>");
  return { images, count: g.count };
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 2 || size > 4096) {
    throw fjError("FJ_DATA_SLICE_SIZE", `slice size is ${size}, expected an integer 2–4096`);
  }
}

/**
 * Loads every slice of the dataset's exams (or of `caseIds`) along `axis`, z-scored per volume and
 * resized to size × size. Exams are read one at a time (image, then label), so peak memory is the
 * output plus about three times one exam.
 */
export async function loadSlices(
  dataset: SiteDataset,
  options: { size: number; axis?: SliceAxis; caseIds?: string[] },
): Promise<SliceSet> {
  const { size } = options;
  checkSize(size);
  const axis = options.axis ?? 2;
  if (axis !== 0 && axis !== 1 && axis !== 2) {
    throw fjError("FJ_DATA_SLICE_AXIS", `slice axis is ${String(axis)}, expected 0, 1 or 2`);
  }
  let cases = dataset.cases;
  if (options.caseIds !== undefined) {
    const byId = new Map(cases.map((c) => [c.id, c]));
    cases = options.caseIds.map((id) => {
      const c = byId.get(id);
      if (c === undefined) {
        throw fjError(
          "FJ_DATA_CASE_UNKNOWN",
          `case '${id}' is not in ${dataset.root} (${dataset.cases.length} cases)`,
        );
      }
      return c;
    });
  }
  const maxLabel = Math.max(0, ...Object.values(dataset.labels));
  // first pass: headers only, to size the output once
  const counts: number[] = [];
  for (const c of cases) counts.push((await readNiftiHeader(c.image)).dims[axis]);
  const count = counts.reduce((a, b) => a + b, 0);
  const plane = size * size;
  const images = new Float32Array(count * plane);
  const labels = new Uint8Array(count * plane);
  const caseIndex = new Int32Array(count);
  const sliceIndex = new Int32Array(count);
  const hasForeground = new Uint8Array(count);
  let at = 0;
  for (let ci = 0; ci < cases.length; ci++) {
    const c = cases[ci];
    let dims: [number, number, number];
    {
      // stored values, z-scored on the fly: no float copy of the exam is made
      const image = await readNiftiRaw(c.image);
      dims = image.dims;
      if (dims[axis] !== counts[ci]) {
        throw fjError("FJ_DATA_CHANGED", "file changed while loading slices", { file: c.image });
      }
      sliceExamInto(image, axis, size, images, at * plane, c.image);
    }
    {
      const label = await readNiftiRaw(c.label);
      if (label.dims.join("×") !== dims.join("×")) {
        throw fjError(
          "FJ_DATA_SHAPE_MISMATCH",
          `shape ${label.dims.join("×")} differs from the image ${dims.join("×")}, expected the same grid`,
          { file: c.label },
        );
      }
      const v = label.values;
      const values = new Uint8Array(v.length);
      for (let i = 0; i < v.length; i++) {
        const x = v[i] * label.slope + label.inter;
        if (!(Number.isInteger(x) && x >= 0 && x <= maxLabel)) {
          throw fjError(
            "FJ_DATA_LABEL_UNKNOWN",
            `has label ${x}, dataset.json declares 0–${maxLabel} (run fedjoint data check)`,
            { file: c.label },
          );
        }
        values[i] = x;
      }
      resliceNearest(values, dims, axis, size, labels, at * plane);
    }
    for (let s = 0; s < counts[ci]; s++) {
      const k = at + s;
      caseIndex[k] = ci;
      sliceIndex[k] = s;
      let fg = 0;
      const o = k * plane;
      for (let i = 0; i < plane; i++) {
        if (labels[o + i] !== 0) {
          fg = 1;
          break;
        }
      }
      hasForeground[k] = fg;
    }
    at += counts[ci];
  }
  return {
    size,
    images,
    labels,
    count,
    caseIndex,
    sliceIndex,
    hasForeground,
    caseIds: cases.map((c) => c.id),
    axis,
    classes: maxLabel + 1,
  };
}

/** A new SliceSet holding only the slices of the given exams (e.g. the training exams of a fold). */
export function subsetSlices(set: SliceSet, caseIds: string[]): SliceSet {
  const want = new Map<number, number>();
  caseIds.forEach((id, i) => {
    const ci = set.caseIds.indexOf(id);
    if (ci < 0) throw fjError("FJ_DATA_CASE_UNKNOWN", `case '${id}' is not in this slice set`);
    want.set(ci, i);
  });
  const keep: number[] = [];
  for (let k = 0; k < set.count; k++) if (want.has(set.caseIndex[k])) keep.push(k);
  const plane = set.size * set.size;
  const out: SliceSet = {
    size: set.size,
    images: new Float32Array(keep.length * plane),
    labels: new Uint8Array(keep.length * plane),
    count: keep.length,
    caseIndex: new Int32Array(keep.length),
    sliceIndex: new Int32Array(keep.length),
    hasForeground: new Uint8Array(keep.length),
    caseIds: [...caseIds],
    axis: set.axis,
    classes: set.classes,
  };
  keep.forEach((k, j) => {
    out.images.set(set.images.subarray(k * plane, (k + 1) * plane), j * plane);
    out.labels.set(set.labels.subarray(k * plane, (k + 1) * plane), j * plane);
    out.caseIndex[j] = want.get(set.caseIndex[k]) as number;
    out.sliceIndex[j] = set.sliceIndex[k];
    out.hasForeground[j] = set.hasForeground[k];
  });
  return out;
}

export interface AugmentParams {
  /** radians */
  angle: number;
  /** pixels */
  shiftX: number;
  shiftY: number;
  flipX: boolean;
  flipY: boolean;
}

/** Ranges of the on-the-fly augmentation (the paper: rotation ±22.5°, shift ±10 %, flips on both axes). */
export interface AugmentRanges {
  rotationDeg: number;
  /** Fraction of the slice side. */
  shift: number;
  flip: boolean;
}

export const PAPER_AUGMENTATION: AugmentRanges = { rotationDeg: 22.5, shift: 0.1, flip: true };

/** Random augmentation parameters within `ranges`. */
export function randomAugment(
  rand: Random,
  size: number,
  ranges: AugmentRanges = PAPER_AUGMENTATION,
): AugmentParams {
  return {
    angle: (uniform(rand, -ranges.rotationDeg, ranges.rotationDeg) * Math.PI) / 180,
    shiftX: uniform(rand, -ranges.shift, ranges.shift) * size,
    shiftY: uniform(rand, -ranges.shift, ranges.shift) * size,
    flipX: ranges.flip && rand() < 0.5,
    flipY: ranges.flip && rand() < 0.5,
  };
}

/**
 * Applies flip, then rotation about the centre, then shift, to one size × size image (bilinear,
 * outside filled with the slice minimum) and its label (nearest, outside = 0).
 */
export function augmentSlice(
  src: Float32Array,
  srcLabel: Uint8Array,
  size: number,
  p: AugmentParams,
  dst: Float32Array,
  dstLabel: Uint8Array,
): void {
  let fill = Number.POSITIVE_INFINITY;
  for (let i = 0; i < src.length; i++) if (src[i] < fill) fill = src[i];
  const c = (size - 1) / 2;
  const cos = Math.cos(p.angle);
  const sin = Math.sin(p.angle);
  for (let r = 0; r < size; r++) {
    for (let q = 0; q < size; q++) {
      // inverse: undo shift, undo rotation, undo flip
      const u = q - c - p.shiftX;
      const v = r - c - p.shiftY;
      let su = cos * u + sin * v;
      let sv = -sin * u + cos * v;
      if (p.flipX) su = -su;
      if (p.flipY) sv = -sv;
      const x = su + c;
      const y = sv + c;
      const o = r * size + q;
      // label: nearest
      const xn = Math.round(x);
      const yn = Math.round(y);
      dstLabel[o] = xn >= 0 && yn >= 0 && xn < size && yn < size ? srcLabel[yn * size + xn] : 0;
      // image: bilinear with constant fill outside
      const x0 = Math.floor(x);
      const y0 = Math.floor(y);
      const wx = x - x0;
      const wy = y - y0;
      const at = (yy: number, xx: number) =>
        xx >= 0 && yy >= 0 && xx < size && yy < size ? src[yy * size + xx] : fill;
      const top = at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx;
      const bot = at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx;
      dst[o] = top * (1 - wy) + bot * wy;
    }
  }
}

/**
 * Seeded batch sampler over a SliceSet (optionally only `indices`). Without
 * `foregroundFraction` it walks shuffled epochs over all slices; with it, each batch holds
 * round(batch·fraction) slices with foreground and the rest without (falling back to the other pool
 * when one is empty). `augment` applies the augmentation to every item (`true`: the paper's ranges).
 */
export function makeBatchSampler(
  set: SliceSet,
  options: {
    batch: number;
    seed: number;
    augment: boolean | AugmentRanges;
    foregroundFraction?: number;
    indices?: ArrayLike<number>;
  },
): { next(): Batch } {
  const { batch, augment, foregroundFraction } = options;
  if (!Number.isInteger(batch) || batch < 1) {
    throw fjError("FJ_DATA_BATCH", `batch is ${batch}, expected an integer ≥ 1`);
  }
  if (foregroundFraction !== undefined && !(foregroundFraction >= 0 && foregroundFraction <= 1)) {
    throw fjError("FJ_DATA_BATCH", `foregroundFraction is ${foregroundFraction}, expected 0–1`);
  }
  const all = options.indices ? Array.from(options.indices) : Array.from({ length: set.count }, (_, i) => i);
  for (const i of all) {
    if (!Number.isInteger(i) || i < 0 || i >= set.count) {
      throw fjError("FJ_DATA_BATCH", `slice index ${i} out of range 0–${set.count - 1}`);
    }
  }
  if (all.length === 0) throw fjError("FJ_DATA_BATCH", "no slices to sample from");
  const rand = seeded("fedjoint-sampler", options.seed);
  const size = set.size;
  const plane = size * size;

  class Pool {
    private order: number[];
    private at = 0;
    constructor(readonly items: number[]) {
      this.order = shuffle([...items], rand);
    }
    take(): number {
      if (this.at >= this.order.length) {
        this.order = shuffle([...this.items], rand);
        this.at = 0;
      }
      return this.order[this.at++];
    }
  }
  const fg = all.filter((i) => set.hasForeground[i] === 1);
  const bg = all.filter((i) => set.hasForeground[i] !== 1);
  const anyPool = foregroundFraction === undefined ? new Pool(all) : undefined;
  const fgPool = fg.length > 0 ? new Pool(fg) : undefined;
  const bgPool = bg.length > 0 ? new Pool(bg) : undefined;

  return {
    next(): Batch {
      const indices = new Int32Array(batch);
      if (anyPool !== undefined) {
        for (let b = 0; b < batch; b++) indices[b] = anyPool.take();
      } else {
        const nFg = Math.round(batch * (foregroundFraction as number));
        for (let b = 0; b < batch; b++) {
          const wantFg = b < nFg;
          const pool = (wantFg ? fgPool : bgPool) ?? (wantFg ? bgPool : fgPool);
          indices[b] = (pool as Pool).take();
        }
        shuffle(indices, rand);
      }
      const images = new Float32Array(batch * plane);
      const labels = new Uint8Array(batch * plane);
      for (let b = 0; b < batch; b++) {
        const k = indices[b];
        const img = set.images.subarray(k * plane, (k + 1) * plane);
        const lab = set.labels.subarray(k * plane, (k + 1) * plane);
        if (augment) {
          augmentSlice(
            img,
            lab,
            size,
            randomAugment(rand, size, augment === true ? PAPER_AUGMENTATION : augment),
            images.subarray(b * plane, (b + 1) * plane),
            labels.subarray(b * plane, (b + 1) * plane),
          );
        } else {
          images.set(img, b * plane);
          labels.set(lab, b * plane);
        }
      }
      return { images, labels, n: batch, indices };
    },
  };
}
