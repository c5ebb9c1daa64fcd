/**
 * 3D connected components on label volumes in NIfTI order (index = x + X·(y + Y·z)).
 */

export type Connectivity = 6 | 18 | 26;

function offsets(conn: Connectivity): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let dz = -1; dz <= 1; dz++) {
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const n = Math.abs(dx) + Math.abs(dy) + Math.abs(dz);
        if (n === 0) continue;
        if (conn === 6 && n > 1) continue;
        if (conn === 18 && n > 2) continue;
        out.push([dx, dy, dz]);
      }
    }
  }
  return out;
}

/**
 * Labels the connected components of the voxels where `mask[i] !== 0`.
 * Returns the component id per voxel (0 = outside, 1..count) and the component sizes (index 0 unused).
 */
export function connectedComponents(
  mask: ArrayLike<number>,
  dims: [number, number, number],
  connectivity: Connectivity = 6,
): { ids: Int32Array; sizes: number[]; count: number } {
  const [X, Y, Z] = dims;
  const n = X * Y * Z;
  const ids = new Int32Array(n);
  const sizes: number[] = [0];
  const nb = offsets(connectivity);
  const stack = new Int32Array(n);
  let count = 0;
  for (let start = 0; start < n; start++) {
    if (mask[start] === 0 || ids[start] !== 0) continue;
    count++;
    let top = 0;
    stack[top++] = start;
    ids[start] = count;
    let size = 0;
    while (top > 0) {
      const v = stack[--top];
      size++;
      const x = v % X;
      const y = Math.floor(v / X) % Y;
      const z = Math.floor(v / (X * Y));
      for (const [dx, dy, dz] of nb) {
        const nx = x + dx;
        const ny = y + dy;
        const nz = z + dz;
        if (nx < 0 || ny < 0 || nz < 0 || nx >= X || ny >= Y || nz >= Z) continue;
        const u = nx + X * (ny + Y * nz);
        if (mask[u] !== 0 && ids[u] === 0) {
          ids[u] = count;
          stack[top++] = u;
        }
      }
    }
    sizes.push(size);
  }
  return { ids, sizes, count };
}

/** Number of connected components of the voxels equal to `value`. */
export function countComponents(
  labels: ArrayLike<number>,
  dims: [number, number, number],
  value: number,
  connectivity: Connectivity = 6,
): number {
  const mask = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) mask[i] = labels[i] === value ? 1 : 0;
  return connectedComponents(mask, dims, connectivity).count;
}

/**
 * Keeps only the largest connected component of each label value in `values` (in place; other
 * voxels of that value become 0). Returns the number of voxels removed.
 */
export function keepLargestComponents(
  labels: Uint8Array,
  dims: [number, number, number],
  values: number[],
  connectivity: Connectivity = 6,
): number {
  let removed = 0;
  const mask = new Uint8Array(labels.length);
  for (const value of values) {
    let any = false;
    for (let i = 0; i < labels.length; i++) {
      mask[i] = labels[i] === value ? 1 : 0;
      if (mask[i]) any = true;
    }
    if (!any) continue;
    const { ids, sizes, count } = connectedComponents(mask, dims, connectivity);
    if (count <= 1) continue;
    let best = 1;
    for (let c = 2; c <= count; c++) if (sizes[c] > sizes[best]) best = c;
    for (let i = 0; i < labels.length; i++) {
      if (ids[i] !== 0 && ids[i] !== best) {
        labels[i] = 0;
        removed++;
      }
    }
  }
  return removed;
}
