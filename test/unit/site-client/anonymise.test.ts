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

  it("turns a received bank into negatives without any domain label", () => {
    const bank = bankFromTensors([
      { name: "embedding/scale2", shape: [3, 2], data: new Float32Array([1, 0, 0, 1, 1, 0]) },
    ]);
    expect(bank?.scales[0].scale).toBe(2);
    expect(Array.from(bank!.scales[0].domains)).toEqual([-1, -1, -1]);
    expect(bankFromTensors([])).toBeUndefined();
  });
});
