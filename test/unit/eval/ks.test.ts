import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kolmogorovSf, ks2samp } from "../../../src/eval/ks.js";
import { FIXTURES } from "./fixtures.js";

interface KsCase {
  name: string;
  statistic: number;
  pvalue: number;
}
interface KsFixtures {
  literal: (KsCase & { a: number[]; b: number[] })[];
  generated: (KsCase & {
    a: [number, number, number, number];
    b: [number, number, number, number];
    method: "exact" | "asymp";
  })[];
  kstwo: { n: number; x: number; sf: number }[];
}
const fx = JSON.parse(readFileSync(join(FIXTURES, "ks_cases.json"), "utf8")) as KsFixtures;

/** Same as make_fixtures.py `golden(n, a, b) ** power`. */
function golden([n, a, b, power]: [number, number, number, number]): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = ((i * a + b) % 1) ** power;
  return out;
}

function expectP(actual: number, expected: number) {
  if (expected === 0) expect(actual).toBe(0);
  else expect(Math.abs(actual - expected) / expected).toBeLessThan(1e-6);
}

describe("ks2samp agrees with scipy.stats.ks_2samp(method='auto')", () => {
  for (const c of fx.literal) {
    it(`${c.name} (n=${c.a.length},${c.b.length})`, () => {
      const r = ks2samp(c.a, c.b);
      expect(r.statistic).toBeCloseTo(c.statistic, 12);
      expectP(r.pValue, c.pvalue);
      expect(r.method).toBe("exact");
    });
  }
  for (const c of fx.generated) {
    it(`${c.name} (${c.method}, n=${c.a[0]},${c.b[0]})`, () => {
      const r = ks2samp(golden(c.a), golden(c.b));
      expect(r.method).toBe(c.method);
      expect(r.statistic).toBeCloseTo(c.statistic, 12);
      expectP(r.pValue, c.pvalue);
    });
  }
  it("is symmetric in its arguments and rejects empty samples", () => {
    const c = fx.literal[0];
    expect(ks2samp(c.b, c.a).pValue).toBeCloseTo(ks2samp(c.a, c.b).pValue, 14);
    expect(() => ks2samp([], [1])).toThrow(/non-empty/);
  });
});

describe("kolmogorovSf agrees with scipy.stats.kstwo.sf", () => {
  it(`on ${fx.kstwo.length} (n, x) points covering every branch`, () => {
    for (const { n, x, sf } of fx.kstwo) {
      const got = kolmogorovSf(n, x);
      if (sf < 1e-300) expect(got).toBeLessThan(1e-290);
      else expect(Math.abs(got - sf) / sf, `n=${n} x=${x} got ${got} want ${sf}`).toBeLessThan(1e-6);
    }
  });
});
