import type { Dims3, Mask } from "./grid.js";

/** An axis-aligned box [lo, hi) in voxel coordinates. */
export interface Box3 {
  lo: [number, number, number];
  hi: [number, number, number];
}

/** Grows to hold every voxel index added; the one bounding-box accumulator of the project. */
export class BoxBuilder {
  private x0: number;
  private y0: number;
  private z0: number;
  private x1 = -1;
  private y1 = -1;
  private z1 = -1;
  private readonly X: number;
  private readonly XY: number;

  constructor(dims: Dims3) {
    this.X = dims[0];
    this.XY = dims[0] * dims[1];
    [this.x0, this.y0, this.z0] = dims;
  }

  add(i: number): void {
    const z = Math.floor(i / this.XY);
    const r = i - z * this.XY;
    const y = Math.floor(r / this.X);
    const x = r - y * this.X;
    if (x < this.x0) this.x0 = x;
    if (x > this.x1) this.x1 = x;
    if (y < this.y0) this.y0 = y;
    if (y > this.y1) this.y1 = y;
    if (z < this.z0) this.z0 = z;
    if (z > this.z1) this.z1 = z;
  }

  /** The box [lo, hi), or null when nothing was added. */
  box(): Box3 | null {
    if (this.x1 < 0) return null;
    return { lo: [this.x0, this.y0, this.z0], hi: [this.x1 + 1, this.y1 + 1, this.z1 + 1] };
  }
}

/**
 * Calls `visit(i)` for every index where some mask is non-zero (in increasing order per mask).
 * Background dominates, so 4 voxels are skipped at a time when a mask is 4-byte aligned.
 */
export function forEachNonZero(masks: readonly Mask[], visit: (i: number) => void): void {
  for (const m of masks) {
    const n = m.length;
    let i = 0;
    if (m.byteOffset % 4 === 0) {
      const words = n >>> 2;
      const m32 = new Uint32Array(m.buffer, m.byteOffset, words);
      for (let w = 0; w < words; w++) {
        if (m32[w] === 0) continue;
        const base = w << 2;
        for (let k = base; k < base + 4; k++) if (m[k] !== 0) visit(k);
      }
      i = words << 2;
    }
    for (; i < n; i++) if (m[i] !== 0) visit(i);
  }
}

/** Bounding box of the non-zero voxels of one or more masks, or null if all are empty. */
export function boundingBox(dims: Dims3, ...masks: Mask[]): Box3 | null {
  const b = new BoxBuilder(dims);
  forEachNonZero(masks, (i) => b.add(i));
  return b.box();
}

/** Bounding box of the voxels where `inside(i)` holds, or null if there are none. */
export function boundingBoxWhere(dims: Dims3, inside: (i: number) => boolean): Box3 | null {
  const b = new BoxBuilder(dims);
  const n = dims[0] * dims[1] * dims[2];
  for (let i = 0; i < n; i++) if (inside(i)) b.add(i);
  return b.box();
}

/** Grows a box by `margin` voxels on every side, clipped to the volume. */
export function expandBox(box: Box3, margin: number, dims: Dims3): Box3 {
  return {
    lo: [Math.max(0, box.lo[0] - margin), Math.max(0, box.lo[1] - margin), Math.max(0, box.lo[2] - margin)],
    hi: [
      Math.min(dims[0], box.hi[0] + margin),
      Math.min(dims[1], box.hi[1] + margin),
      Math.min(dims[2], box.hi[2] + margin),
    ],
  };
}

export function boxDims(box: Box3): [number, number, number] {
  return [box.hi[0] - box.lo[0], box.hi[1] - box.lo[1], box.hi[2] - box.lo[2]];
}

/** Copies the box out of a mask into a new, tightly packed mask. */
export function cropMask(mask: Mask, dims: Dims3, box: Box3): Mask {
  const [X, Y] = dims;
  const [cx, cy, cz] = boxDims(box);
  const out = new Uint8Array(cx * cy * cz);
  for (let z = 0; z < cz; z++) {
    for (let y = 0; y < cy; y++) {
      const src = box.lo[0] + X * (box.lo[1] + y + Y * (box.lo[2] + z));
      out.set(mask.subarray(src, src + cx), cx * (y + cy * z));
    }
  }
  return out;
}

/** Writes a cropped mask back into a full-size mask (voxels outside the box are left as they are). */
export function pasteMask(target: Mask, dims: Dims3, box: Box3, crop: Mask): void {
  const [X, Y] = dims;
  const [cx, cy, cz] = boxDims(box);
  for (let z = 0; z < cz; z++) {
    for (let y = 0; y < cy; y++) {
      const dst = box.lo[0] + X * (box.lo[1] + y + Y * (box.lo[2] + z));
      target.set(crop.subarray(cx * (y + cy * z), cx * (y + cy * z) + cx), dst);
    }
  }
}
