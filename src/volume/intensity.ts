/**
 * Intensity normalisation of a volume (paper §2: z-score per volume), in one place for training
 * slices and inference alike.
 */

export interface IntensityStats {
  /** Mean over all voxels (NaN or ±Infinity when a voxel is not finite). */
  mean: number;
  /** Standard deviation (ddof 0) over all voxels; 1 when the volume is constant. */
  std: number;
}

/** Mean and standard deviation of the voxel values (float64 accumulation). */
export function intensityStats(values: ArrayLike<number>): IntensityStats {
  let sum = 0;
  let sq = 0;
  const n = values.length;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    sum += v;
    sq += v * v;
  }
  const mean = sum / n;
  const std = Math.sqrt(Math.max(sq / n - mean * mean, 0)) || 1;
  return { mean, std };
}

/**
 * The linear map v ↦ scale·v + shift that z-scores `stored·slope + inter` given the stored values
 * (NIfTI scl_slope/scl_inter): z = sign(slope)·(stored − mean(stored)) / std(stored).
 */
export function zScoreMap(
  stored: ArrayLike<number>,
  slope = 1,
): IntensityStats & { scale: number; shift: number } {
  const s = intensityStats(stored);
  const scale = (slope < 0 ? -1 : 1) / s.std;
  return { ...s, scale, shift: -s.mean * scale };
}

/** z-scores in place (mean 0, std 1 over all voxels; a constant volume becomes 0). */
export function zScore(data: Float32Array): Float32Array {
  const { scale, shift } = zScoreMap(data);
  for (let i = 0; i < data.length; i++) data[i] = data[i] * scale + shift;
  return data;
}
