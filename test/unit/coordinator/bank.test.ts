/**
 * The coordinator's embedding bank (src/coordinator/bank.ts): what a site receives as L_MSC
 * negatives is exactly every OTHER site's vectors of that round — never its own, none lost, rows
 * of all scales kept aligned through the shuffle — and whatever does not have the shape of the
 * network's embeddings or is not a set of finite unit vectors is refused before it is stored.
 */
import { describe, expect, it } from "vitest";
import { checkEmbeddingSpecs, checkEmbeddings, EmbeddingBank } from "../../../src/coordinator/bank.js";
import type { NamedTensor } from "../../../src/model/api.js";

const DIMS = [2, 3];
const ref = { fold: 0, phase: "seg" as const, round: 4 };

/**
 * A site's upload: `rows` unit vectors per scale whose first coordinate encodes (site, row) and
 * whose scale-1 vector repeats the scale-0 code, so alignment across scales can be checked.
 */
function upload(site: number, rows: number): NamedTensor[] {
  return DIMS.map((dim, s) => {
    const data = new Float32Array(rows * dim);
    for (let r = 0; r < rows; r++) {
      const code = (site * 100 + r) / 1000; // < 1
      data[r * dim] = code;
      data[r * dim + 1] = Math.sqrt(1 - code * code);
      // remaining coordinates 0 (unit norm kept)
    }
    return { name: `embedding/scale${s}`, shape: [rows, dim], data };
  });
}
const codesOf = (t: NamedTensor) =>
  Array.from({ length: t.shape[0] }, (_, r) => Math.round(t.data[r * t.shape[1]] * 1000));

describe("EmbeddingBank", () => {
  it("serves each site the other sites' vectors only, all of them, aligned across scales", () => {
    const bank = new EmbeddingBank();
    bank.put(ref, "a", upload(1, 3));
    bank.put(ref, "b", upload(2, 4));
    bank.put(ref, "c", upload(3, 2));
    for (const [site, own] of [
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ] as const) {
      const got = bank.othersOf(site, ref);
      expect(got.map((t) => t.name)).toEqual(["embedding/scale0", "embedding/scale1"]);
      const codes = codesOf(got[0]);
      expect(
        codes.some((c) => Math.floor(c / 100) === own),
        `${site} received its own vectors`,
      ).toBe(false);
      const expected = [1, 2, 3]
        .filter((x) => x !== own)
        .flatMap((x) => Array.from({ length: { 1: 3, 2: 4, 3: 2 }[x]! }, (_, r) => x * 100 + r));
      expect([...codes].sort((x, y) => x - y)).toEqual(expected.sort((x, y) => x - y));
      // one permutation for every scale: row i of scale 1 is the same slice as row i of scale 0
      expect(codesOf(got[1])).toEqual(codes);
      expect(bank.othersCount(ref, site)).toBe(2);
    }
    expect(bank.othersOf("a", { ...ref, round: 3 })).toEqual([]);
    expect(bank.has(ref, "a")).toBe(true);
    expect(bank.has(ref, "d")).toBe(false);
    expect(bank.has({ ...ref, phase: "ae" }, "a")).toBe(false);
    expect([...bank.sitesOf(ref).keys()]).toEqual(["a", "b", "c"]);
    expect(bank.sitesOf({ ...ref, round: 9 }).size).toBe(0);
    // a site alone in its round gets nothing, and counts no others
    const alone = new EmbeddingBank();
    alone.put(ref, "a", upload(1, 3));
    expect(alone.othersOf("a", ref)).toEqual([]);
    expect(alone.othersCount(ref, "a")).toBe(0);
    // retain keeps exactly the rounds it accepts
    bank.put({ ...ref, round: 5 }, "b", upload(2, 1));
    bank.retain((r) => r.round >= 5);
    expect(bank.othersOf("a", ref)).toEqual([]);
    expect(bank.has(ref, "a")).toBe(false);
    expect(codesOf(bank.othersOf("a", { ...ref, round: 5 })[0] as NamedTensor)).toEqual([200]);
  });

  it("orders the rows by the OS's randomness, or by a reproducible seed (simulations) that changes per round", () => {
    const filled = (seed?: number) => {
      const bank = new EmbeddingBank(seed);
      for (const r of [4, 5]) {
        bank.put({ ...ref, round: r }, "a", upload(1, 2));
        bank.put({ ...ref, round: r }, "b", upload(2, 30));
      }
      return bank;
    };
    const order = (bank: EmbeddingBank, round = 4) => codesOf(bank.othersOf("a", { ...ref, round })[0]);
    expect(order(filled(7))).toEqual(order(filled(7)));
    expect(order(filled(7))).not.toEqual(order(filled(8)));
    expect(order(filled(7), 5)).not.toEqual(order(filled(7), 4));
    // unseeded: two banks of the same uploads serve 30 rows in different orders (1 in 30! alike)
    expect(order(filled())).not.toEqual(order(filled()));
  });
});

