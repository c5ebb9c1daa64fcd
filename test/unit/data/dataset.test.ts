import { cp, mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkDataset, type DatasetReport, loadDataset } from "../../../src/data/dataset.js";
import { readNifti, writeNifti } from "../../../src/data/nifti.js";
import { synthesizeDataset } from "../../../src/data/phantoms.js";
import { DataError } from "../../../src/errors.js";

let tmp: string;
let good: string;
let n = 0;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), "fj-dataset-"));
  good = path.join(tmp, "good");
  await synthesizeDataset({ joint: "ankle", subjects: 3, size: 24, depth: 8, seed: 5, out: good });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function copy(): Promise<string> {
  const dir = path.join(tmp, `case${n++}`);
  await cp(good, dir, { recursive: true });
  return dir;
}

function only(report: DatasetReport, code: string): void {
  expect(report.ok).toBe(false);
  expect(report.problems.map((p) => p.code)).toEqual([code]);
  expect(report.problems[0].message).not.toContain("\n");
}

describe("loadDataset", () => {
  it("parses dataset.json and lists cases with absolute paths", async () => {
    const ds = await loadDataset(good);
    expect(ds.root).toBe(good);
    expect(ds.name).toBe("fedjoint-phantom-ankle");
    expect(ds.labels).toEqual({ background: 0, calcaneus: 1, talus: 2, tibia: 3 });
    expect(ds.fileEnding).toBe(".nii.gz");
    expect(ds.joint).toBe("ankle");
    expect(ds.cases.map((c) => c.id)).toEqual(["ankle_001", "ankle_002", "ankle_003"]);
    expect(ds.cases[0].image).toBe(path.join(good, "imagesTr", "ankle_001_0000.nii.gz"));
    expect(ds.cases[0].label).toBe(path.join(good, "labelsTr", "ankle_001.nii.gz"));
  });

  it("names the field of an invalid dataset.json", async () => {
    const dir = await copy();
    const file = path.join(dir, "dataset.json");
    const json = JSON.parse(await readFile(file, "utf8"));
    json.labels.background = 4;
    json.file_ending = ".mha";
    await writeFile(file, JSON.stringify(json));
    const err = await loadDataset(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as DataError).toLine()).toMatch(/dataset\.json: (labels|file_ending)/);
    const report = await checkDataset(dir);
    const messages = report.problems.map((p) => p.message).join("\n");
    expect(messages).toMatch(/labels: expected "background": 0/);
    expect(messages).toMatch(/file_ending: expected ".nii.gz" or ".nii"/);
  });

  it("fails on a missing label file naming it", async () => {
    const dir = await copy();
    await unlink(path.join(dir, "labelsTr", "ankle_002.nii.gz"));
    await expect(loadDataset(dir)).rejects.toThrow(/labelsTr\/ankle_002\.nii\.gz: file not found/);
  });
});

describe("synthesizeDataset output folder", () => {
  it("replaces a previous phantom dataset but refuses a folder holding anything else", async () => {
    const dir = await copy();
    const ds = await synthesizeDataset({
      joint: "shoulder",
      subjects: 1,
      size: 16,
      depth: 4,
      seed: 1,
      out: dir,
    });
    expect(ds.cases.map((c) => c.id)).toEqual(["shoulder_001"]);
    expect(ds.joint).toBe("shoulder");
    const other = path.join(tmp, `other${n++}`);
    await cp(path.join(good, "imagesTr"), other, { recursive: true });
    await expect(
      synthesizeDataset({ joint: "knee", subjects: 1, size: 16, depth: 4, seed: 1, out: other }),
    ).rejects.toThrow(/FJ_DATA_OUT_EXISTS|is not empty or a previous phantom dataset/);
  });
});

