import { describe, expect, it } from "vitest";
import { embeddingView, principalAxes } from "../../../src/dashboard/embeddings.js";
import { FedjointError } from "../../../src/errors.js";
import { cosineTable } from "../../../src/eval/cosine.js";

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

describe("embedding views", () => {
  it("principal axes are the covariance eigenvectors (A v = λ v, orthonormal, λ1 ≥ λ2)", () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648 - 0.5;
    };
    const d = 6;
    const scales = [5, 3, 1, 0.5, 0.2, 0.1];
    const raw = Array.from({ length: 80 }, () => Float64Array.from(scales, (s) => s * rand()));
    const mean = new Float64Array(d);
    for (const r of raw)
      for (let i = 0; i < d; i++) mean[i] = (mean[i] as number) + (r[i] as number) / raw.length;
    const rows = raw.map((r) => r.map((x, i) => x - (mean[i] as number)));
    const { axes, variances } = principalAxes(rows, 2, 2000);
    const cov = Array.from({ length: d }, (_, i) =>
      Array.from(
        { length: d },
        (_, j) => rows.reduce((s, r) => s + (r[i] as number) * (r[j] as number), 0) / (rows.length - 1),
      ),
    );
    for (const [k, v] of axes.entries()) {
      const av = cov.map((row) => dot(row, v));
      const lambda = variances[k] as number;
      for (let i = 0; i < d; i++) expect(av[i]).toBeCloseTo(lambda * (v[i] as number), 6);
      expect(dot(v, v)).toBeCloseTo(1, 10);
    }
    expect(dot(axes[0] as Float64Array, axes[1] as Float64Array)).toBeCloseTo(0, 8);
    expect(variances[0]).toBeGreaterThan(variances[1] as number);
    // The dominant axis of this data is the first coordinate.
    expect(Math.abs((axes[0] as Float64Array)[0] as number)).toBeGreaterThan(0.95);
  });

  it("cosine matrix: intra-site over distinct pairs, inter-site over all pairs, vectors normalised", () => {
    const view = embeddingView(
      {
        fold: 0,
        phase: "seg",
        round: 3,
        scales: [
          {
            scale: 5,
            sites: {
              b: [[2, 0]],
              a: [
                [3, 0],
                [0, 0.5],
              ],
            },
          },
        ],
      },
      [5],
    );
    expect(view.available).toBe(true);
    const c = view.cosine[0];
    expect(c?.sites).toEqual(["a", "b"]);
    expect(c?.matrix[0]?.[0]).toBeCloseTo(0, 12);
    expect(c?.matrix[0]?.[1]).toBeCloseTo(0.5, 12);
    expect(c?.matrix[1]?.[0]).toBeCloseTo(0.5, 12);
    expect(Number.isNaN(c?.matrix[1]?.[1])).toBe(true);
    expect(view.scatter[0]?.points).toHaveLength(3);
    expect(view.scatter[0]?.explained[0]).toBeGreaterThan(0.5);
  });

  it("projects only the requested scales, separates distinct site clusters, and names bad vectors", () => {
    const site = (dir: number[], n: number) =>
      Array.from({ length: n }, (_, i) => dir.map((x, j) => x + 0.01 * Math.sin(i * 7 + j)));
    const scales = [1, 2, 5, 9].map((scale) => ({
      scale,
      sites: {
        ankle: site([1, 0, 0, 0], 10),
        knee: site([0, 1, 0, 0], 10),
        shoulder: site([0, 0, 1, 0], 10),
      },
    }));
    const view = embeddingView({ fold: 1, phase: "ae", round: 0, scales }, [1, 5, 9]);
    expect(view.scatter.map((s) => s.scale)).toEqual([1, 5, 9]);
    expect(view.cosine.map((s) => s.scale)).toEqual([1, 2, 5, 9]);
    const pts = view.scatter[0]?.points ?? [];
    const centroid = (name: string) => {
      const p = pts.filter((q) => q.site === name);
      return [p.reduce((s, q) => s + q.x, 0) / p.length, p.reduce((s, q) => s + q.y, 0) / p.length];
    };
    const [a, k] = [centroid("ankle"), centroid("knee")];
    expect(
      Math.hypot((a[0] as number) - (k[0] as number), (a[1] as number) - (k[1] as number)),
    ).toBeGreaterThan(0.5);
    expect(view.cosine[0]?.matrix[0]?.[0]).toBeGreaterThan(0.99);
    expect(Math.abs(view.cosine[0]?.matrix[0]?.[1] as number)).toBeLessThan(0.05);
    // the matrix is the reports' cosine table (src/eval/cosine.ts), sites as domains
    const cells = cosineTable(new Map(Object.entries(scales[0].sites).map(([site, v]) => [site, { s1: v }])));
    const c = view.cosine[0]!;
    for (const cell of cells) {
      const i = c.sites.indexOf(cell.domainA);
      const j = c.sites.indexOf(cell.domainB);
      expect(c.matrix[i]?.[j]).toBeCloseTo(cell.mean, 12);
    }
    expect(cells).toHaveLength(9);

    const bad = () =>
      embeddingView(
        { fold: 0, phase: "seg", round: 0, scales: [{ scale: 1, sites: { a: [[1, 0]], b: [[1, 0, 0]] } }] },
        [1],
      );
    expect(bad).toThrow(FedjointError);
    expect(bad).toThrow(/scale 1 site b vector 0: vector of length 3, expected 2/);
    expect(() =>
      embeddingView(
        { fold: 0, phase: "seg", round: 0, scales: [{ scale: 1, sites: { a: [[1, Number.NaN]] } }] },
        [1],
      ),
    ).toThrow(/non-finite value at index 1/);
  });
});

