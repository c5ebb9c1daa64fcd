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
  assd: number;
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
  metrics: Record<"1" | "2" | "3", Record<string, RefMetrics>>;
  postprocess: Record<"1" | "3", Record<string, string>>;
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
