/** Test fixtures for the dashboard: synthetic embedding banks with one cluster per site. */
import type { EmbeddingSnapshot } from "../../../src/dashboard/types.js";

/** Channel count of each of the 9 MSC scales for an Att-UNet with base 32 and depth 5. */
export const SCALE_DIMS = [32, 64, 128, 256, 512, 256, 128, 64, 32];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}

/** Each site's vectors = its own random direction + isotropic noise, L2-normalised. */
export function syntheticBank(sites: string[], round: number, perSite = 40, spread = 0.6): EmbeddingSnapshot {
  const r = rng(1234 + round);
  return {
    fold: 0,
    phase: "seg",
    round,
    scales: SCALE_DIMS.map((dim, i) => {
      const out: Record<string, number[][]> = {};
      for (const site of sites) {
        const centre = Array.from({ length: dim }, () => gaussian(r));
        const cn = Math.hypot(...centre);
        out[site] = Array.from({ length: perSite }, () => {
          const v = centre.map((c) => c / cn + (spread / Math.sqrt(dim)) * gaussian(r));
          const n = Math.hypot(...v);
          return v.map((x) => x / n);
        });
      }
      return { scale: i + 1, sites: out };
    }),
  };
}