describe("page assets", () => {
  it("the browser script parses and the page references only same-origin assets", async () => {
    const { APP_JS } = await import("../../../src/dashboard/ui/client.js");
    const { INDEX_HTML } = await import("../../../src/dashboard/ui/page.js");
    expect(() => new Function(APP_JS)).not.toThrow();
    const refs = [...INDEX_HTML.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(refs).toEqual(["app.css", "vendor/chart.umd.min.js", "app.js"]);
  });
});

describe("coordinator bank → snapshot", () => {
  it("maps embedding/scale<s> (0-based) to 1-based scales, splits rows per site, and picks first/middle/last for the scatter", async () => {
    const { defaultScatterScales, snapshotFromBank } = await import("../../../src/dashboard/embeddings.js");
    const t = (s: number, rows: number[][]) => ({
      name: `embedding/scale${s}`,
      shape: [rows.length, 2],
      data: Float32Array.from(rows.flat()),
    });
    const bank = new Map([
      [
        "knee",
        [
          t(0, [
            [1, 0],
            [0, 1],
          ]),
          t(1, [[0.6, 0.8]]),
          t(2, [[1, 0]]),
          { name: "other", shape: [1], data: [1] },
        ],
      ],
      ["ankle", [t(0, [[0, 1]]), t(1, [[0.8, 0.6]]), t(2, [[0, 1]])]],
    ]);
    const snap = snapshotFromBank({ fold: 1, phase: "seg", round: 4 }, bank);
    expect(snap.scales.map((s) => s.scale)).toEqual([1, 2, 3]);
    expect(snap.scales[0]?.sites).toEqual({
      knee: [
        [1, 0],
        [0, 1],
      ],
      ankle: [[0, 1]],
    });
    expect(embeddingView(snap).scatter.map((s) => s.scale)).toEqual([1, 2, 3]);
    expect(defaultScatterScales([1, 2, 3, 4, 5, 6, 7, 8, 9])).toEqual([1, 5, 9]);
    expect(defaultScatterScales([1])).toEqual([1]);
    expect(() =>
      snapshotFromBank(
        { fold: 0, phase: "seg", round: 0 },
        { a: [{ name: "embedding/scale0", shape: [2, 2], data: [1, 0, 0] }] },
      ),
    ).toThrow(/bank of a: embedding\/scale0 has shape \[2,2\] and 3 values/);
  });
});
