import { fjError } from "../errors.js";

/**
 * The volume toolkit's vocabulary: 3D volumes stored as flat typed arrays.
 *
 * Layout (the same as NIfTI, `src/data/nifti.ts`): voxel (x, y, z) of a volume with dims [X, Y, Z]
 * is at index `x + X * (y + Y * z)` — x varies fastest. Spacing is in millimetres per voxel along
 * x, y, z. Everything in `src/volume` is pure over these arrays (no I/O, no tfjs).
 */

export type Dims3 = readonly [number, number, number];
export type Spacing3 = readonly [number, number, number];

/** A binary mask: 1 = inside, 0 = outside. */
export type Mask = Uint8Array;

/** Any numeric voxel array (label maps may come as Float32Array from NIfTI or as integer arrays). */
export type VoxelArray = ArrayLike<number>;

export function voxelCount(dims: Dims3): number {
  return dims[0] * dims[1] * dims[2];
}

/** Throws FJ_VOLUME_GRID unless dims are positive integers and `length` = X·Y·Z. */
export function assertDims(dims: Dims3, length: number, what: string): void {
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 1)
      throw fjError("FJ_VOLUME_GRID", `${what}: dims ${dims.join("×")}, expected positive integers`);
  }
  if (voxelCount(dims) !== length) {
    throw fjError(
      "FJ_VOLUME_GRID",
      `${what}: array has ${length} voxels, dims ${dims.join("×")} need ${voxelCount(dims)}`,
    );
  }
}

/** Throws FJ_VOLUME_GRID unless every spacing is finite and > 0. */
export function assertSpacing(spacing: Spacing3, what: string): void {
  for (const s of spacing) {
    if (!Number.isFinite(s) || s <= 0)
      throw fjError("FJ_VOLUME_GRID", `${what}: spacing ${spacing.join(",")}, expected values > 0`);
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
