import { fjError } from "../errors.js";
import { boundingBox, boxDims, cropMask, expandBox, pasteMask } from "./box.js";
import type { Connectivity } from "./components.js";
import { squaredEdt } from "./edt.js";
import { assertDims, type Dims3, type Mask } from "./grid.js";

/**
 * Binary morphology on 3D masks, matching `scipy.ndimage` (default `border_value=0`: everything
 * outside the volume counts as background).
 */

/**
 * Binary erosion by the 3×3×3 structure of the given connectivity (6, 18, 26), `border_value=0`
 * (`scipy.ndimage.binary_erosion(mask, generate_binary_structure(3, c))` with c = 1, 2, 3).
 */
export function erode(mask: Mask, dims: Dims3, connectivity: Connectivity): Mask {
  assertDims(dims, mask.length, "erode");
  // The structures are unions of separable pieces, and erosion by a union is the intersection of
  // the erosions: 26 = 3×3×3 cube (x·y·z); 18 = union of the three 3×3 squares; 6 = union of the
  // three 3-voxel segments. Each 1D pass is an AND of i−1, i, i+1 with outside = 0.
  const ex = filter3(mask, dims, 0, true);
  if (connectivity === 26) return filter3(filter3(ex, dims, 1, true), dims, 2, true);
  const ey = filter3(mask, dims, 1, true);
  const ez = filter3(mask, dims, 2, true);
  const out = new Uint8Array(mask.length);
  if (connectivity === 6) {
    for (let i = 0; i < out.length; i++) out[i] = ex[i] & ey[i] & ez[i];
    return out;
  }
  const sxy = filter3(ex, dims, 1, true);
  const sxz = filter3(ex, dims, 2, true);
  const syz = filter3(ey, dims, 2, true);
  for (let i = 0; i < out.length; i++) out[i] = sxy[i] & sxz[i] & syz[i];
  return out;
}

/**
 * Surface voxels: the mask minus its erosion (MedPy's `result ^ binary_erosion(result, footprint)`).
 * Voxels on the volume border are always surface voxels (border_value=0).
 */
export function surface(mask: Mask, dims: Dims3, connectivity: Connectivity): Mask {
  const er = erode(mask, dims, connectivity);
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = mask[i] !== 0 && er[i] === 0 ? 1 : 0;
  return out;
}

/**
 * Offsets (dx, dy, dz) of the digital ball dx² + dy² + dz² ≤ r², in voxels (spacing ignored, as
 * `skimage.morphology.ball(r)`): r = 2 gives the 5×5×5 spherical kernel with 33 voxels.
 */
export function ballOffsets(radius: number): [number, number, number][] {
  const r = Math.floor(radius);
  const out: [number, number, number][] = [];
  for (let dz = -r; dz <= r; dz++)
    for (let dy = -r; dy <= r; dy++)
      for (let dx = -r; dx <= r; dx++)
        if (dx * dx + dy * dy + dz * dz <= radius * radius) out.push([dx, dy, dz]);
  return out;
}

/**
 * Morphological closing with the digital ball of the given radius (voxel units), exactly as
 * `scipy.ndimage.binary_closing(mask, structure=ball(radius))`: dilation then erosion, both with
 * `border_value=0`. Note scipy's border behaviour: the erosion treats everything outside the volume
 * as background, so foreground within `radius` voxels of the volume border is removed.
 *
 * Work is restricted to the mask's bounding box grown by the radius: everything the dilation can
 * reach lies in it, and outside it the dilated mask is 0 — which is also what border_value=0 says
 * outside the volume — so the crop is exact. Radius 2 (the paper's 5×5×5 kernel) uses the exact
 * decomposition ball(2) = 3×3×3 cube ∪ {±2·e_x, ±2·e_y, ±2·e_z} (separable byte filters); other
 * radii use squared EDTs: dilation = {p : d²(p, mask) ≤ r²}, erosion = {p : d²(p, background ∪
 * outside) > r²}. `method` forces one of the two (for tests).
 */
