/**
 * Issue 15 acceptance, end to end: a short federated study (`simulate` with a kept workdir: real
 * coordinator and site processes over loopback mTLS) leaves at each site its model (model/) and its
 * report (report/); `fedjoint segment` with the knee site's model on that site's held-out exam
 * writes a label map that nibabel opens on the exam's grid, and whose Dice against the exam's label
 * is the test Dice the site reported for that exam. The report's figures are real PNGs of real
 * predictions. Refusals are one FJ_ line with exit code 2.
 */
import { spawnSync } from "node:child_process";
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readNifti, writeNifti } from "../../../src/data/nifti.js";
import { postprocessLabelMap } from "../../../src/eval/postprocess.js";
import { readModelDir } from "../../../src/model/model-dir.js";
import { simulate } from "../../../src/simulation/simulate.js";
import type { FoldRecord } from "../../../src/site-client/report.js";
import { parseStudyConfig } from "../../../src/study/config.js";
import { decodePng } from "../../unit/site-client/png-decode.js";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const PYTHON = "/usr/bin/python3";
let work: string;
let results: {
  methods: {
    folds: {
      fold: number;
      sites: { site: string; exams: { labels: Record<string, { dice: number }> }[] }[];
    }[];
  }[];
};
let knee: { model: string; report: string; data: string; folds: FoldRecord[] };

