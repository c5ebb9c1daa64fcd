import { boundingBoxWhere, boxDims } from "./box.js";
import { assertDims, type Dims3, type Mask, type VoxelArray } from "./grid.js";

/**
 * 3D connected components, matching `scipy.ndimage.label` (and so MedPy and the paper's
 * post-processing): one flood fill for every use — keeping the largest component of each bone
 * (evaluation), counting components and removing voxelisation debris (phantoms).
 */

/**
 * Neighbourhood of a voxel: 6 = faces, 18 = faces + edges, 26 = faces + edges + corners ("full").
 * scipy/MedPy write these as `generate_binary_structure(3, c)` with c = 1, 2, 3; scipy `label`'s
 * default is 6, MedPy's surface default is 6, the paper's full connectivity is 26.
 */
export type Connectivity = 6 | 18 | 26;

export const CONNECTIVITIES: readonly Connectivity[] = [6, 18, 26];

export function isConnectivity(v: unknown): v is Connectivity {
  return v === 6 || v === 18 || v === 26;
}

/** Neighbour offsets (dx, dy, dz) of the connectivity, centre excluded. */
export function neighbourOffsets(connectivity: Connectivity): [number, number, number][] {
  const maxSteps = connectivity === 6 ? 1 : connectivity === 18 ? 2 : 3;
  const out: [number, number, number][] = [];
  for (let dz = -1; dz <= 1; dz++) {
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const n = Math.abs(dx) + Math.abs(dy) + Math.abs(dz);
        if (n > 0 && n <= maxSteps) out.push([dx, dy, dz]);
      }
    }
  }
  return out;
}

/**
 * Components of the voxels of each of `labels` (components only join voxels of the same label),
 * on the bounding box of those voxels padded by one background voxel (so neighbour offsets never
 * leave the array). `ids` holds 0 outside and the component id (1…) inside; component c has
 * `sizes[c]` voxels and belongs to `labels[labelIndex[c]]`.
 */
interface Components {
  /** Crop origin in the volume (the padded array's voxel (1, 1, 1)). */
  lo: [number, number, number];
  crop: [number, number, number];
  /** Padded crop dims (crop + 2). */
  PX: number;
  PY: number;
  ids: Int32Array;
  sizes: number[];
  labelIndex: number[];
}

/** Look-up label value → position in `labels` + 1 (0 = not evaluated); values rounded. */
function labelCodes(labels: readonly number[]): (v: number) => number {
  const valid = labels.filter((l) => Number.isInteger(l) && l >= 1);
  const maxLabel = Math.max(0, ...valid);
  const lut = new Int32Array(maxLabel + 1);
  labels.forEach((l, k) => {
    if (Number.isInteger(l) && l >= 1 && lut[l] === 0) lut[l] = k + 1;
  });
  return (v) => {
    const r = Math.round(v);
    return r >= 1 && r <= maxLabel ? lut[r] : 0;
  };
}

