import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ks2samp } from "../../../src/eval/ks.js";
import { mergeMetrics, readMetricsFile, summarise, writeReport } from "../../../src/eval/report.js";
import type { ExamResult, LabelMetrics, MethodResults, StudyResults } from "../../../src/eval/types.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function lm(dice: number, ravd: number | null = 5): LabelMetrics {
  return {
    dice,
    sensitivity: dice,
    specificity: 0.999,
    mssd: 10 * (1 - dice),
    assd: 1 - dice,
    ravd,
    predVoxels: 100,
    gtVoxels: 100,
    status: "ok",
  };
}

const SITES = [
  { site: "site-a", joint: "ankle", bones: ["calcaneus", "talus", "tibia"] },
  { site: "site-k", joint: "knee", bones: ["femur", "fibula", "patella", "tibia"] },
  { site: "site-s", joint: "shoulder", bones: ["humerus", "scapula"] },
];

function method(name: string, quality: number, embeddings: boolean): MethodResults {
  return {
    method: name,
    backbone: "att-unet",
    folds: [0, 1, 2].map((fold) => ({
      fold,
      sites: SITES.map(({ site, joint, bones }, k) => {
        const exam: ExamResult = {
          exam: 0,
          labels: Object.fromEntries(
            bones.map((b, j) => [b, lm(quality - 0.01 * fold - 0.005 * j, j === 0 && fold === 2 ? null : 5)]),
          ),
          slices: {
            axis: 2,
            dice: Array.from({ length: 12 }, (_, i) => Math.min(1, quality - 0.02 * ((i * 7 + k) % 5))),
            sensitivity: Array.from({ length: 12 }, (_, i) =>
              Math.min(1, quality - 0.01 * ((i * 3 + fold) % 4)),
            ),
            specificity: Array.from({ length: 12 }, () => 0.999),
          },
        };
        return {
          site,
          joint,
          exams: [exam],
          ...(embeddings
            ? {
                embeddings: {
                  s1: [
                    [1, k, 0],
                    [1, k + 0.1, 0.1],
                  ],
                  s5: [[k === 0 ? 1 : 0, k === 1 ? 1 : 0, k === 2 ? 1 : 0]],
                },
              }
            : {}),
        };
      }),
    })),
  };
}

const study: StudyResults = {
  schema: "fedjoint.study-results/1",
  study: "phantom-loo",
  foldPlan: {
    seed: "7",
    nFolds: 3,
    permutations: { "site-a": [2, 0, 1], "site-k": [1, 2, 0], "site-s": [0, 2, 1] },
  },
  methods: [method("dsl", 0.85, true), method("dsl+msc+mjap", 0.9, true)],
};

describe("summarise", () => {
  const s = summarise(study);
  it("has one 'mean' row per method × site × metric, mean ± std over folds of the per-exam bone mean", () => {
    const means = s.rows3d.filter((r) => r.label === "mean");
    expect(means.length).toBe(2 * 3 * 6);
    const r = means.find((x) => x.method === "dsl" && x.site === "site-s" && x.metric === "dice")!;
    // per-exam means: 0.85-0.0025, 0.84-0.0025, 0.83-0.0025 -> mean 0.8375, std sqrt(2/3)*0.01
    expect(r.mean).toBeCloseTo(0.8375, 12);
    expect(r.std).toBeCloseTo(Math.sqrt(2 / 3) * 0.01, 12);
    expect(r.n).toBe(3);
    const ravd = s.rows3d.find(
      (x) => x.method === "dsl" && x.site === "site-a" && x.label === "calcaneus" && x.metric === "ravd",
    )!;
    expect(ravd).toMatchObject({ n: 2, excluded: 1 });
  });
  it("KS p-values against the reference (last method) on pooled slices", () => {
    expect(s.reference).toBe("dsl+msc+mjap");
    const row = s.ks.find((k) => k.scope === "all" && k.metric === "dice" && k.method === "dsl")!;
    const pool = (m: number) =>
      study.methods[m].folds.flatMap((f) => f.sites.flatMap((x) => x.exams[0].slices.dice));
    expect(row.pValue).toBe(ks2samp(pool(1), pool(0)).pValue);
    expect(row.n1).toBe(3 * 3 * 12);
  });
  it("cosine table per method and scale, intra and inter domain", () => {
    const c = s.cosine.filter((x) => x.method === "dsl" && x.scale === "s5");
    expect(c.length).toBe(6); // 3 inter-domain pairs, both orders
    expect(c.find((x) => x.domainA === "ankle" && x.domainB === "knee")!.mean).toBe(0);
    // intra at s5: one vector per fold per domain, pairs only within a fold -> none
    expect(c.find((x) => x.domainA === "ankle" && x.domainB === "ankle")).toBeUndefined();
  });
  it("rejects an unknown reference", () => {
    expect(() => summarise(study, { reference: "nope" })).toThrow(/reference method 'nope'/);
  });
});