describe("checkEmbeddings", () => {
  const ok = upload(1, 3);
  const expected = { dims: DIMS, maxRows: 3 };
  it("accepts the network's per-scale unit vectors", () => {
    expect(checkEmbeddings(ok, expected)).toBeUndefined();
    expect(checkEmbeddingSpecs(ok, { ...expected, dtypes: ["float32"] })).toBeUndefined();
  });
  it("refuses every malformed set with a reason", () => {
    const with0 = (f: (t: NamedTensor) => NamedTensor) => [f(ok[0]), ok[1]];
    const cases: [NamedTensor[], RegExp][] = [
      [[ok[0]], /1 embedding tensors, expected one per scale \(2\)/],
      [[ok[0], { ...ok[1], name: "embedding/scale7" }], /expected names embedding\/scale0\.\.1/],
      [[ok[0], { ...ok[1], name: "shared/enc0/conv1/kernel" }], /expected names embedding\/scale0\.\.1/],
      [[ok[0], { ...ok[0] }], /embedding\/scale0 twice/],
      [with0((t) => ({ ...t, shape: [6] })), /shape \[6\], expected \[count, 2\]/],
      [with0((t) => ({ ...t, shape: [2, 3] })), /shape \[2,3\], expected \[count, 2\]/],
      [[upload(1, 2)[0], ok[1]], /3 vectors, other scales have 2/],
      [upload(1, 4), /4 vectors, expected 1\.\.3/],
      [
        with0((t) => ({ ...t, data: t.data.map((v, i) => (i === 3 ? Number.NaN : v)) })),
        /non-finite value in vector 1/,
      ],
      [
        with0((t) => ({ ...t, data: t.data.map((v) => v * 2) })),
        /vector 0 has norm 2\.0000, expected unit vectors/,
      ],
    ];
    for (const [tensors, reason] of cases) expect(checkEmbeddings(tensors, expected)).toMatch(reason);
    // exact reasons at the edges: zero rows, a payload that does not fill the shape, a long name
    expect(checkEmbeddings(upload(1, 0), expected)).toBe("tensor embedding/scale0: 0 vectors, expected 1..3");
    expect(
      checkEmbeddings(
        with0((t) => ({ ...t, data: t.data.subarray(0, 5) })),
        expected,
      ),
    ).toBe("tensor embedding/scale0: 5 values for shape [3,2]");
    expect(
      checkEmbeddings([ok[0], { ...(ok[1] as NamedTensor), name: `x${"y".repeat(100)}` }], expected),
    ).toBe(`tensor x${"y".repeat(63)}: expected names embedding/scale0..1`);
    // the unit-norm tolerance is 1e-2
    const scaled = (f: number) => with0((t) => ({ ...t, data: t.data.map((v) => v * f) }));
    expect(checkEmbeddings(scaled(1.009), expected)).toBeUndefined();
    expect(checkEmbeddings(scaled(0.991), expected)).toBeUndefined();
    expect(checkEmbeddings(scaled(1.011), expected)).toBe(
      "tensor embedding/scale0: vector 0 has norm 1.0110, expected unit vectors",
    );
    expect(checkEmbeddings(scaled(0.989), expected)).toBe(
      "tensor embedding/scale0: vector 0 has norm 0.9890, expected unit vectors",
    );
    // without a dtype rule, any dtype the header names passes the spec check
    expect(
      checkEmbeddingSpecs(
        ok.map((t) => ({ ...t, dtype: "float16" })),
        expected,
      ),
    ).toBeUndefined();
    expect(
      checkEmbeddingSpecs(
        ok.map((t) => ({ ...t, dtype: "float64" })),
        { ...expected, dtypes: ["float32"] },
      ),
    ).toMatch(/dtype float64, expected float32/);
  });
});