export function closeBall(mask: Mask, dims: Dims3, radius: number, method?: "decomposed" | "edt"): Mask {
  assertDims(dims, mask.length, "closeBall");
  const out = new Uint8Array(mask.length);
  const tight = boundingBox(dims, mask);
  if (tight === null) return out;
  const r = Math.floor(radius);
  const box = expandBox(tight, r, dims);
  const cd = boxDims(box);
  const crop = cropMask(mask, dims, box);
  const useDecomposed = method === undefined ? radius === 2 : method === "decomposed";
  if (useDecomposed && radius !== 2)
    throw fjError("FJ_VOLUME_KERNEL", "closeBall: the decomposed method exists for radius 2 only");
  const res = useDecomposed ? closeBall2(crop, cd) : closeBallEdt(crop, cd, radius);
  pasteMask(out, dims, box, res);
  return out;
}

/** Along `stride` (1, X or X·Y) with `n` steps per line: out = OR (dilate) / AND (erode) of i−1, i, i+1. */
function filter3(a: Mask, dims: Dims3, axis: 0 | 1 | 2, erode: boolean): Mask {
  const [X, Y, Z] = dims;
  const n = dims[axis];
  const stride = axis === 0 ? 1 : axis === 1 ? X : X * Y;
  const out = new Uint8Array(a.length);
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      for (let x = 0; x < X; x++) {
        const i = x + X * (y + Y * z);
        const pos = axis === 0 ? x : axis === 1 ? y : z;
        const prev = pos > 0 ? a[i - stride] : 0;
        const next = pos < n - 1 ? a[i + stride] : 0;
        out[i] = erode ? prev & a[i] & next : prev | a[i] | next;
      }
    }
  }
  return out;
}

/** Combines `acc` with `a` shifted by ±2 along every axis (OR for dilation, AND for erosion; outside = 0). */
function shifts2(acc: Mask, a: Mask, dims: Dims3, erode: boolean): void {
  const [X, Y, Z] = dims;
  const XY = X * Y;
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      for (let x = 0; x < X; x++) {
        const i = x + X * (y + Y * z);
        const xm = x >= 2 ? a[i - 2] : 0;
        const xp = x < X - 2 ? a[i + 2] : 0;
        const ym = y >= 2 ? a[i - 2 * X] : 0;
        const yp = y < Y - 2 ? a[i + 2 * X] : 0;
        const zm = z >= 2 ? a[i - 2 * XY] : 0;
        const zp = z < Z - 2 ? a[i + 2 * XY] : 0;
        acc[i] = erode ? acc[i] & xm & xp & ym & yp & zm & zp : acc[i] | xm | xp | ym | yp | zm | zp;
      }
    }
  }
}

function closeBall2(crop: Mask, cd: Dims3): Mask {
  const dil = filter3(filter3(filter3(crop, cd, 0, false), cd, 1, false), cd, 2, false);
  shifts2(dil, crop, cd, false);
  const ero = filter3(filter3(filter3(dil, cd, 0, true), cd, 1, true), cd, 2, true);
  shifts2(ero, dil, cd, true);
  return ero;
}

function closeBallEdt(crop: Mask, cd: Dims3, radius: number): Mask {
  const r2 = radius * radius;
  const unit: [number, number, number] = [1, 1, 1];
  const d2 = squaredEdt(crop, cd, unit);
  const dil = new Uint8Array(crop.length);
  const bg = new Uint8Array(crop.length);
  for (let i = 0; i < crop.length; i++) {
    dil[i] = d2[i] <= r2 ? 1 : 0;
    bg[i] = dil[i] === 0 ? 1 : 0;
  }
  const e2 = squaredEdt(bg, cd, unit, d2);
  const [X, Y, Z] = cd;
  const res = new Uint8Array(crop.length);
  for (let z = 0; z < Z; z++) {
    const bz = Math.min(z + 1, Z - z);
    for (let y = 0; y < Y; y++) {
      const by = Math.min(y + 1, Y - y, bz);
      const row = X * (y + Y * z);
      for (let x = 0; x < X; x++) {
        const i = row + x;
        if (dil[i] === 0) continue;
        const b = Math.min(x + 1, X - x, by); // distance (voxels) to the first voxel outside the crop
        if (b * b <= r2) continue;
        res[i] = e2[i] > r2 ? 1 : 0;
      }
    }
  }
  return res;
}
