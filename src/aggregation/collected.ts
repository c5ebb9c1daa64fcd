/**
 * A round aggregator that keeps every result of the round, for rules that need all updates at once
 * (coordinate-wise median, trimmed mean, Krum, norm bounds relative to the round's median).
 * Memory and snapshot size O(n · |Θ|) for n results — the price of robustness; FedAvg's streaming
 * WeightedMean stays O(|Θ|). The tensors are kept as received (no copy) in schema order.
 */
import { fjError } from "../errors.js";
import type { NamedTensor } from "../model/api.js";
import type { RoundAggregator, SiteResult, TensorSchema } from "./strategy.js";

const MAGIC = "FJCOL1";

/** How a rule combines the round's results into one Θ (results in arrival order, schema order). */
export type Combine = (results: readonly SiteResult[]) => NamedTensor[];

export class CollectedResults implements RoundAggregator {
  readonly schema: TensorSchema;
  private readonly combine: Combine;
  private readonly sizes: Map<string, number>;
  private readonly kept: SiteResult[] = [];
  private samples = 0;

  constructor(schema: TensorSchema, combine: Combine) {
    this.schema = schema;
    this.combine = combine;
    this.sizes = new Map(schema.tensors.map((t) => [t.name, t.shape.reduce((a, b) => a * b, 1)]));
  }

  get sites(): readonly string[] {
    return this.kept.map((r) => r.site);
  }
  get totalSamples(): number {
    return this.samples;
  }

  /** The results so far (arrival order), tensors in schema order. */
  results(): readonly SiteResult[] {
    return this.kept;
  }

  add(result: SiteResult): void {
    if (!(result.samples > 0) || !Number.isFinite(result.samples)) {
      throw fjError("FJ_AGG_WEIGHT", `update of ${result.site}: ${result.samples} samples, expected > 0`);
    }
    if (result.tensors.length !== this.schema.tensors.length) {
      throw fjError(
        "FJ_AGG_SCHEMA",
        `update of ${result.site}: ${result.tensors.length} tensors, expected ${this.schema.tensors.length}`,
      );
    }
    const byName = new Map(result.tensors.map((t) => [t.name, t]));
    const ordered = this.schema.tensors.map((s) => {
      const t = byName.get(s.name);
      if (t === undefined || t.data.length !== this.sizes.get(s.name)) {
        throw fjError("FJ_AGG_SCHEMA", `update of ${result.site}: tensor ${s.name} missing or mis-sized`);
      }
      return t;
    });
    this.kept.push({ site: result.site, samples: result.samples, tensors: ordered });
    this.samples += result.samples;
  }

  result(): NamedTensor[] {
    if (this.kept.length === 0) throw fjError("FJ_AGG_EMPTY", "no update to aggregate");
    return this.combine(this.kept);
  }

  snapshot(): Uint8Array[] {
    const meta = Buffer.from(
      JSON.stringify({ magic: MAGIC, results: this.kept.map((r) => ({ site: r.site, samples: r.samples })) }),
      "utf8",
    );
    const len = Buffer.alloc(4);
    len.writeUInt32LE(meta.length, 0);
    const parts: Uint8Array[] = [len, meta];
    for (const r of this.kept) {
      for (const t of r.tensors)
        parts.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
    return parts;
  }

  /** Restores a snapshot of the same schema (FJ_AGG_SNAPSHOT on a size or format mismatch). */
  static restore(schema: TensorSchema, combine: Combine, buf: Buffer): CollectedResults {
    const c = new CollectedResults(schema, combine);
    const bad = (why: string) => fjError("FJ_AGG_SNAPSHOT", `aggregator snapshot: ${why}`);
    if (buf.length < 4) throw bad("truncated");
    const n = buf.readUInt32LE(0);
    let meta: { magic?: unknown; results?: { site: string; samples: number }[] };
    try {
      meta = JSON.parse(buf.subarray(4, 4 + n).toString("utf8")) as typeof meta;
    } catch {
      throw bad("unreadable header");
    }
    if (meta.magic !== MAGIC || !Array.isArray(meta.results)) throw bad("not a collected-results snapshot");
    const perResult = schema.tensors.reduce((s, t) => s + 4 * t.shape.reduce((a, b) => a * b, 1), 0);
    const expected = 4 + n + meta.results.length * perResult;
    if (buf.length !== expected) throw bad(`${buf.length} bytes, expected ${expected} for this schema`);
    let o = 4 + n;
    for (const r of meta.results) {
      const tensors = schema.tensors.map((s) => {
        const size = s.shape.reduce((a, b) => a * b, 1);
        const data = new Float32Array(size);
        new Uint8Array(data.buffer).set(buf.subarray(o, o + 4 * size));
        o += 4 * size;
        return { name: s.name, shape: [...s.shape], data };
      });
      c.add({ site: r.site, samples: r.samples, tensors });
    }
    return c;
  }
}

/** Coordinate-wise combination: `pick(values, weights)` per element over the results. */
export function coordinateWise(
  results: readonly SiteResult[],
  pick: (values: Float64Array, weights: Float64Array) => number,
): NamedTensor[] {
  const n = results.length;
  const values = new Float64Array(n);
  const weights = Float64Array.from(results, (r) => r.samples);
  return results[0].tensors.map((first, ti) => {
    const out = new Float32Array(first.data.length);
    for (let k = 0; k < out.length; k++) {
      for (let i = 0; i < n; i++) values[i] = results[i].tensors[ti].data[k];
      out[k] = pick(values, weights);
    }
    return { name: first.name, shape: [...first.shape], data: out };
  });
}

/** Median of a small array (sorted in place); the mean of the two middle values for even n. */
export function medianInPlace(values: Float64Array): number {
  values.sort();
  const n = values.length;
  const mid = n >> 1;
  return n % 2 === 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

/** Σ w_i Θ_i / Σ w_i over the given results (float64 accumulation). */
export function weightedMeanOf(
  results: readonly SiteResult[],
  weightOf: (r: SiteResult) => number,
): NamedTensor[] {
  const total = results.reduce((s, r) => s + weightOf(r), 0);
  return results[0].tensors.map((first, ti) => {
    const acc = new Float64Array(first.data.length);
    for (const r of results) {
      const w = weightOf(r);
      const d = r.tensors[ti].data;
      for (let k = 0; k < acc.length; k++) acc[k] += w * d[k];
    }
    return { name: first.name, shape: [...first.shape], data: Float32Array.from(acc, (v) => v / total) };
  });
}

/** ‖a − b‖₂ over two tensor sets of the same schema order (float64). */
export function distance(a: readonly NamedTensor[], b: readonly NamedTensor[]): number {
  let sq = 0;
  for (let t = 0; t < a.length; t++) {
    const x = a[t].data;
    const y = b[t].data;
    for (let k = 0; k < x.length; k++) {
      const d = x[k] - y[k];
      sq += d * d;
    }
  }
  return Math.sqrt(sq);
}