describe("checkDataset", () => {
  it("passes on a synthesised dataset and summarises it", async () => {
    const r = await checkDataset(good);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.summary.cases).toBe(3);
    expect(r.summary.numTraining).toBe(3);
    expect(r.summary.shapes).toEqual([{ shape: [24, 24, 8], count: 3 }]);
    expect(r.summary.labels.map((l) => [l.name, l.value])).toEqual([
      ["background", 0],
      ["calcaneus", 1],
      ["talus", 2],
      ["tibia", 3],
    ]);
    for (const l of r.summary.labels) expect(l.voxels).toBeGreaterThan(0);
    expect(r.summary.slicesWithForeground).toBeGreaterThan(0);
    expect(r.summary.slices).toBe(24);
  });

  it("truncated gzip", async () => {
    const dir = await copy();
    const f = path.join(dir, "imagesTr", "ankle_001_0000.nii.gz");
    const buf = await readFile(f);
    await writeFile(f, buf.subarray(0, buf.length >> 1));
    const r = await checkDataset(dir);
    only(r, "FJ_DATA_NIFTI_GZIP");
    expect(r.problems[0].file).toBe(f);
  });

  it("wrong magic", async () => {
    const dir = await copy();
    const f = path.join(dir, "labelsTr", "ankle_003.nii.gz");
    const vol = await readNifti(f);
    const raw = path.join(dir, "raw.nii");
    await writeNifti(raw, vol);
    const bytes = Buffer.from(await readFile(raw));
    bytes.write("abc\0", 344, "latin1");
    const { gzipSync } = await import("node:zlib");
    await writeFile(f, gzipSync(bytes));
    await unlink(raw);
    const r = await checkDataset(dir);
    only(r, "FJ_DATA_NIFTI_MAGIC");
    expect(r.problems[0].file).toBe(f);
  });

  it("label/image shape mismatch", async () => {
    const dir = await copy();
    const f = path.join(dir, "labelsTr", "ankle_002.nii.gz");
    const vol = await readNifti(f);
    const [X, Y, Z] = vol.dims;
    const data = vol.data.subarray(0, X * Y * (Z - 1));
    await writeNifti(f, { ...vol, dims: [X, Y, Z - 1], data, header: undefined });
    const r = await checkDataset(dir);
    only(r, "FJ_DATA_SHAPE_MISMATCH");
    expect(r.problems[0].file).toBe(f);
    expect(r.problems[0].message).toMatch(
      /shape 24×24×7 differs from imagesTr\/ankle_002_0000\.nii\.gz 24×24×8/,
    );
  });

  it("spacing mismatch", async () => {
    const dir = await copy();
    const f = path.join(dir, "labelsTr", "ankle_001.nii.gz");
    const vol = await readNifti(f);
    const spacing: [number, number, number] = [vol.spacing[0], vol.spacing[1], vol.spacing[2] * 1.5];
    const affine = vol.affine.map((r) => [...r]);
    for (let i = 0; i < 3; i++) affine[i][2] *= 1.5;
    await writeNifti(f, { ...vol, spacing, affine, header: undefined });
    const r = await checkDataset(dir);
    only(r, "FJ_DATA_SPACING_MISMATCH");
    expect(r.problems[0].message).toMatch(/expected the same spacing/);
  });

  it("label value not in dataset.json", async () => {
    const dir = await copy();
    const f = path.join(dir, "labelsTr", "ankle_003.nii.gz");
    const vol = await readNifti(f);
    vol.data[5] = 7;
    await writeNifti(f, vol);
    const r = await checkDataset(dir);
    only(r, "FJ_DATA_LABEL_UNKNOWN");
    expect(`${r.problems[0].file}: ${r.problems[0].message}`).toMatch(
      /labelsTr\/ankle_003\.nii\.gz: has label 7, dataset\.json declares 0–3/,
    );
  });

  it("NaN intensities", async () => {
    const dir = await copy();
    const f = path.join(dir, "imagesTr", "ankle_002_0000.nii.gz");
    const vol = await readNifti(f);
    vol.data[0] = Number.NaN;
    vol.data[1] = Number.NaN;
    await writeNifti(f, vol, { datatype: "float32" });
    const r = await checkDataset(dir);
    only(r, "FJ_DATA_NONFINITE");
    expect(r.problems[0].message).toMatch(/^2 of 4608 voxels are NaN or infinite/);
  });

  it("missing files", async () => {
    const dir = await copy();
    await unlink(path.join(dir, "imagesTr", "ankle_001_0000.nii.gz"));
    const r = await checkDataset(dir);
    expect(r.ok).toBe(false);
    const codes = r.problems.map((p) => p.code);
    expect(codes[0]).toBe("FJ_DATA_MISSING");
    expect(r.problems[0].file).toBe(path.join(dir, "imagesTr", "ankle_001_0000.nii.gz"));
    // with one exam gone, only two remain
    expect(codes).toContain("FJ_DATA_TOO_FEW_CASES");
  });

  it("missing dataset.json", async () => {
    const dir = await copy();
    await unlink(path.join(dir, "dataset.json"));
    const r = await checkDataset(dir);
    expect(r.problems[0]).toMatchObject({ code: "FJ_DATA_MISSING", file: path.join(dir, "dataset.json") });
  });

  it("fewer than 3 cases", async () => {
    const dir = await copy();
    await unlink(path.join(dir, "imagesTr", "ankle_003_0000.nii.gz"));
    await unlink(path.join(dir, "labelsTr", "ankle_003.nii.gz"));
    const file = path.join(dir, "dataset.json");
    const json = JSON.parse(await readFile(file, "utf8"));
    json.numTraining = 2;
    await writeFile(file, JSON.stringify(json));
    const r = await checkDataset(dir);
    only(r, "FJ_DATA_TOO_FEW_CASES");
    expect(r.problems[0].message).toMatch(/2 complete case\(s\), expected at least 3/);
  });

  it("numTraining that disagrees with the files", async () => {
    const dir = await copy();
    const file = path.join(dir, "dataset.json");
    const json = JSON.parse(await readFile(file, "utf8"));
    json.numTraining = 9;
    await writeFile(file, JSON.stringify(json));
    only(await checkDataset(dir), "FJ_DATA_NUMTRAINING");
  });
});
