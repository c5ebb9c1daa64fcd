/**
 * What `fedjoint segment` accepts before it computes anything: exams whose geometry suits the
 * model (src/segment/geometry.ts) and folders in nnU-Net's inference naming (src/segment/jobs.ts).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FedjointError } from "../../../src/errors.js";
import { summariseGeometry } from "../../../src/model/model-dir.js";
import { checkGeometry, GEOMETRY_TOLERANCE } from "../../../src/segment/geometry.js";
import { folderJobs } from "../../../src/segment/jobs.js";

// training exams: 160 mm × 160 mm in-plane (128 voxels of 1.25 mm), slices 1.5 mm (ratio 1.2)
const trained = summariseGeometry(
  [
    { dims: [128, 128, 60], spacing: [1.25, 1.25, 1.5] },
    { dims: [128, 128, 70], spacing: [1.25, 1.25, 1.5] },
  ],
  2,
);

function refusal(f: () => void): FedjointError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FedjointError);
    return e as FedjointError;
  }
  throw new Error("expected a refusal");
}

describe("checkGeometry", () => {
  it("accepts the training grid, another matrix of the same field of view, and up to the tolerance", () => {
    checkGeometry("a.nii.gz", [128, 128, 60], [1.25, 1.25, 1.5], trained, "knee");
    checkGeometry("b.nii.gz", [256, 256, 200], [0.625, 0.625, 0.75], trained, "knee");
    const edge = (160 * GEOMETRY_TOLERANCE) / 256;
    checkGeometry("c.nii.gz", [256, 256, 40], [edge, edge, edge * 1.2], trained, "knee");
  });

  it("refuses a field of view outside the training range ×/÷ the tolerance, naming the file", () => {
    const e = refusal(() => checkGeometry("big.nii.gz", [128, 128, 60], [3.5, 3.5, 4], trained, "knee"));
    expect(e.code).toBe("FJ_SEGMENT_GEOMETRY");
    expect(e.exitCode).toBe(2);
    expect(e.toLine()).toBe(
      "FJ_SEGMENT_GEOMETRY: big.nii.gz: field of view 448.0×448.0 mm in the slice plane (128×128 voxels of 3.5×3.5 mm), the knee model was trained on 160.0–160.0 × 160.0–160.0 mm (accepted ×/÷ 1.5)",
    );
    expect(() => checkGeometry("small.nii.gz", [64, 64, 60], [1, 1, 1.2], trained, "knee")).toThrow(
      /64\.0×64\.0 mm/,
    );
    // a distorted slice plane: one in-plane axis out of range
    expect(() => checkGeometry("wide.nii.gz", [128, 40, 60], [1.25, 1.25, 1.5], trained, "knee")).toThrow(
      /field of view 160\.0×50\.0 mm/,
    );
  });

  it("refuses an exam whose slices are much thinner than its pixels (acquired along another axis) and degenerate slices", () => {
    const e = refusal(() => checkGeometry("sag.nii.gz", [128, 128, 300], [1.25, 1.25, 0.4], trained, "knee"));
    expect(e.code).toBe("FJ_SEGMENT_GEOMETRY");
    expect(e.message).toMatch(/0\.32× the in-plane spacing.*≥ 1\.20×.*acquired along another axis/);
    expect(
      refusal(() => checkGeometry("line.nii.gz", [1, 128, 60], [160, 1.25, 1.5], trained, "knee")).message,
    ).toMatch(/1×128 voxels, expected at least 2×2/);
  });
});

describe("folderJobs (nnU-Net naming)", () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), "fj-jobs-"));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it("maps <case>_0000.nii[.gz] to OUT/<case>.nii[.gz] in name order, ignoring non-NIfTI files", async () => {
    const dir = path.join(tmp, "imagesTs");
    await mkdir(dir);
    for (const f of ["knee_010_0000.nii.gz", "knee_002_0000.nii", "notes.txt", "dataset.json"])
      await writeFile(path.join(dir, f), "");
    const jobs = await folderJobs(dir, "/out");
    expect(jobs).toEqual([
      { case: "knee_002", image: path.join(dir, "knee_002_0000.nii"), out: "/out/knee_002.nii" },
      { case: "knee_010", image: path.join(dir, "knee_010_0000.nii.gz"), out: "/out/knee_010.nii.gz" },
    ]);
  });

  it("refuses a second channel or a file without the channel suffix, an empty folder and a missing one", async () => {
    const dir = path.join(tmp, "two-channels");
    await mkdir(dir);
    await writeFile(path.join(dir, "a_0000.nii.gz"), "");
    await writeFile(path.join(dir, "a_0001.nii.gz"), "");
    await expect(folderJobs(dir, "/out")).rejects.toThrow(/a_0001\.nii\.gz: is not named <case>_0000/);
    const empty = path.join(tmp, "empty");
    await mkdir(empty);
    await expect(folderJobs(empty, "/out")).rejects.toThrow(/empty holds no <case>_0000/);
    const e = await folderJobs(path.join(tmp, "missing"), "/out").catch((x: FedjointError) => x);
    expect((e as FedjointError).code).toBe("FJ_SEGMENT_INPUT");
  });
});
