import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { evalMetrics } from "../../../src/cli/commands/eval.js";
import { mergeReports } from "../../../src/cli/commands/report.js";
import { readNifti, writeNifti } from "../../../src/data/nifti.js";
import { synthesizeSubject } from "../../../src/data/phantoms.js";
import { writeReport } from "../../../src/eval/report.js";
import type { StudyResults } from "../../../src/eval/types.js";
import { FIXTURES, loadMetricsCases } from "../../unit/eval/fixtures.js";

const ROOT = join(FIXTURES, "../../..");
const pred = join(FIXTURES, "case_three_bones_aniso_pred.nii.gz");
const gt = join(FIXTURES, "case_three_bones_aniso_gt.nii.gz");
const otherGt = join(FIXTURES, "case_thin_structures_gt.nii.gz");
/** A CT-like image (HU, negative values) on the grid of `gt`, written by nibabel. */
const ct = join(FIXTURES, "case_three_bones_aniso_ct.nii.gz");
const ref = loadMetricsCases().find((c) => c.name === "three_bones_aniso")!;

function cli(args: string[]) {
  return spawnSync(
    process.execPath,
    ["--import", "tsx", join(ROOT, "test/integration/eval/cli-entry.ts"), ...args],
    {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, FEDJOINT_LOG_JSON: "1" },
    },
  );
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("fedjoint eval metrics", () => {
  it("reads NIfTI files and agrees with the scipy reference (raw and post-processed)", async () => {
    const out = await evalMetrics({ pred, gt, connectivity: "26", componentConnectivity: "6" });
    expect(out.labels.map((l) => l.label)).toEqual([1, 2, 3]);
    expect(out.assdDefinition).toBe("pooled");
    for (const l of out.labels) {
      const r = ref.metrics["26"][String(l.label)];
      expect(Math.abs(l.dice - r.dice)).toBeLessThan(1e-6);
      // NIfTI stores spacing as float32: distances agree to float32 precision of the spacing
      expect(Math.abs(l.mssd - r.mssd)).toBeLessThan(1e-3);
      expect(Math.abs(l.assd - r.assd)).toBeLessThan(1e-3);
    }
    const pp = await evalMetrics({
      pred,
      gt,
      connectivity: "26",
      componentConnectivity: "6",
      postprocess: true,
    });
    for (const l of pp.labels) {
      expect(Math.abs(l.dice - ref.postprocessedMetrics[String(l.label)].dice)).toBeLessThan(1e-6);
      expect(Math.abs(l.assd - ref.postprocessedMetrics[String(l.label)].assd)).toBeLessThan(1e-3);
    }
    expect(pp.mean.dice).toBeCloseTo((pp.labels[0].dice + pp.labels[1].dice + pp.labels[2].dice) / 3, 12);
  });

  it("--assd directed gives the mean of directed means, named so in the JSON", () => {
    const r = cli(["eval", "metrics", "--pred", pred, "--gt", gt, "--assd", "directed", "--json"]);
    expect(r.status).toBe(0);
    const o = JSON.parse(r.stdout) as { assdDefinition: string; labels: { label: number; assd: number }[] };
    expect(o.assdDefinition).toBe("directed");
    for (const l of o.labels) {
      expect(Math.abs(l.assd - ref.metrics["26"][String(l.label)].assdDirected)).toBeLessThan(1e-3);
      expect(Math.abs(l.assd - ref.metrics["26"][String(l.label)].assd)).toBeGreaterThan(1e-3);
    }
    const bad = cli(["eval", "metrics", "--pred", pred, "--gt", gt, "--assd", "medpy"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toBe("FJ_CLI_ARG: --assd is 'medpy', expected pooled or directed");
  });

  it("refuses an image passed as --pred: one FJ_ line naming the file, exit 2, nothing on stdout", async () => {
    // a CT (negative HU values) on the ground truth's grid
    const r = cli(["eval", "metrics", "--pred", ct, "--gt", gt, "--json"]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^FJ_EVAL_LABEL_VALUES: ${ct.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: \\d+ of 20160 voxels are not labels \\(voxel \\d+ is -\\d+\\); --pred must be a label map of non-negative integers, not an image`,
      ),
    );
    // a phantom MR image (non-negative integers, thousands of values) with its own label map
    const dir = await mkdtemp(join(tmpdir(), "fj-eval-image-"));
    dirs.push(dir);
    const s = synthesizeSubject({ joint: "knee", size: 32, depth: 12, seed: 5, index: 0 });
    const image = join(dir, "knee_001_0000.nii.gz");
    const label = join(dir, "knee_001.nii.gz");
    await writeNifti(image, s.image);
    await writeNifti(label, s.label);
    const m = cli(["eval", "metrics", "--pred", image, "--gt", label]);
    expect(m.status).toBe(2);
    const err = m.stderr.trim().split("\n");
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(
      /^FJ_EVAL_LABEL_UNKNOWN: .*knee_001_0000\.nii\.gz: holds label \d+, .*… \(\d+ values\), which --gt .*knee_001\.nii\.gz does not \([\d, ]+\); pass --labels/,
    );
    // told which labels to score, the same file is scored (as the nonsense it is)
    const told = cli(["eval", "metrics", "--pred", image, "--gt", label, "--labels", "1,2", "--json"]);
    expect(told.status).toBe(0);
    expect((JSON.parse(told.stdout) as { labelSource: string }).labelSource).toBe("labels");
  });

  it("--dataset widens the label set to dataset.json; a label outside it is still refused", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fj-eval-dataset-"));
    dirs.push(dir);
    // the prediction holds label 4, which this ground truth lacks (it has 1–3)
    const p = await readNifti(pred);
    const extra = Float32Array.from(p.data);
    extra[0] = 4;
    const predExtra = join(dir, "pred4.nii.gz");
    await writeNifti(predExtra, { ...p, data: extra });
    const noDataset = cli(["eval", "metrics", "--pred", predExtra, "--gt", gt]);
    expect(noDataset.status).toBe(2);
    expect(noDataset.stderr).toMatch(/^FJ_EVAL_LABEL_UNKNOWN: .*pred4\.nii\.gz: holds label 4, which --gt /);
    const json = join(dir, "dataset.json");
    const ds = (labels: Record<string, number>) =>
      JSON.stringify({ channel_names: { "0": "MR" }, labels, numTraining: 1, file_ending: ".nii.gz" });
    await writeFile(json, ds({ background: 0, femur: 1, fibula: 2, patella: 3, tibia: 4 }));
    const ok = cli(["eval", "metrics", "--pred", predExtra, "--gt", gt, "--dataset", json, "--json"]);
    expect(ok.status).toBe(0);
    const o = JSON.parse(ok.stdout) as { labelSource: string; labels: { label: number; status: string }[] };
    expect(o.labelSource).toBe("dataset");
    expect(o.labels.map((l) => [l.label, l.status])).toEqual([
      [1, "ok"],
      [2, "ok"],
      [3, "ok"],
      [4, "emptyGt"],
    ]);
    await writeFile(json, ds({ background: 0, femur: 1, fibula: 2, patella: 3 }));
    const narrow = cli(["eval", "metrics", "--pred", predExtra, "--gt", gt, "--dataset", dir]);
    expect(narrow.status).toBe(2);
    expect(narrow.stderr).toMatch(/^FJ_EVAL_LABEL_UNKNOWN: .*holds label 4, which dataset\.json /);
  });

  it("--json prints exactly one JSON line; mismatched grids are one line on stderr with exit 2", () => {
    const ok = cli(["eval", "metrics", "--pred", pred, "--gt", gt, "--labels", "2", "--json"]);
    expect(ok.status).toBe(0);
    const lines = ok.stdout.trim().split("\n");
    expect(lines.length).toBe(1);
    const parsed = JSON.parse(lines[0]) as { labels: { label: number; dice: number }[] };
    expect(parsed.labels.length).toBe(1);
    expect(parsed.labels[0].dice).toBeCloseTo(ref.metrics["26"]["2"].dice, 9);

    const bad = cli(["eval", "metrics", "--pred", pred, "--gt", otherGt]);
    expect(bad.status).toBe(2);
    expect(bad.stdout).toBe("");
    const err = bad.stderr.trim().split("\n");
    expect(err.length).toBe(1);
    expect(err[0]).toMatch(/^FJ_EVAL_GRID_MISMATCH: --pred .*40×36×14 .*30×24×10/);

    const badLabels = cli(["eval", "metrics", "--pred", pred, "--gt", gt, "--labels", "1,x"]);
    expect(badLabels.status).toBe(2);
    expect(badLabels.stderr).toMatch(/--labels is '1,x'/);
  });
});

describe("fedjoint eval folds", () => {
  it("prints the seeded leave-one-out plan as one JSON line, and rejects too few exams", () => {
    const r = cli(["eval", "folds", "--site", "ankle=4", "knee=3", "--seed", "9", "--json"]);
    expect(r.status).toBe(0);
    const plan = JSON.parse(r.stdout) as { nFolds: number; permutations: Record<string, number[]> };
    expect(plan.nFolds).toBe(3);
    expect(plan.permutations.ankle.length).toBe(4);
    const bad = cli(["eval", "folds", "--site", "ankle=2", "--seed", "9"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toMatch(
      /^FJ_EVAL_FOLDS: fold plan: site 'ankle' has 2 exams, expected at least 3/,
    );
  });
});

describe("fedjoint report --runs … --out …", () => {
  it("merges two studies into one comparison with KS p-values", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fj-eval-cli-"));
    dirs.push(dir);
    const mk = (method: string, q: number): StudyResults => ({
      schema: "fedjoint.study-results/1",
      study: `study-${method}`,
      methods: [
        {
          method,
          folds: [0, 1].map((fold) => ({
            fold,
            sites: [
              {
                site: "a",
                joint: "ankle",
                exams: [
                  {
                    exam: 0,
                    labels: {
                      tibia: {
                        dice: q,
                        sensitivity: q,
                        specificity: 0.99,
                        mssd: 3,
                        assd: 0.5,
                        ravd: 4,
                        predVoxels: 10,
                        gtVoxels: 10,
                        status: "ok" as const,
                      },
                    },
                    slices: {
                      axis: 2 as const,
                      dice: [q, q - 0.1, q - 0.05 * fold],
                      sensitivity: [q, q, q],
                      specificity: [0.99, 0.99, 0.98],
                    },
                  },
                ],
              },
            ],
          })),
        },
      ],
    });
    await writeReport(join(dir, "r1"), mk("individual", 0.8));
    await writeReport(join(dir, "r2"), mk("dsl+msc", 0.9));
    const res = await mergeReports({ runs: [join(dir, "r1"), join(dir, "r2")], out: join(dir, "cmp") });
    expect(res.methods).toEqual(["individual", "dsl+msc"]);
    expect(res.reference).toBe("dsl+msc");
    const md = await readFile(join(dir, "cmp", "report.md"), "utf8");
    expect(md).toContain("| individual | 80.0 ± 0.0 |");
    expect(md).toMatch(/\| individual \| 75\.8 \(\+[\d.]+ \/ −[\d.]+\) \| [\d.e-]+ \|/);
    const r = cli(["report", "--runs", join(dir, "r1"), join(dir, "missing"), "--out", join(dir, "x")]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toMatch(/^FJ_EVAL_METRICS_MISSING: .*missing[/\\]metrics\.json: cannot read/);
  });
});