describe("writeReport / readMetricsFile / mergeMetrics", () => {
  it("writes report.md, metrics.csv and metrics.json and reads them back", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fj-report-"));
    dirs.push(dir);
    const out = await writeReport(join(dir, "study"), study, { now: new Date("2026-01-01T00:00:00Z") });
    expect(out.files.map((f) => basename(f))).toEqual(["report.md", "metrics.csv", "metrics.json"]);
    const md = await readFile(join(dir, "study", "report.md"), "utf8");
    if (process.env.FJ_PRINT_REPORT) console.log(md);
    expect(md).toContain("## 3D metrics (Tables 2–3)");
    expect(md).toContain("| dsl | 83.5 ± 0.8 | 83.5 ± 0.8 | 99.9 ± 0.0 |");
    expect(md).toContain("Kolmogorov–Smirnov");
    expect(md).toContain("| dsl | 81.0 (+4.0 / −4.0) | 3.9e-19 |");
    expect(md).not.toContain("−-");
    expect(md).toContain("## Cosine similarity of embeddings (Table 5)");
    const csv = (await readFile(join(dir, "study", "metrics.csv"), "utf8")).trim().split("\n");
    expect(csv[0]).toBe("study,method,site,joint,label,metric,unit,better,mean,std,n,excluded");
    expect(csv.slice(1).filter((l) => l.split(",")[4] === "mean").length).toBe(36); // 2 methods × 3 sites × 6 metrics
    const loaded = await readMetricsFile(join(dir, "study", "metrics.json"));
    expect(loaded.results.methods[0].folds[0].sites[0].embeddings).toBeUndefined();
    expect(loaded.cosine.length).toBe(out.summary.cosine.length);

    // merge two single-method runs with the same method name -> prefixed
    const one: StudyResults = { ...study, study: "run-b", methods: [study.methods[0]] };
    await writeReport(join(dir, "b"), one);
    const merged = mergeMetrics("comparison", [
      loaded,
      await readMetricsFile(join(dir, "b", "metrics.json")),
    ]);
    expect(merged.results.methods.map((m) => m.method)).toEqual([
      "phantom-loo/dsl",
      "dsl+msc+mjap",
      "run-b/dsl",
    ]);
    expect(merged.cosine.some((c) => c.method === "run-b/dsl")).toBe(true);
  });

  it("says which ASSD the results hold, and refuses to merge pooled with directed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fj-report-"));
    dirs.push(dir);
    const pooled: StudyResults = { ...study, study: "pooled", methods: [study.methods[0]] };
    const directed: StudyResults = {
      ...study,
      study: "directed",
      assdDefinition: "directed",
      methods: [study.methods[1]],
    };
    const a = await writeReport(join(dir, "pooled"), pooled);
    const b = await writeReport(join(dir, "directed"), directed);
    expect(a.summary.assdDefinition).toBe("pooled");
    expect(b.summary.assdDefinition).toBe("directed");
    expect(await readFile(join(dir, "pooled", "report.md"), "utf8")).toContain(
      "ASSD pools the surface distances of both directions (paper eq. S5, MedPy ≥ 0.5 `assd`)",
    );
    expect(await readFile(join(dir, "directed", "report.md"), "utf8")).toContain(
      "ASSD is the mean of the two directed average surface distances (MedPy ≤ 0.4), not the paper's eq. S5.",
    );
    const la = await readMetricsFile(join(dir, "pooled", "metrics.json"));
    const lb = await readMetricsFile(join(dir, "directed", "metrics.json"));
    expect(mergeMetrics("same", [la, { ...la, study: "pooled-2" }]).results.assdDefinition).toBe("pooled");
    expect(() => mergeMetrics("mixed", [la, lb])).toThrow(
      /^the runs to merge compute ASSD differently \(pooled: pooled, directed: directed\)/,
    );
  });

  it("names the file and field of an invalid metrics.json", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fj-report-"));
    dirs.push(dir);
    const p = join(dir, "metrics.json");
    await writeFile(
      p,
      JSON.stringify({
        schema: "fedjoint.metrics/1",
        study: "x",
        generatedAt: "",
        results: {
          schema: "fedjoint.study-results/1",
          study: "x",
          methods: [{ method: "m", folds: [{ fold: -1, sites: [] }] }],
        },
        summary: { cosine: [] },
      }),
    );
    await expect(readMetricsFile(p)).rejects.toThrow(
      /metrics\.json: field results\.methods\.0\.folds\.0\.fold/,
    );
    await expect(readMetricsFile(join(dir, "absent.json"))).rejects.toThrow(/FJ_EVAL|cannot read/);
  });
});
