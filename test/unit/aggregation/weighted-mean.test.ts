/**
 * The streaming weighted mean every averaging strategy folds updates into
 * (src/aggregation/weighted-mean.ts): exact results in float64, every refusal with its code and
 * reason, and a snapshot that restores the same state or is refused naming its size.
 */
import { describe, expect, it } from "vitest";
import type { TensorSchema } from "../../../src/aggregation/strategy.js";
import { WeightedMean } from "../../../src/aggregation/weighted-mean.js";
import { isFedjointError } from "../../../src/errors.js";
import type { NamedTensor } from "../../../src/model/api.js";

const t = (name: string, shape: number[], values: number[]): NamedTensor => ({
  name,
  shape,
  data: Float32Array.from(values),
});
const schema: TensorSchema = {
  tensors: [
    { name: "shared/w", shape: [2, 2] },
    { name: "shared/b", shape: [1] },
  ],
};
const set = (w: number[], b: number) => [t("shared/w", [2, 2], w), t("shared/b", [1], [b])];
const bySamples = () => new WeightedMean(schema, WeightedMean.weightOf("samples"));

function refusal(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (err) {
    if (isFedjointError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error("expected a refusal");
}

describe("WeightedMean", () => {
  it("is Σ w_k·x_k / Σ w_k per element, by samples or uniformly, with the schema's names and shapes", () => {
    const m = bySamples();
    m.add({ site: "a", samples: 1, tensors: set([1, 2, 3, 4], 10) });
    m.add({ site: "b", samples: 3, tensors: set([5, 6, 7, 8], -2) });
    const r = m.result();
    expect(r.map((x) => [x.name, x.shape])).toEqual([
      ["shared/w", [2, 2]],
      ["shared/b", [1]],
    ]);
    expect(Array.from(r[0]?.data ?? [])).toEqual([4, 5, 6, 7]);
    expect(Array.from(r[1]?.data ?? [])).toEqual([1]);
    expect(m.totalSamples).toBe(4);
    expect(m.sites).toEqual(["a", "b"]);
    // the result's shape is a copy, not the schema's array
    (r[0] as NamedTensor).shape.push(9);
    expect(schema.tensors[0]?.shape).toEqual([2, 2]);

    const u = new WeightedMean(schema, WeightedMean.weightOf("uniform"));
    u.add({ site: "a", samples: 1, tensors: set([1, 2, 3, 4], 10) });
    u.add({ site: "b", samples: 3, tensors: set([5, 6, 7, 8], -2) });
    expect(Array.from(u.result()[0]?.data ?? [])).toEqual([3, 4, 5, 6]);
    expect(u.totalSamples).toBe(4);
    expect(WeightedMean.weightOf("uniform")({ samples: 7 })).toBe(1);
    expect(WeightedMean.weightOf("samples")({ samples: 7 })).toBe(7);
  });

  it("accumulates in float64: a mean of values float32 cannot sum exactly", () => {
    const m = new WeightedMean(
      { tensors: [{ name: "shared/x", shape: [1] }] },
      WeightedMean.weightOf("uniform"),
    );
    m.add({ site: "a", samples: 1, tensors: [t("shared/x", [1], [2 ** 24])] });
    for (let i = 0; i < 4; i++) m.add({ site: `s${i}`, samples: 1, tensors: [t("shared/x", [1], [1])] });
    // (2^24 + 4) / 5 in float64, then rounded once to float32
    expect(m.result()[0]?.data[0]).toBe(Math.fround((2 ** 24 + 4) / 5));
  });

  it("refuses a weight that is not finite and > 0, and tensors that are not the schema's", () => {
    for (const samples of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(refusal(() => bySamples().add({ site: "a", samples, tensors: set([1, 1, 1, 1], 1) }))).toEqual({
        code: "FJ_AGG_WEIGHT",
        message: `update of a: weight ${samples}, expected a finite value > 0`,
      });
    }
    const m = bySamples();
    expect(refusal(() => m.add({ site: "a", samples: 1, tensors: set([1, 1, 1, 1], 1).slice(1) }))).toEqual({
      code: "FJ_AGG_SCHEMA",
      message: "update of a: 1 tensors, expected 2",
    });
    expect(
      refusal(() =>
        m.add({
          site: "a",
          samples: 1,
          tensors: [t("shared/v", [2, 2], [1, 1, 1, 1]), t("shared/b", [1], [1])],
        }),
      ),
    ).toEqual({ code: "FJ_AGG_SCHEMA", message: "update of a: unexpected tensor shared/v" });
    expect(
      refusal(() =>
        m.add({ site: "a", samples: 1, tensors: [t("shared/w", [3], [1, 1, 1]), t("shared/b", [1], [1])] }),
      ),
    ).toEqual({ code: "FJ_AGG_SCHEMA", message: "update of a: unexpected tensor shared/w" });
    // a refused update leaves nothing behind
    expect(m.sites).toEqual([]);
    expect(m.totalSamples).toBe(0);
    expect(refusal(() => m.result())).toEqual({ code: "FJ_AGG_EMPTY", message: "no update to aggregate" });
    m.add({ site: "b", samples: 2, tensors: set([2, 2, 2, 2], 2) });
    expect(Array.from(m.result()[0]?.data ?? [])).toEqual([2, 2, 2, 2]);
  });

  it("restores from its snapshot the same sums, weight, samples and sites", () => {
    const m = bySamples();
    m.add({ site: "a", samples: 1, tensors: set([1, 2, 3, 4], 10) });
    m.add({ site: "b", samples: 3, tensors: set([5, 6, 7, 8], -2) });
    const buf = Buffer.concat(m.snapshot());
    const r = WeightedMean.restore(schema, WeightedMean.weightOf("samples"), buf);
    expect(r.sites).toEqual(["a", "b"]);
    expect(r.totalSamples).toBe(4);
    expect(r.result()).toEqual(m.result());
    r.add({ site: "c", samples: 4, tensors: set([0, 0, 0, 0], 0) });
    expect(Array.from(r.result()[0]?.data ?? [])).toEqual([2, 2.5, 3, 3.5]);
    // the original is untouched by the restored copy
    expect(m.sites).toEqual(["a", "b"]);
  });

  it("refuses a snapshot of another schema or format, naming its size", () => {
    const m = bySamples();
    m.add({ site: "a", samples: 1, tensors: set([1, 2, 3, 4], 10) });
    const buf = Buffer.concat(m.snapshot());
    const n = buf.readUInt32LE(0);
    const expected = 4 + n + 5 * 8;
    expect(buf.length).toBe(expected);
    const other: TensorSchema = { tensors: [{ name: "shared/w", shape: [2, 2] }] };
    expect(refusal(() => WeightedMean.restore(other, WeightedMean.weightOf("samples"), buf))).toEqual({
      code: "FJ_AGG_SNAPSHOT",
      message: `aggregator snapshot: ${expected} bytes, expected ${4 + n + 4 * 8} for this schema`,
    });
    expect(
      refusal(() =>
        WeightedMean.restore(schema, WeightedMean.weightOf("samples"), buf.subarray(0, buf.length - 1)),
      ),
    ).toEqual({
      code: "FJ_AGG_SNAPSHOT",
      message: `aggregator snapshot: ${expected - 1} bytes, expected ${expected} for this schema`,
    });
    const foreign = Buffer.from(buf);
    foreign.write("XXACC1", buf.indexOf("FJACC1"), "utf8");
    expect(refusal(() => WeightedMean.restore(schema, WeightedMean.weightOf("samples"), foreign))).toEqual({
      code: "FJ_AGG_SNAPSHOT",
      message: "aggregator snapshot: format 'XXACC1', expected FJACC1",
    });
    for (const garbage of [Buffer.alloc(0), Buffer.from([3, 0, 0, 0, 0x7b, 0x7b, 0x7b])])
      expect(refusal(() => WeightedMean.restore(schema, WeightedMean.weightOf("samples"), garbage))).toEqual({
        code: "FJ_AGG_SNAPSHOT",
        message: "aggregator snapshot: unreadable header",
      });
  });
});
