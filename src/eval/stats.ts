/**
 * Descriptive statistics for reports. Conventions (documented, numpy defaults):
 * - std is the population standard deviation (ddof = 0, `numpy.std`);
 * - percentiles use linear interpolation between order statistics (`numpy.percentile`, "linear").
 */
import { fjError } from "../errors.js";

export interface MeanStd {
  mean: number;
  std: number;
  n: number;
}

/** Mean and population std of the values (NaN mean/std when there are none). */
export function meanStd(values: ArrayLike<number>): MeanStd {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, std: Number.NaN, n: 0 };
  let s = 0;
  for (let i = 0; i < n; i++) s += values[i];
  const mean = s / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i] - mean) ** 2;
  return { mean, std: Math.sqrt(ss / n), n };
}

/** `numpy.percentile(values, q)` with linear interpolation; q in [0, 100]. */
export function percentile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) return Number.NaN;
  if (!(q >= 0 && q <= 100)) throw fjError("FJ_EVAL_STATS", `percentile: q is ${q}, expected 0–100`);
  const s = Float64Array.from(values).sort();
  const pos = ((s.length - 1) * q) / 100;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  const frac = pos - lo;
  return s[lo] + (s[hi] - s[lo]) * frac;
}

/** Summary of a 2D score distribution as in the paper's Table 4: mean, and the 16th/84th percentiles. */
export interface Distribution {
  n: number;
  mean: number;
  std: number;
  p16: number;
  p84: number;
}

export function distribution(values: ArrayLike<number>): Distribution {
  const { mean, std, n } = meanStd(values);
  return { n, mean, std, p16: percentile(values, 16), p84: percentile(values, 84) };
}
