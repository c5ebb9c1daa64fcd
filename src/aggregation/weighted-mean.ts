/**
 * Streaming weighted mean of named tensors: one float64 accumulator per tensor (|Θ| values in
 * total) plus the weight sum; each update is folded in and can be dropped. Memory O(|Θ|),
 * independent of the number of sites.
 */
import { z } from "zod";
import { fjError } from "../errors.js";
import type { NamedTensor } from "../model/api.js";
import type { RoundAggregator, SiteResult, TensorSchema } from "./strategy.js";

const MAGIC = "FJACC1";

/** How results weigh in the mean: by sample count (FedAvg) or uniform (every site/joint alike). */
export const weightingSchema = z.enum(["samples", "uniform"]).default("samples");
export type Weighting = z.output<typeof weightingSchema>;

export class WeightedMean implements RoundAggregator {
  readonly schema: TensorSchema;
  private readonly acc: Float64Array[];
  private readonly index = new Map<string, number>();
  private readonly weightOf: (u: { samples: number }) => number;
  private weight = 0;
  private samples = 0;
  private readonly added: string[] = [];

  /** The weight function of a weighting. */
  static weightOf(weighting: Weighting): (u: { samples: number }) => number {
    return weighting === "uniform" ? () => 1 : (u) => u.samples;
  }

  constructor(schema: TensorSchema, weightOf: (u: { samples: number }) => number) {
    this.schema = schema;
    this.weightOf = weightOf;
    this.acc = schema.tensors.map((t, i) => {
      this.index.set(t.name, i);
      return new Float64Array(t.shape.reduce((a, b) => a * b, 1));
    });
  }

  get sites(): readonly string[] {
    return this.added;
  }
  get totalSamples(): number {
    return this.samples;
  }

  add(update: SiteResult): void {
    const w = this.weightOf(update);
    if (!(w > 0) || !Number.isFinite(w)) {
      throw fjError("FJ_AGG_WEIGHT", `update of ${update.site}: weight ${w}, expected a finite value > 0`);
    }
    if (update.tensors.length !== this.acc.length) {
      throw fjError(
        "FJ_AGG_SCHEMA",
        `update of ${update.site}: ${update.tensors.length} tensors, expected ${this.acc.length}`,
      );
    }
    for (const t of update.tensors) {
      const i = this.index.get(t.name);
      if (i === undefined || this.acc[i].length !== t.data.length) {
        throw fjError("FJ_AGG_SCHEMA", `update of ${update.site}: unexpected tensor ${t.name}`);
      }
    }
    for (const t of update.tensors) {
      const a = this.acc[this.index.get(t.name)!];
      const d = t.data;
      for (let k = 0; k < d.length; k++) a[k] += w * d[k];
    }
    this.weight += w;
    this.samples += update.samples;
    this.added.push(update.site);
  }

  result(): NamedTensor[] {
    if (this.weight <= 0) throw fjError("FJ_AGG_EMPTY", "no update to aggregate");
    return this.schema.tensors.map((t, i) => {
      const a = this.acc[i];
      const data = new Float32Array(a.length);
      for (let k = 0; k < a.length; k++) data[k] = a[k] / this.weight;
      return { name: t.name, shape: [...t.shape], data };
    });
  }

  snapshot(): Uint8Array[] {
    const meta = Buffer.from(
      JSON.stringify({ magic: MAGIC, weight: this.weight, samples: this.samples, sites: this.added }),
      "utf8",
    );
    const len = Buffer.alloc(4);
    len.writeUInt32LE(meta.length, 0);
    return [len, meta, ...this.acc.map((a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength))];
  }

  /** Restores a snapshot of the same schema (throws on a size or format mismatch). */
  static restore(
    schema: TensorSchema,
    weightOf: (u: { samples: number }) => number,
    buf: Buffer,
  ): WeightedMean {
    const m = new WeightedMean(schema, weightOf);
    const n = buf.length >= 4 ? buf.readUInt32LE(0) : 0;
    let meta: { magic: string; weight: number; samples: number; sites: string[] };
    try {
      meta = JSON.parse(buf.subarray(4, 4 + n).toString("utf8")) as typeof meta;
    } catch {
      throw fjError("FJ_AGG_SNAPSHOT", "aggregator snapshot: unreadable header");
    }
    if (meta.magic !== MAGIC) {
      throw fjError(
        "FJ_AGG_SNAPSHOT",
        `aggregator snapshot: format '${String(meta.magic).slice(0, 16)}', expected ${MAGIC}`,
      );
    }
    const expected = 4 + n + m.acc.reduce((s, a) => s + a.byteLength, 0);
    if (buf.length !== expected) {
      throw fjError(
        "FJ_AGG_SNAPSHOT",
        `aggregator snapshot: ${buf.length} bytes, expected ${expected} for this schema`,
      );
    }
    let o = 4 + n;
    for (const a of m.acc) {
      const bytes = buf.subarray(o, o + a.byteLength);
      new Uint8Array(a.buffer).set(bytes);
      o += a.byteLength;
    }
    m.weight = meta.weight;
    m.samples = meta.samples;
    m.added.push(...meta.sites);
    return m;
  }
}