function components(
  labelMap: VoxelArray,
  dims: Dims3,
  labels: readonly number[],
  connectivity: Connectivity,
): Components | null {
  const code = labelCodes(labels);
  const box = boundingBoxWhere(dims, (i) => labelMap[i] !== 0 && code(labelMap[i]) !== 0);
  if (box === null) return null;
  const [X, Y] = dims;
  const [cx, cy, cz] = boxDims(box);
  const [x0, y0, z0] = box.lo;
  const PX = cx + 2;
  const PY = cy + 2;
  const PZ = cz + 2;
  // 0 = background / other labels, −(k+1) = unvisited voxel of labels[k], > 0 = component id.
  const ids = new Int32Array(PX * PY * PZ);
  for (let z = 0; z < cz; z++) {
    for (let y = 0; y < cy; y++) {
      const src = x0 + X * (y0 + y + Y * (z0 + z));
      const dst = 1 + PX * (y + 1 + PY * (z + 1));
      for (let x = 0; x < cx; x++) {
        const v = labelMap[src + x];
        if (v !== 0) ids[dst + x] = -code(v);
      }
    }
  }
  const offs = Int32Array.from(
    neighbourOffsets(connectivity).map(([dx, dy, dz]) => dx + PX * (dy + PY * dz)),
  );
  let queue = new Int32Array(1024);
  const sizes: number[] = [0];
  const labelIndex: number[] = [-1];
  for (let start = 0; start < ids.length; start++) {
    const v = ids[start];
    if (v >= 0) continue;
    const id = sizes.length;
    let head = 0;
    let tail = 0;
    queue[tail++] = start;
    ids[start] = id;
    while (head < tail) {
      const i = queue[head++];
      for (let k = 0; k < offs.length; k++) {
        const j = i + offs[k];
        if (ids[j] === v) {
          ids[j] = id;
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
    labelIndex.push(-v - 1);
  }
  return { lo: [x0, y0, z0], crop: [cx, cy, cz], PX, PY, ids, sizes, labelIndex };
}

/**
 * The largest component of each label. Ties are broken as scipy does: scipy numbers components in
 * C order of an array indexed [x, y, z] (z fastest), so on equal sizes the component holding the
 * smallest (x, y, z) in lexicographic order wins. Returns, per label index, the winning id or −1.
 */
function largestIds(c: Components, dims: Dims3, nLabels: number): Int32Array {
  const { sizes, labelIndex, ids, PX, PY, lo, crop } = c;
  const bestSize = new Array<number>(nLabels).fill(0);
  for (let id = 1; id < sizes.length; id++)
    if (sizes[id] > bestSize[labelIndex[id]]) bestSize[labelIndex[id]] = sizes[id];
  const best = new Int32Array(nLabels).fill(-1);
  const tied = new Set<number>();
  for (let id = 1; id < sizes.length; id++) {
    const k = labelIndex[id];
    if (sizes[id] !== bestSize[k]) continue;
    if (best[k] < 0) best[k] = id;
    else tied.add(k);
  }
  if (tied.size > 0) {
    const [, Y, Z] = dims;
    const bestKey = new Float64Array(nLabels).fill(Number.POSITIVE_INFINITY);
    for (let z = 1; z <= crop[2]; z++)
      for (let y = 1; y <= crop[1]; y++)
        for (let x = 1; x <= crop[0]; x++) {
          const id = ids[x + PX * (y + PY * z)];
          if (id <= 0) continue;
          const k = labelIndex[id];
          if (!tied.has(k) || sizes[id] !== bestSize[k]) continue;
          const key = ((x - 1 + lo[0]) * Y + (y - 1 + lo[1])) * Z + (z - 1 + lo[2]);
          if (key < bestKey[k]) {
            bestKey[k] = key;
            best[k] = id;
          }
        }
  }
  return best;
}

/** Calls `visit(volumeIndex, id)` for every voxel of the crop that belongs to a component. */
function forEachComponentVoxel(c: Components, dims: Dims3, visit: (i: number, id: number) => void): void {
  const [X, Y] = dims;
  const { ids, PX, PY, lo, crop } = c;
  for (let z = 0; z < crop[2]; z++) {
    for (let y = 0; y < crop[1]; y++) {
      const dst = lo[0] + X * (lo[1] + y + Y * (lo[2] + z));
      const src = 1 + PX * (y + 1 + PY * (z + 1));
      for (let x = 0; x < crop[0]; x++) {
        const id = ids[src + x];
        if (id > 0) visit(dst + x, id);
      }
    }
  }
}

/**
 * The largest connected component of every label of a label map, in one flood-fill pass.
 * Equals, per label L ≥ 1, `lab, n = scipy.ndimage.label(labelMap == L, structure)`;
 * `lab == argmax(bincount(lab.ravel())[1:]) + 1` (values rounded to integers). Returns one mask per
 * label, empty when the label is absent; 0 and non-integer labels give empty masks.
 */
export function largestComponents(
  labelMap: VoxelArray,
  dims: Dims3,
  labels: readonly number[],
  connectivity: Connectivity,
): Map<number, Mask> {
  assertDims(dims, labelMap.length, "largestComponents");
  const result = new Map<number, Mask>();
  for (const l of labels) result.set(l, new Uint8Array(labelMap.length));
  const c = components(labelMap, dims, labels, connectivity);
  if (c === null) return result;
  const best = largestIds(c, dims, labels.length);
  const winner = new Int32Array(c.sizes.length).fill(-1); // component id → label index when kept
  for (let k = 0; k < labels.length; k++) if (best[k] > 0) winner[best[k]] = k;
  const outs = labels.map((l) => result.get(l)!);
  forEachComponentVoxel(c, dims, (i, id) => {
    if (winner[id] >= 0) outs[winner[id]][i] = 1;
  });
  return result;
}

/** The largest connected component of a binary mask (any non-zero voxel is inside). */
export function largestComponent(mask: Mask, dims: Dims3, connectivity: Connectivity): Mask {
  const binary = mask.every((v) => v === 0 || v === 1) ? mask : mask.map((v) => (v === 0 ? 0 : 1));
  return largestComponents(binary, dims, [1], connectivity).get(1)!;
}

/** Number of connected components of the voxels equal to `value` (an integer ≥ 1). */
export function countComponents(
  labelMap: VoxelArray,
  dims: Dims3,
  value: number,
  connectivity: Connectivity,
): number {
  assertDims(dims, labelMap.length, "countComponents");
  const c = components(labelMap, dims, [value], connectivity);
  return c === null ? 0 : c.sizes.length - 1;
}

/**
 * Keeps only the largest connected component of each of `labels` in a label map, in place (other
 * voxels of those labels become 0). Returns the number of voxels removed.
 */
export function keepLargestComponents(
  labelMap: Uint8Array,
  dims: Dims3,
  labels: readonly number[],
  connectivity: Connectivity,
): number {
  assertDims(dims, labelMap.length, "keepLargestComponents");
  const c = components(labelMap, dims, labels, connectivity);
  if (c === null) return 0;
  const best = new Set(largestIds(c, dims, labels.length));
  let removed = 0;
  forEachComponentVoxel(c, dims, (i, id) => {
    if (!best.has(id)) {
      labelMap[i] = 0;
      removed++;
    }
  });
  return removed;
}
