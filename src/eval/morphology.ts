import { squaredEdt } from "./edt.js";
import {
  assertDims,
  boundingBox,
  boxDims,
  cropMask,
  type Dims3,
  expandBox,
  type Mask,
  pasteMask,
  type VoxelArray,
} from "./volume.js";

/**
 * Binary morphology on 3D masks, matching `scipy.ndimage` (default `border_value=0`: everything
 * outside the volume counts as background).
 */

/** 1 = faces (6-neighbourhood), 2 = faces+edges (18), 3 = faces+edges+corners (26, "full"). */
export type Connectivity = 1 | 2 | 3;

/** Neighbour offsets of `scipy.ndimage.generate_binary_structure(3, connectivity)`, centre excluded. */
export function neighbourOffsets(connectivity: Connectivity): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let dz = -1; dz <= 1; dz++) {
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const n = Math.abs(dx) + Math.abs(dy) + Math.abs(dz);
        if (n > 0 && n <= connectivity) out.push([dx, dy, dz]);
      }
    }
  }
  return out;
}

/**
 * Binary erosion by the 3×3×3 structure of the given connectivity, `border_value=0`
 * (`scipy.ndimage.binary_erosion(mask, generate_binary_structure(3, c))`).
 */
export function erode(mask: Mask, dims: Dims3, connectivity: Connectivity): Mask {
  assertDims(dims, mask.length, "erode");
  // The structures are unions of separable pieces, and erosion by a union is the intersection of
  // the erosions: 26 = 3×3×3 cube (x·y·z); 18 = union of the three 3×3 squares; 6 = union of the
  // three 3-voxel segments. Each 1D pass is an AND of i−1, i, i+1 with outside = 0.
  const ex = filter3(mask, dims, 0, true);
  if (connectivity === 3) return filter3(filter3(ex, dims, 1, true), dims, 2, true);
  const ey = filter3(mask, dims, 1, true);
  const ez = filter3(mask, dims, 2, true);
  const out = new Uint8Array(mask.length);
  if (connectivity === 1) {
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
 * Keeps the largest connected component of a mask.
 *
 * Matches `lab, n = scipy.ndimage.label(mask, generate_binary_structure(3, connectivity));
 * mask = lab == argmax(bincount(lab.ravel())[1:]) + 1`. scipy numbers components in C order of an
 * array indexed [x, y, z] (z fastest), so on equal sizes the component whose first voxel in that
 * order comes first wins; we reproduce that tie-break. scipy's own default structure is
 * connectivity 1 (6-neighbourhood); pass 3 for 26-connectivity.
 * An empty mask returns an empty mask.
 */
export function largestComponent(mask: Mask, dims: Dims3, connectivity: Connectivity): Mask {
  assertDims(dims, mask.length, "largestComponent");
  const out = new Uint8Array(mask.length);
  const box = boundingBox(dims, mask);
  if (box === null) return out;
  const [X, Y, Z] = dims;
  const [cx, cy, cz] = boxDims(box);
  // Work on the bounding box padded with one background voxel on every side, so that neighbour
  // offsets never leave the array and no coordinate decoding is needed in the flood fill.
  const PX = cx + 2;
  const PY = cy + 2;
  const PZ = cz + 2;
  const lab = new Int32Array(PX * PY * PZ); // -1 = unvisited foreground, 0 = background, k = component k
  for (let z = 0; z < cz; z++) {
    for (let y = 0; y < cy; y++) {
      const src = box.lo[0] + X * (box.lo[1] + y + Y * (box.lo[2] + z));
      const dst = 1 + PX * (y + 1 + PY * (z + 1));
      for (let x = 0; x < cx; x++) if (mask[src + x] !== 0) lab[dst + x] = -1;
    }
  }
  const offs = Int32Array.from(
    neighbourOffsets(connectivity).map(([dx, dy, dz]) => dx + PX * (dy + PY * dz)),
  );
  const nOffs = offs.length;
  let queue = new Int32Array(1024);
  const sizes: number[] = [0];
  for (let start = 0; start < lab.length; start++) {
    if (lab[start] !== -1) continue;
    const id = sizes.length;
    let head = 0;
    let tail = 0;
    queue[tail++] = start;
    lab[start] = id;
    while (head < tail) {
      const i = queue[head++];
      for (let k = 0; k < nOffs; k++) {
        const j = i + offs[k];
        if (lab[j] === -1) {
          lab[j] = id;
          if (tail === queue.length) {
            const q = new Int32Array(queue.length * 2);
            q.set(queue);
            queue = q;
          }
          queue[tail++] = j;
        }
      }
    }
    sizes.push(tail);
  }
  let bestSize = 0;
  for (let k = 1; k < sizes.length; k++) if (sizes[k] > bestSize) bestSize = sizes[k];
  const tied = new Set<number>();
  for (let k = 1; k < sizes.length; k++) if (sizes[k] === bestSize) tied.add(k);
  let best = Math.min(...tied);
  if (tied.size > 1) {
    // scipy numbers components in C order of the [x, y, z] array (z fastest): the winner of a tie is
    // the component holding the smallest (x, y, z) in lexicographic order.
    let bestKey = Number.POSITIVE_INFINITY;
    for (let z = 1; z <= cz; z++)
      for (let y = 1; y <= cy; y++)
        for (let x = 1; x <= cx; x++) {
          const k = lab[x + PX * (y + PY * z)];
          if (!tied.has(k)) continue;
          const key = ((x - 1 + box.lo[0]) * Y + (y - 1 + box.lo[1])) * Z + (z - 1 + box.lo[2]);
          if (key < bestKey) {
            bestKey = key;
            best = k;
          }
        }
  }
  for (let z = 0; z < cz; z++) {
    for (let y = 0; y < cy; y++) {
      const dst = box.lo[0] + X * (box.lo[1] + y + Y * (box.lo[2] + z));
      const src = 1 + PX * (y + 1 + PY * (z + 1));
      for (let x = 0; x < cx; x++) if (lab[src + x] === best) out[dst + x] = 1;
    }
  }
  return out;
}

/**
 * `largestComponent` for several labels of one label map in a single flood-fill pass (components
 * only join voxels of the same label). Returns one mask per label (empty when the label is absent);
 * identical to calling `largestComponent(maskOf(labels, l), …)` for each l. Labels are ≥ 1 (0 is
 * background and never kept). Works on the bounding box of the evaluated labels.
 */
export function largestComponents(
  labelMap: VoxelArray,
  dims: Dims3,
  labels: readonly number[],
  connectivity: Connectivity,
): Map<number, Mask> {
  assertDims(dims, labelMap.length, "largestComponents");
  const [X, Y, Z] = dims;
  const result = new Map<number, Mask>();
  for (const l of labels) result.set(l, new Uint8Array(labelMap.length));
  // Look-up table label value -> position in `labels` + 1 (0 = not evaluated).
  const maxLabel = Math.max(0, ...labels.filter((l) => Number.isInteger(l) && l >= 0));
  const lut = new Int32Array(maxLabel + 1);
  labels.forEach((l, k) => {
    if (Number.isInteger(l) && l >= 0 && lut[l] === 0) lut[l] = k + 1;
  });
  const code = (v: number): number => {
    const r = Math.round(v);
    return r >= 0 && r <= maxLabel ? lut[r] : 0;
  };
  // Pass 1: bounding box of the evaluated labels.
  let x0 = X;
  let y0 = Y;
  let z0 = Z;
  let x1 = -1;
  let y1 = -1;
  let z1 = -1;
  for (let z = 0, i = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      for (let x = 0; x < X; x++, i++) {
        if (labelMap[i] === 0 || code(labelMap[i]) === 0) continue;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
        if (z < z0) z0 = z;
        z1 = z;
      }
    }
  }
  if (x1 < 0) return result;
  const cx = x1 - x0 + 1;
  const cy = y1 - y0 + 1;
  const cz = z1 - z0 + 1;
  // Padded crop: 0 = background / other labels, -(k+1) = unvisited voxel of labels[k], > 0 = component id.
  const PX = cx + 2;
  const PY = cy + 2;
  const PZ = cz + 2;
  const lab = new Int32Array(PX * PY * PZ);
  for (let z = 0; z < cz; z++) {
    for (let y = 0; y < cy; y++) {
      const src = x0 + X * (y0 + y + Y * (z0 + z));
      const dst = 1 + PX * (y + 1 + PY * (z + 1));
      for (let x = 0; x < cx; x++) {
        const v = labelMap[src + x];
        if (v !== 0) lab[dst + x] = -code(v);
      }
    }
  }
  const offs = Int32Array.from(
    neighbourOffsets(connectivity).map(([dx, dy, dz]) => dx + PX * (dy + PY * dz)),
  );
  const nOffs = offs.length;
  let queue = new Int32Array(1024);
  const sizes: number[] = [0];
  const compLabel: number[] = [-1];
  for (let start = 0; start < lab.length; start++) {
    const v = lab[start];
    if (v >= 0) continue;
    const id = sizes.length;
    let head = 0;
    let tail = 0;
    queue[tail++] = start;
    lab[start] = id;
    while (head < tail) {
      const i = queue[head++];
      for (let k = 0; k < nOffs; k++) {
        const j = i + offs[k];
        if (lab[j] === v) {
          lab[j] = id;
          if (tail === queue.length) {
            const q = new Int32Array(queue.length * 2);
            q.set(queue);
            queue = q;
          }
          queue[tail++] = j;
        }
      }
    }
    sizes.push(tail);
    compLabel.push(-v - 1);
  }
  const bestSize = new Array<number>(labels.length).fill(0);
  for (let c = 1; c < sizes.length; c++)
    if (sizes[c] > bestSize[compLabel[c]]) bestSize[compLabel[c]] = sizes[c];
  const best = new Int32Array(labels.length).fill(-1);
  const tiedLabels = new Set<number>();
  for (let c = 1; c < sizes.length; c++) {
    const k = compLabel[c];
    if (sizes[c] !== bestSize[k]) continue;
    if (best[k] < 0) best[k] = c;
    else tiedLabels.add(k);
  }
  if (tiedLabels.size > 0) {
    // scipy's tie-break: the component holding the smallest (x, y, z) in lexicographic order.
    const bestKey = new Float64Array(labels.length).fill(Number.POSITIVE_INFINITY);
    for (let z = 1; z <= cz; z++)
      for (let y = 1; y <= cy; y++)
        for (let x = 1; x <= cx; x++) {
          const c = lab[x + PX * (y + PY * z)];
          if (c <= 0) continue;
          const k = compLabel[c];
          if (!tiedLabels.has(k) || sizes[c] !== bestSize[k]) continue;
          const key = ((x - 1 + x0) * Y + (y - 1 + y0)) * Z + (z - 1 + z0);
          if (key < bestKey[k]) {
            bestKey[k] = key;
            best[k] = c;
          }
        }
  }
  const winner = new Int32Array(sizes.length).fill(-1); // component id -> label index when it is kept
  for (let k = 0; k < labels.length; k++) if (best[k] > 0) winner[best[k]] = k;
  const outs = labels.map((l) => result.get(l)!);
  for (let z = 0; z < cz; z++) {
    for (let y = 0; y < cy; y++) {
      const dst = x0 + X * (y0 + y + Y * (z0 + z));
      const src = 1 + PX * (y + 1 + PY * (z + 1));
      for (let x = 0; x < cx; x++) {
        const c = lab[src + x];
        if (c > 0 && winner[c] >= 0) outs[winner[c]][dst + x] = 1;
      }
    }
  }
  return result;
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
    throw new RangeError("closeBall: the decomposed method exists for radius 2 only");
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
