import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Reference cases made by test/fixtures/eval/make_fixtures.py (scipy + numpy, MedPy's algorithm). */
export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../../fixtures/eval");

export interface RefMetrics {
  dice: number;
  sensitivity: number;
  specificity: number;
  ravd: number;
  mssd: number;
  /** ASSD pooled over both directions (paper eq. S5, MedPy ≥ 0.5). */
  assd: number;
  /** Mean of the two directed mean surface distances (MedPy ≤ 0.4). */
  assdDirected: number;
  predVoxels: number;
  gtVoxels: number;
}

export interface MetricsCase {
  name: string;
  dims: [number, number, number];
  spacing: [number, number, number];
  labels: number[];
  pred: string;
  gt: string;
  /** Keyed by connectivity (neighbours), then label. */
  metrics: Record<"6" | "18" | "26", Record<string, RefMetrics>>;
  postprocess: Record<"6" | "26", Record<string, string>>;
  postprocessedMetrics: Record<string, RefMetrics>;
}

export function decode(b64: string): Uint8Array {
  return new Uint8Array(Buffer.from(b64, "base64"));
}

export function loadMetricsCases(): MetricsCase[] {
  const raw = JSON.parse(readFileSync(join(FIXTURES, "metrics_cases.json"), "utf8")) as {
    cases: MetricsCase[];
  };
  return raw.cases;
}
