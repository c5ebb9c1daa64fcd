/**
 * Small, dependency-free helpers for 3D volumes stored as flat typed arrays.
 *
 * Layout (the same as `src/data/nifti.ts`): voxel (x, y, z) of a volume with dims [X, Y, Z] is at
 * index `x + X * (y + Y * z)` — x varies fastest. Spacing is in millimetres per voxel along x, y, z.
 */

export type Dims3 = readonly [number, number, number];
export type Spacing3 = readonly [number, number, number];

/** A binary mask: 1 = inside, 0 = outside. */
export type Mask = Uint8Array;

/** Any numeric voxel array (label maps may come as Float32Array from NIfTI or as integer arrays). */
export type VoxelArray = ArrayLike<number>;

/** An axis-aligned box [lo, hi) in voxel coordinates. */
export interface Box3 {
  lo: [number, number, number];
  hi: [number, number, number];
}

export function voxelCount(dims: Dims3): number {
  return dims[0] * dims[1] * dims[2];
}

export function assertDims(dims: Dims3, length: number, what: string): void {
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 1)
      throw new RangeError(`${what}: dims ${dims.join("×")} must be positive integers`);
  }
  if (voxelCount(dims) !== length) {
    throw new RangeError(
      `${what}: array has ${length} voxels, dims ${dims.join("×")} need ${voxelCount(dims)}`,
    );
  }
}

export function assertSpacing(spacing: Spacing3, what: string): void {
  for (const s of spacing) {
    if (!Number.isFinite(s) || s <= 0)
      throw new RangeError(`${what}: spacing ${spacing.join(",")} must be > 0`);
  }
}

/** Binary mask of the voxels whose value equals `label` (values are rounded to the nearest integer). */
export function maskOf(labels: VoxelArray, label: number): Mask {
  const out = new Uint8Array(labels.length);
  if (
    labels instanceof Uint8Array ||
    labels instanceof Uint16Array ||
    labels instanceof Int16Array ||
    labels instanceof Int32Array
  ) {
    for (let i = 0; i < labels.length; i++) out[i] = labels[i] === label ? 1 : 0;
    return out;
  }
  for (let i = 0; i < labels.length; i++) if (Math.round(labels[i]) === label) out[i] = 1;
  return out;
}

export function countOnes(mask: Mask): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i];
  return n;
}

/** Bounding box of the non-zero voxels of one or more masks, or null if all are empty. */
export function boundingBox(dims: Dims3, ...masks: Mask[]): Box3 | null {
  const [X, Y, Z] = dims;
  const XY = X * Y;
  let x0 = X;
  let y0 = Y;
  let z0 = Z;
  let x1 = -1;
  let y1 = -1;
  let z1 = -1;
  for (const m of masks) {
    const n = m.length;
    const visit = (i: number) => {
      if (m[i] === 0) return;
      const z = Math.floor(i / XY);
      const r = i - z * XY;
      const y = Math.floor(r / X);
      const x = r - y * X;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      if (z < z0) z0 = z;
      if (z > z1) z1 = z;
    };
    let i = 0;
    if (m.byteOffset % 4 === 0) {
      // Background dominates: skip 4 voxels at a time.
      const words = n >>> 2;
      const m32 = new Uint32Array(m.buffer, m.byteOffset, words);
      for (let w = 0; w < words; w++) {
        if (m32[w] === 0) continue;
        const base = w << 2;
        visit(base);
        visit(base + 1);
        visit(base + 2);
        visit(base + 3);
      }
      i = words << 2;
    }
    for (; i < n; i++) visit(i);
  }
  if (x1 < 0) return null;
  return { lo: [x0, y0, z0], hi: [x1 + 1, y1 + 1, z1 + 1] };
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
