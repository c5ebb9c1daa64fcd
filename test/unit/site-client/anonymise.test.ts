import { describe, expect, it } from "vitest";
import type { EmbeddingBank } from "../../../src/model/api.js";
import { mulberry32 } from "../../../src/random.js";
import { anonymiseEmbeddings, bankFromTensors } from "../../../src/site-client/anonymise.js";

function unitBank(count: number, dims: number[]): EmbeddingBank {
  const rand = mulberry32(7);
  return {
    scales: dims.map((dim, scale) => {
      const vectors = new Float32Array(count * dim);
      for (let i = 0; i < count; i++) {
        let sq = 0;
        for (let k = 0; k < dim; k++) {
          const v = rand() - 0.5;
          vectors[i * dim + k] = v;
          sq += v * v;
        }
        for (let k = 0; k < dim; k++) vectors[i * dim + k] /= Math.sqrt(sq);
      }
      return { scale, dim, vectors, count, domains: new Int32Array(count).fill(1) };
    }),
  };
}

const norms = (data: Float32Array, dim: number) =>
  Array.from({ length: data.length / dim }, (_, i) => Math.hypot(...data.subarray(i * dim, (i + 1) * dim)));

describe("embedding anonymisation", () => {
  it("uploads unit vectors per scale, shuffled, named embedding/scale<s>, nothing else", () => {
    const bank = unitBank(12, [4, 8]);
    const out = anonymiseEmbeddings(bank, { mix: 1, noise: 0, random: mulberry32(1) });
    expect(out.map((t) => t.name)).toEqual(["embedding/scale0", "embedding/scale1"]);
    expect(out.map((t) => t.shape)).toEqual([
      [12, 4],
      [12, 8],
    ]);
    for (const n of norms(out[0].data, 4)) expect(n).toBeCloseTo(1, 5);
    // the same multiset of vectors, in another order (no index survives)
    const key = (d: Float32Array, dim: number) =>
      Array.from({ length: d.length / dim }, (_, i) =>
        Array.from(d.subarray(i * dim, (i + 1) * dim), (v) => v.toFixed(5)).join(","),
      );
    expect(key(out[0].data, 4).sort()).toEqual(key(bank.scales[0].vectors, 4).sort());
    expect(key(out[0].data, 4)).not.toEqual(key(bank.scales[0].vectors, 4));
    // rows stay aligned across scales: row r of every scale comes from the same slice
    const src0 = key(bank.scales[0].vectors, 4);
    const src1 = key(bank.scales[1].vectors, 8);
    const o0 = key(out[0].data, 4);
    const o1 = key(out[1].data, 8);
    for (let r = 0; r < 12; r++) expect(src0.indexOf(o0[r])).toBe(src1.indexOf(o1[r]));
  });

  it("prototype mixing and noise still give unit vectors that differ from every original", () => {
    const bank = unitBank(10, [6]);
    const out = anonymiseEmbeddings(bank, { mix: 3, noise: 0.2, random: mulberry32(3) })[0];
    for (const n of norms(out.data, 6)) expect(n).toBeCloseTo(1, 5);
    for (let r = 0; r < 10; r++) {
      for (let i = 0; i < 10; i++) {
        const d = Math.hypot(
          ...Array.from({ length: 6 }, (_, k) => out.data[r * 6 + k] - bank.scales[0].vectors[i * 6 + k]),
        );
        expect(d).toBeGreaterThan(1e-3);
      }
    }
  });

  it("prototype mixing: each vector is the normalised sum of `mix` source rows, drawn with replacement", () => {
    // the sources are the basis vectors e_0 … e_5: a mixed row is (c_0 … c_5)/‖c‖ with c_k the
    // times e_k was drawn, Σc_k = mix
    const dim = 6;
    const basis = {
      scales: [
        {
          scale: 0,
          dim,
          count: dim,
          vectors: Float32Array.from({ length: dim * dim }, (_, i) => (i % (dim + 1) === 0 ? 1 : 0)),
          domains: new Int32Array(dim),
        },
      ],
    };
    for (const mix of [2, 3, 5]) {
      const out = anonymiseEmbeddings(basis, { mix, noise: 0, random: mulberry32(mix) })[0];
      let multi = 0;
      for (let r = 0; r < dim; r++) {
        const v = Array.from(out.data.subarray(r * dim, (r + 1) * dim));
        const total = v.reduce((a, b) => a + b, 0);
        const counts = v.map((x) => (mix * x) / total);
        for (const c of counts) expect(c).toBeCloseTo(Math.round(c), 4);
        expect(counts.reduce((a, b) => a + b, 0)).toBeCloseTo(mix, 4);
        expect(Math.hypot(...v)).toBeCloseTo(1, 5);
        if (counts.filter((c) => Math.round(c) > 0).length > 1) multi++;
      }
      expect(multi, `mix ${mix}: rows mixing several sources`).toBeGreaterThan(0);
    }
  });

  it("noise moves each unit vector by about σ and keeps it a unit vector; zero vectors stay zero", () => {
    const bank = unitBank(50, [64]);
    const src = bank.scales[0].vectors;
    const out = anonymiseEmbeddings(bank, { mix: 1, noise: 0.05, random: mulberry32(5) })[0];
    // each output row is its source plus noise: the nearest source is ≈ σ√dim away before renormalising
    for (let r = 0; r < 50; r++) {
      const row = out.data.subarray(r * 64, (r + 1) * 64);
      expect(Math.hypot(...row)).toBeCloseTo(1, 5);
      const nearest = Math.min(
        ...Array.from({ length: 50 }, (_, i) =>
          Math.hypot(...Array.from(row, (v, k) => v - (src[i * 64 + k] as number))),
        ),
      );
      expect(nearest).toBeGreaterThan(0.2);
      expect(nearest).toBeLessThan(0.6);
    }
    const zero = {
      scales: [{ scale: 0, dim: 3, count: 2, vectors: new Float32Array(6), domains: new Int32Array(2) }],
    };
    expect(
      Array.from(anonymiseEmbeddings(zero, { mix: 1, noise: 0, random: mulberry32(1) })[0].data),
    ).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it("refuses a mixing that is not an integer ≥ 1 and a noise that is not ≥ 0", () => {
    const bank = unitBank(4, [3]);
    const run = (mix: number, noise: number) => () =>
      anonymiseEmbeddings(bank, { mix, noise, random: mulberry32(1) });
    expect(run(0, 0)).toThrow("mix 0, expected an integer ≥ 1");
    expect(run(1.5, 0)).toThrow("mix 1.5, expected an integer ≥ 1");
    expect(run(1, -0.1)).toThrow("noise -0.1, expected ≥ 0");
    expect(run(1, Number.NaN)).toThrow("noise NaN, expected ≥ 0");
    expect(run(1, 0)).not.toThrow();
    expect(anonymiseEmbeddings({ scales: [] }, { mix: 1, noise: 0, random: mulberry32(1) })).toEqual([]);
  });

  it("turns a received bank into negatives without any domain label", () => {
    const bank = bankFromTensors([
      { name: "embedding/scale2", shape: [3, 2], data: new Float32Array([1, 0, 0, 1, 1, 0]) },
    ]);
    expect(bank?.scales[0].scale).toBe(2);
    expect(Array.from(bank!.scales[0].domains)).toEqual([-1, -1, -1]);
    expect(bankFromTensors([])).toBeUndefined();
    // anything but embedding/scale<s> [count, dim] with rows is ignored
    const kept = bankFromTensors([
      { name: "embedding/scale1", shape: [2, 2], data: new Float32Array([1, 0, 0, 1]) },
      { name: "embedding/scale1x", shape: [1, 2], data: new Float32Array([1, 0]) },
      { name: "shared/w", shape: [1, 2], data: new Float32Array([1, 0]) },
      { name: "embedding/scale3", shape: [4], data: new Float32Array(4) },
      { name: "embedding/scale4", shape: [0, 2], data: new Float32Array(0) },
    ]);
    expect(kept?.scales.map((x) => [x.scale, x.count, x.dim])).toEqual([[1, 2, 2]]);
    expect(
      bankFromTensors([{ name: "embedding/scale4", shape: [0, 2], data: new Float32Array(0) }]),
    ).toBeUndefined();
  });
});