function fedjoint(args: string[], options: { tty?: boolean } = {}) {
  const argv = [process.execPath, "--import", "tsx", path.join(ROOT, "src/cli/fedjoint.ts"), ...args];
  const env = { ...process.env, FEDJOINT_LOG_JSON: "1", FEDJOINT_BACKEND: "wasm" };
  const r = options.tty
    ? // a pseudo-terminal on stdin/stdout/stderr (util-linux script), as an operator's shell has
      spawnSync("script", ["-qec", argv.map((a) => `'${a}'`).join(" "), "/dev/null"], {
        cwd: ROOT,
        encoding: "utf8",
        env: { ...env, FEDJOINT_LOG_JSON: "1", TERM: "xterm" },
        timeout: 300_000,
      })
    : spawnSync(argv[0], argv.slice(1), { cwd: ROOT, encoding: "utf8", env, timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** nibabel's view of a label map next to its exam and ground truth. */
function nibabel(seg: string, image: string, label: string) {
  const script = `
import json, sys
import nibabel as nib, numpy as np
s, im, gt = (nib.load(p) for p in sys.argv[1:4])
S = np.asarray(s.dataobj); G = np.asarray(gt.dataobj)
dice = {}
for v in range(1, int(G.max()) + 1):
    a = S == v; b = G == v
    dice[v] = float(2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1))
print(json.dumps({
  "shape": list(S.shape), "imageShape": list(im.shape), "dtype": str(s.get_data_dtype()),
  "affineDiff": float(np.abs(s.affine - im.affine).max()),
  "sform": int(s.header.get_sform(coded=True)[1]), "imageSform": int(im.header.get_sform(coded=True)[1]),
  "qform": int(s.header.get_qform(coded=True)[1]), "imageQform": int(im.header.get_qform(coded=True)[1]),
  "zooms": [float(z) for z in s.header.get_zooms()], "imageZooms": [float(z) for z in im.header.get_zooms()],
  "dice": dice, "counts": {int(v): int((S == v).sum()) for v in range(1, int(G.max()) + 1)},
}))
`;
  const r = spawnSync(PYTHON, ["-c", script, seg, image, label], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as {
    shape: number[];
    imageShape: number[];
    dtype: string;
    affineDiff: number;
    sform: number;
    imageSform: number;
    qform: number;
    imageQform: number;
    zooms: number[];
    imageZooms: number[];
    dice: Record<string, number>;
    counts: Record<string, number>;
  };
}

const KNEE_BONES = ["femur", "fibula", "patella", "tibia"];
const imageOf = (id: string) => path.join(knee.data, "imagesTr", `${id}_0000.nii.gz`);
const labelOf = (id: string) => path.join(knee.data, "labelsTr", `${id}.nii.gz`);

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "fj-segment-"));
  await simulate({
    study: parseStudyConfig({
      study: "segment-it",
      method: "dsl",
      sites: [
        { name: "knee", joint: "knee" },
        { name: "ankle", joint: "ankle" },
      ],
      rounds: 3,
      localSteps: 8,
      folds: 2,
      seed: 3,
      roundTimeoutS: 300,
      model: { base: 8, depth: 3, size: 32 },
      training: { seg: { batch: 12, lr: 3e-3 } },
      embeddings: { enabled: false },
      strategy: { name: "fedavg" },
    }),
    subjects: 3,
    dataSize: 32,
    workdir: path.join(work, "sim"),
    backend: "wasm",
    threads: 1,
    insecure: false,
  });
  results = JSON.parse(await readFile(path.join(work, "sim", "coordinator", "results.json"), "utf8"));
  const site = path.join(work, "sim", "sites", "knee");
  const metrics = JSON.parse(await readFile(path.join(site, "report", "metrics.json"), "utf8")) as {
    folds: FoldRecord[];
  };
  knee = {
    model: path.join(site, "model"),
    report: path.join(site, "report"),
    data: path.join(work, "sim", "data", "knee"),
    folds: metrics.folds,
  };
}, 600_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("fedjoint segment with a site's final model", () => {
  it("the site keeps the last fold's model, with a manifest saying where it came from", async () => {
    const m = await readModelDir(knee.model);
    expect(m.card.source).toMatchObject({
      kind: "federated",
      study: "segment-it",
      method: "dsl",
      site: "knee",
      fold: 1,
      folds: 2,
      rounds: 3,
      strategy: { name: "fedavg" },
    });
    expect(m.card.joints).toEqual(["knee"]);
    expect(m.card.input).toMatchObject({ size: 32, sliceAxis: 2, normalisation: "z-score per volume" });
    expect(m.tensors.some((t) => t.name.startsWith("domain/knee/"))).toBe(true);
    expect(knee.folds.map((f) => f.fold)).toEqual([0, 1]);
  });

  it("on the site's held-out exam: nibabel opens it on the exam's grid and its Dice is the reported test Dice", async () => {
    const last = knee.folds[1];
    const out = path.join(work, "held-out_seg.nii.gz");
    const r = fedjoint([
      "segment",
      "--model",
      knee.model,
      "--image",
      imageOf(last.testExam),
      "--out",
      out,
      "--json",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]);
    expect(summary.model).toMatchObject({ joint: "knee", site: "knee", fold: 1, method: "dsl" });
    expect(summary.backend).toBe("wasm");
    const nib = nibabel(out, imageOf(last.testExam), labelOf(last.testExam));
    expect(nib.shape).toEqual(nib.imageShape);
    expect(nib.dtype).toBe("uint8");
    expect(nib.affineDiff).toBeLessThan(1e-6);
    expect([nib.sform, nib.qform]).toEqual([nib.imageSform, nib.imageQform]);
    expect(nib.zooms).toEqual(nib.imageZooms);
    // what the site sent the coordinator for this fold (results.json), and its own report
    const sent = results.methods[0].folds[1].sites.find((s) => s.site === "knee")!.exams[0].labels;
    let foreground = 0;
    KNEE_BONES.forEach((bone, i) => {
      expect(Math.abs(nib.dice[String(i + 1)] - sent[bone].dice), bone).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(nib.dice[String(i + 1)] - last.test.labels[bone].dice), bone).toBeLessThanOrEqual(1e-6);
      // --json: per-bone voxel counts and volumes in mm³ of the written map
      const b = summary.exams[0].bones[bone];
      expect(b.voxels).toBe(nib.counts[String(i + 1)]);
      expect(b.volumeMm3).toBeCloseTo(b.voxels * nib.zooms[0] * nib.zooms[1] * nib.zooms[2], 3);
      foreground += b.voxels;
    });
    expect(foreground).toBeGreaterThan(0);
    // --backend: the same command on the pure-JS cpu engine
    const cpuOut = path.join(work, "held-out_cpu_seg.nii.gz");
    const cpu = fedjoint([
      "segment",
      "--model",
      knee.model,
      "--image",
      imageOf(last.testExam),
      "--out",
      cpuOut,
      "--json",
      "--backend",
      "cpu",
    ]);
    expect(cpu.code, cpu.stderr).toBe(0);
    expect(JSON.parse(cpu.stdout.trim()).backend).toBe("cpu");
    expect(nibabel(cpuOut, imageOf(last.testExam), labelOf(last.testExam)).shape).toEqual(nib.imageShape);
  });

  it("--postprocess none writes the stacked labels before the paper's post-processing", async () => {
    const exam = knee.folds[1].testExam;
    const raw = path.join(work, "raw_seg.nii.gz");
    const paper = path.join(work, "held-out_seg.nii.gz");
    const r = fedjoint([
      "segment",
      "--model",
      knee.model,
      "--image",
      imageOf(exam),
      "--out",
      raw,
      "--postprocess",
      "none",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const none = await readNifti(raw);
    const pp = await readNifti(paper);
    const again = postprocessLabelMap(Uint8Array.from(none.data), none.dims, [1, 2, 3, 4]);
    expect(Buffer.from(again).equals(Buffer.from(Uint8Array.from(pp.data)))).toBe(true);
    expect(Buffer.from(Uint8Array.from(none.data)).equals(Buffer.from(again))).toBe(false);
  });

  it("the folder form (nnU-Net naming) segments every <case>_0000 file, refuses to overwrite, and draws a progress bar per exam on a terminal", async () => {
    const images = path.join(work, "imagesTs");
    await mkdir(images);
    const ids = knee.folds.map((f) => f.testExam);
    for (const id of ids) await copyFile(imageOf(id), path.join(images, `${id}_0000.nii.gz`));
    const out = path.join(work, "predTs");
    const r = fedjoint(["segment", "--model", knee.model, "--images", images, "--out", out, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.trim());
    expect(s.exams.map((e: { out: string }) => path.basename(e.out))).toEqual(
      ids.map((id) => `${id}.nii.gz`).sort(),
    );
    for (const id of ids) expect((await stat(path.join(out, `${id}.nii.gz`))).size).toBeGreaterThan(0);
    const before = await readFile(path.join(out, `${ids[0]}.nii.gz`));
    const again = fedjoint(["segment", "--model", knee.model, "--images", images, "--out", out]);
    expect(again.code).toBe(2);
    expect(
      again.stderr
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("FJ_")),
    ).toEqual([
      expect.stringMatching(
        /^FJ_SEGMENT_OUTPUT_EXISTS: .*predTs\/.*\.nii\.gz: exists \(pass --overwrite to replace it\)$/,
      ),
    ]);
    expect((await readFile(path.join(out, `${ids[0]}.nii.gz`))).equals(before)).toBe(true);
    const tty = fedjoint(
      ["segment", "--model", knee.model, "--images", images, "--out", out, "--overwrite"],
      {
        tty: true,
      },
    );
    expect(tty.code, tty.stdout).toBe(0);
    // cli-progress on the terminal: one bar per exam, named after its case, counting slices
    for (const [i, id] of [...ids].sort().entries())
      expect(tty.stdout).toMatch(
        new RegExp(`${id} \\(${i + 1}/${ids.length}\\) \\|[█░]+\\| \\d+/\\d+ slices`),
      );
  });

  it("refuses, in one FJ_ line with exit code 2: a geometry it cannot handle, a damaged model, an existing output, a 4-D image, another joint", async () => {
    const exam = imageOf(knee.folds[1].testExam);
    const one = (args: string[], code: string, detail: RegExp) => {
      const r = fedjoint(["segment", "--model", knee.model, ...args]);
      expect(r.code, `${code}: ${r.stderr}`).toBe(2);
      const lines = r.stderr
        .trim()
        .split("\n")
        .filter((l) => !l.startsWith("{"));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^${code}: `));
      expect(lines[0]).toMatch(detail);
    };
    const vol = await readNifti(exam);
    // a field of view four times the training one (the same matrix at 4× the voxel size)
    const wide = path.join(work, "wide_0000.nii.gz");
    const s4 = vol.spacing.map((s) => s * 4) as [number, number, number];
    await writeNifti(wide, {
      ...vol,
      spacing: s4,
      affine: vol.affine.map((row, r) => (r < 3 ? [...row.slice(0, 3).map((v) => v * 4), row[3]] : row)),
      header: undefined,
    });
    one(
      ["--image", wide, "--out", path.join(work, "wide_seg.nii.gz")],
      "FJ_SEGMENT_GEOMETRY",
      /wide_0000\.nii\.gz: field of view .* the knee model was trained on/,
    );
    const forced = fedjoint([
      "segment",
      "--model",
      knee.model,
      "--image",
      wide,
      "--out",
      path.join(work, "wide_seg.nii.gz"),
      "--ignore-geometry",
    ]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/outside the model's training geometry/);
    // slices far thinner than the pixels: acquired along another axis
    const thin = path.join(work, "thin_0000.nii.gz");
    const sThin: [number, number, number] = [vol.spacing[0], vol.spacing[1], vol.spacing[0] / 4];
    await writeNifti(thin, {
      ...vol,
      spacing: sThin,
      affine: vol.affine.map((row, r) =>
        r < 3 ? [row[0], row[1], (row[2] * sThin[2]) / vol.spacing[2], row[3]] : row,
      ),
      header: undefined,
    });
    one(
      ["--image", thin, "--out", path.join(work, "thin_seg.nii.gz")],
      "FJ_SEGMENT_GEOMETRY",
      /acquired along another axis/,
    );
    // an output that exists
    one(
      ["--image", exam, "--out", path.join(work, "held-out_seg.nii.gz")],
      "FJ_SEGMENT_OUTPUT_EXISTS",
      /held-out_seg\.nii\.gz: exists/,
    );
    // a 4-D image
    const fourD = path.join(work, "fourd_0000.nii.gz");
    const py = spawnSync(
      PYTHON,
      [
        "-c",
        "import sys, numpy as np, nibabel as nib; nib.save(nib.Nifti1Image(np.zeros((32, 32, 18, 3), np.int16), np.diag([4.7, 4.7, 5.0, 1])), sys.argv[1])",
        fourD,
      ],
      { encoding: "utf8" },
    );
    expect(py.status, py.stderr).toBe(0);
    one(
      ["--image", fourD, "--out", path.join(work, "fourd_seg.nii.gz")],
      "FJ_DATA_NIFTI_DIMS",
      /fourd_0000\.nii\.gz: is 4D with 3 time points/,
    );
    // a model of another joint than the exam's
    one(
      ["--image", exam, "--out", path.join(work, "x.nii.gz"), "--joint", "shoulder"],
      "FJ_SEGMENT_JOINT",
      /knee model, it has no shoulder domain/,
    );
    // damaged model directories: an edited manifest, flipped weights
    const edited = path.join(work, "model-edited");
    await cp(knee.model, edited, { recursive: true });
    const manifest = JSON.parse(await readFile(path.join(edited, "manifest.json"), "utf8"));
    manifest.meta.input.size = "big";
    await writeFile(path.join(edited, "manifest.json"), JSON.stringify(manifest));
    const damaged = (model: string, code: string, detail: RegExp) => {
      const r = fedjoint([
        "segment",
        "--model",
        model,
        "--image",
        exam,
        "--out",
        path.join(work, "y.nii.gz"),
      ]);
      expect(r.code, r.stderr).toBe(2);
      const lines = r.stderr
        .trim()
        .split("\n")
        .filter((l) => !l.startsWith("{"));
      expect(lines).toEqual([expect.stringMatching(new RegExp(`^${code}: .*${detail.source}`))]);
    };
    damaged(edited, "FJ_MODEL_DIR_MANIFEST", /manifest\.json: meta\.input\.size/);
    const flipped = path.join(work, "model-flipped");
    await cp(knee.model, flipped, { recursive: true });
    const bin = await readFile(path.join(flipped, "tensors.bin"));
    bin[bin.length - 5] ^= 0x40;
    await writeFile(path.join(flipped, "tensors.bin"), bin);
    damaged(flipped, "FJ_MODEL_DIR_CHECKSUM", /tensors\.bin: SHA-256/);
    damaged(
      path.join(work, "sim", "sites", "knee", "gamma-fold1"),
      "FJ_MODEL_DIR_MANIFEST",
      /training checkpoint, not a model/,
    );
    await expect(stat(path.join(work, "y.nii.gz"))).rejects.toThrow();
  });
});

describe("the site's report", () => {
  it("holds its leave-one-out metrics per fold and bone (the numbers it sent), as Markdown, CSV and JSON", async () => {
    const md = await readFile(path.join(knee.report, "report.md"), "utf8");
    expect(md).toMatch(/^# Site report: knee \(knee\)/);
    expect(md).toContain(`fedjoint segment --model ${knee.model}`);
    const csv = (await readFile(path.join(knee.report, "metrics.csv"), "utf8")).trim().split("\n");
    expect(csv[0]).toBe("fold,test_exam,bone,metric,value");
    expect(csv).toHaveLength(1 + 2 * 4 * 6);
    for (const f of knee.folds) {
      const sent = results.methods[0].folds[f.fold].sites.find((s) => s.site === "knee")!.exams[0].labels;
      for (const bone of KNEE_BONES) {
        expect(f.test.labels[bone].dice).toBe(sent[bone].dice);
        expect(csv).toContain(`${f.fold},${f.testExam},${bone},dice,${sent[bone].dice}`);
      }
    }
  });

  it("its figures are PNGs of the test exams with the ground truth and the prediction drawn", async () => {
    for (const f of knee.folds) {
      const png = decodePng(await readFile(path.join(knee.report, f.figure.file)));
      expect([png.width, png.height]).toEqual([f.figure.width, f.figure.height]);
      const { layout } = f.figure;
      const truth = await readNifti(labelOf(f.testExam));
      const [X, Y] = truth.dims;
      expect(layout.panel).toEqual([X * layout.scale, Y * layout.scale]);
      // the last fold's model is the site's model: its prediction is what fedjoint segment wrote
      const pred =
        f.fold === 1
          ? Uint8Array.from((await readNifti(path.join(work, "held-out_seg.nii.gz"))).data)
          : undefined;
      let drawn = 0;
      for (const row of layout.rows) {
        for (let y = 0; y < layout.panel[1]; y++) {
          for (let x = 0; x < layout.panel[0]; x++) {
            const v = Math.floor(x / layout.scale) + X * (Math.floor(y / layout.scale) + Y * row.slice);
            const at = (col: number) => ((row.y + y) * png.width + col + x) * 3;
            const coloured = (col: number) => {
              const i = at(col);
              return !(png.rgb[i] === png.rgb[i + 1] && png.rgb[i + 1] === png.rgb[i + 2]);
            };
            expect(coloured(layout.columns.truth)).toBe(truth.data[v] !== 0);
            if (coloured(layout.columns.prediction)) drawn++;
            if (pred) expect(coloured(layout.columns.prediction)).toBe(pred[v] !== 0);
          }
        }
      }
      const predicted = Object.values(f.test.labels).reduce((n, m) => n + m.predVoxels, 0);
      if (predicted > 0 || pred) expect(drawn, `fold ${f.fold}`).toBeGreaterThan(0);
      const pil = spawnSync(
        PYTHON,
        [
          "-c",
          "import sys; from PIL import Image; im=Image.open(sys.argv[1]); im.verify(); print(*im.size)",
          path.join(knee.report, f.figure.file),
        ],
        { encoding: "utf8" },
      );
      expect(pil.stdout.trim()).toBe(`${png.width} ${png.height}`);
    }
    const curve = decodePng(await readFile(path.join(knee.report, "figures", "validation-dice.png")));
    expect([curve.width, curve.height]).toEqual([560, 320]);
  });
});
