import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { evaluateExam } from "../../../src/eval/exam.js";
import { readMetricsFile, writeReport } from "../../../src/eval/report.js";
import { stackProbabilities } from "../../../src/eval/stack.js";
import type { MethodResults, SiteFoldResult, StudyResults } from "../../../src/eval/types.js";
import { hashSeed, mulberry32 } from "../../../src/random.js";
import { planFolds } from "../../../src/study/folds.js";
import type { Dims3, Spacing3 } from "../../../src/volume/grid.js";

/**
 * A 3-site leave-one-out evaluation at the eval layer, at tiny sizes: phantom label volumes per
 * site, a fold plan, per-slice "network outputs" at training size (the ground truth degraded by a
 * method-dependent amount), stacking back to the grid, post-processing, metrics, report.
 */
const SITES: { site: string; joint: string; labels: Record<string, number>; nExams: number }[] = [
  { site: "hospital-ankle", joint: "ankle", labels: { calcaneus: 1, talus: 2, tibia: 3 }, nExams: 4 },
  { site: "hospital-knee", joint: "knee", labels: { femur: 1, fibula: 2, patella: 3, tibia: 4 }, nExams: 3 },
  { site: "hospital-shoulder", joint: "shoulder", labels: { humerus: 1, scapula: 2 }, nExams: 5 },
];
const DIMS: Dims3 = [36, 32, 10];
const SPACING: Spacing3 = [0.5, 0.5, 3];
const TRAIN = 16;

function phantom(site: string, exam: number, nLabels: number): Uint8Array {
  const rand = mulberry32(hashSeed(site, exam));
  const [X, Y, Z] = DIMS;
  const out = new Uint8Array(X * Y * Z);
  for (let l = 1; l <= nLabels; l++) {
    const cx = ((l - 0.5) / nLabels) * X;
    const cy = Y / 2 + (rand() - 0.5) * 6;
    const cz = Z / 2;
    const rx = X / (2.6 * nLabels) + rand();
    const ry = 7 + rand() * 3;
    const rz = 3 + rand();
    for (let z = 0; z < Z; z++)
      for (let y = 0; y < Y; y++)
        for (let x = 0; x < X; x++)
          if (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 <= 1)
            out[x + X * (y + Y * z)] = l;
  }
  return out;
}

/** Network-like output at training size: one-hot of the ground truth + noise of amplitude `noise`. */
function fakeSlices(gt: Uint8Array, nClasses: number, noise: number, seed: number): Float32Array[] {
  const rand = mulberry32(seed);
  const [X, Y, Z] = DIMS;
  const out: Float32Array[] = [];
  for (let z = 0; z < Z; z++) {
    const s = new Float32Array(TRAIN * TRAIN * nClasses);
    for (let r = 0; r < TRAIN; r++)
      for (let c = 0; c < TRAIN; c++) {
        const x = Math.floor(((c + 0.5) * X) / TRAIN);
        const y = Math.floor(((r + 0.5) * Y) / TRAIN);
        const l = gt[x + X * (y + Y * z)];
        for (let k = 0; k < nClasses; k++)
          s[(r * TRAIN + c) * nClasses + k] = (k === l ? 1 : 0) + noise * rand();
      }
    out.push(s);
  }
  return out;
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("3-site leave-one-out evaluation and report", () => {
  it("produces report.md, metrics.csv, metrics.json with one row per site per metric and a KS table", async () => {
    const plan = planFolds({
      sites: SITES.map((s) => ({ site: s.site, nExams: s.nExams })),
      seed: "loo-test",
    });
    expect(plan.nFolds).toBe(3);
    const methods: MethodResults[] = [
      { method: "individual", noise: 0.9 },
      { method: "dsl+msc+mjap", noise: 0.5 },
    ].map(({ method, noise }) => ({
      method,
      backbone: "att-unet",
      folds: plan.folds.map((fold) => ({
        fold: fold.index,
        sites: SITES.map((s, k): SiteFoldResult => {
          const test = fold.sites[s.site].test;
          const nLabels = Object.keys(s.labels).length;
          const gt = phantom(s.site, test, nLabels);
          const slices = fakeSlices(gt, nLabels + 1, noise, hashSeed(method, fold.index, s.site));
          const pred = stackProbabilities(slices, nLabels + 1, { dims: DIMS, trainSize: [TRAIN, TRAIN] });
          const exam = evaluateExam(pred, gt, DIMS, SPACING, s.labels);
          const rand = mulberry32(hashSeed("emb", method, fold.index, k));
          const vec = (d: number) => Array.from({ length: d }, (_, i) => (i === k ? 3 : 0) + rand());
          return {
            site: s.site,
            joint: s.joint,
            exams: [exam],
            embeddings: { s1: [vec(8), vec(8), vec(8)], s5: [vec(16), vec(16)], s9: [vec(8), vec(8)] },
          };
        }),
      })),
    }));
    const study: StudyResults = {
      schema: "fedjoint.study-results/1",
      study: "loo-phantoms",
      createdAt: new Date().toISOString(),
      foldPlan: { seed: plan.seed, nFolds: plan.nFolds, permutations: plan.permutations },
      methods,
    };
    const dir = await mkdtemp(join(tmpdir(), "fj-loo-"));
    dirs.push(dir);
    const written = await writeReport(dir, study);

    const csv = (await readFile(join(dir, "metrics.csv"), "utf8")).trim().split("\n").slice(1);
    const meanRows = csv.map((l) => l.split(",")).filter((f) => f[4] === "mean");
    for (const m of ["individual", "dsl+msc+mjap"])
      for (const s of SITES)
        for (const metric of ["dice", "sensitivity", "specificity", "mssd", "assd", "ravd"]) {
          const rows = meanRows.filter((f) => f[1] === m && f[2] === s.site && f[5] === metric);
          expect(rows.length, `${m} ${s.site} ${metric}`).toBe(1);
          expect(rows[0][10]).toBe("3"); // n = 3 folds
        }
    // the less noisy method is better on Dice at every site
    const dice = (m: string, site: string) =>
      written.summary.rows3d.find(
        (r) => r.method === m && r.site === site && r.label === "mean" && r.metric === "dice",
      )!.mean!;
    for (const s of SITES) expect(dice("dsl+msc+mjap", s.site)).toBeGreaterThan(dice("individual", s.site));

    const md = await readFile(join(dir, "report.md"), "utf8");
    expect(md).toMatch(/\| individual \| [\d.]+ \(\+[\d.]+ \/ −[\d.]+\) \| [\d.e+-]+ \|/);
    const ks = written.summary.ks.filter((k) => k.scope === "all");
    expect(ks.map((k) => k.metric).sort()).toEqual(["dice", "sensitivity", "specificity"]);
    for (const k of ks) expect(k.pValue).toBeGreaterThanOrEqual(0);
    expect(md).toContain("s9: shoulder");
    const back = await readMetricsFile(join(dir, "metrics.json"));
    expect(back.results.foldPlan?.permutations["hospital-knee"].length).toBe(3);
    // intra-domain similarity above inter-domain (embeddings built that way)
    const cos = written.summary.cosine.filter((c) => c.method === "individual" && c.scale === "s1");
    const intra = cos.find((c) => c.domainA === "knee" && c.domainB === "knee")!.mean;
    const inter = cos.find((c) => c.domainA === "knee" && c.domainB === "ankle")!.mean;
    expect(intra).toBeGreaterThan(inter);
  });
});
