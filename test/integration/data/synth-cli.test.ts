/**
 * End to end: `fedjoint synth` writes datasets that nibabel (a tool other than ours) opens with
 * the expected labels, spacing and orientation; `fedjoint data check` passes on them and fails
 * with one line per problem and exit code 2 on broken copies.
 */
import { spawnSync } from "node:child_process";
import { cp, mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readNifti, writeNifti } from "../../../src/data/nifti.js";
import { defaultDepth, synthesizeDataset } from "../../../src/data/phantoms.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const PYTHON = "/usr/bin/python3";
const JOINTS = { ankle: 3, knee: 4, shoulder: 2 } as const;
/** nibabel axis codes of the voxel axes: ankle sagittal, knee coronal, shoulder axial. */
/** Slice thickness over in-plane spacing the phantoms draw from, per joint (src/data/phantoms.ts). */
const THICKNESS = { ankle: [1.8, 2.9], knee: [1.0, 1.34], shoulder: [2.2, 3.0] } as const;
const AXCODES = { ankle: ["A", "I", "R"], knee: ["R", "I", "A"], shoulder: ["R", "P", "S"] } as const;

let tmp: string;
/** Written by the CLI once (knee); ankle and shoulder by the same library call in-process. */
let cliKnee: { code: number | null; stdout: string; stderr: string };

function fedjoint(args: string[]) {
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", path.join(ROOT, "src/cli/fedjoint.ts"), ...args],
    {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, FEDJOINT_LOG_JSON: "1" },
      timeout: 120_000,
    },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function nibabelAvailable(): boolean {
  const r = spawnSync(PYTHON, ["-c", "import nibabel, numpy"], { encoding: "utf8" });
  return r.status === 0;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), "fj-synth-cli-"));
  cliKnee = fedjoint([
    "synth",
    "--joint",
    "knee",
    "--subjects",
    "3",
    "--size",
    "32",
    "--seed",
    "9",
    "--out",
    path.join(tmp, "knee"),
    "--json",
  ]);
  for (const joint of ["ankle", "shoulder"] as const) {
    await synthesizeDataset({ joint, subjects: 3, size: 32, seed: 9, out: path.join(tmp, joint) });
  }
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("fedjoint synth + nibabel", () => {
  it("writes datasets that nibabel opens with the expected labels, spacing and orientation", async (ctx) => {
    if (!nibabelAvailable()) {
      if (process.env.CI)
        throw new Error(`${PYTHON} with nibabel is required (Debian: apt-get install python3-nibabel)`);
      ctx.skip();
    }
    for (const joint of Object.keys(JOINTS) as (keyof typeof JOINTS)[]) {
      const out = path.join(tmp, joint);
      if (joint === "knee") {
        expect(cliKnee.code, cliKnee.stderr).toBe(0);
        const lines = cliKnee.stdout.trim().split("\n");
        expect(lines).toHaveLength(1);
        expect(JSON.parse(lines[0])).toMatchObject({
          joint,
          subjects: 3,
          out,
          shape: [32, 32, defaultDepth("knee", 32)],
        });
      }

      const script = `
import json, sys, glob, os
import nibabel as nib, numpy as np
out = []
for img_path in sorted(glob.glob(os.path.join(sys.argv[1], "imagesTr", "*_0000.nii.gz"))):
    case = os.path.basename(img_path)[:-len("_0000.nii.gz")]
    lab_path = os.path.join(sys.argv[1], "labelsTr", case + ".nii.gz")
    img = nib.load(img_path); lab = nib.load(lab_path)
    out.append({
        "case": case,
        "shape": list(img.shape), "lshape": list(lab.shape),
        "zooms": [float(z) for z in img.header.get_zooms()],
        "lzooms": [float(z) for z in lab.header.get_zooms()],
        "axcodes": list(nib.aff2axcodes(img.affine)),
        "qform_equals_sform": bool(np.allclose(img.get_qform(), img.get_sform(), atol=1e-4)),
        "codes": [int(img.header["qform_code"]), int(img.header["sform_code"])],
        "affine": img.affine.tolist(), "laffine": lab.affine.tolist(),
        "dtype": str(img.get_data_dtype()), "ldtype": str(lab.get_data_dtype()),
        "labels": sorted(int(v) for v in np.unique(np.asarray(lab.dataobj))),
        "imax": float(np.asarray(img.dataobj).max()),
    })
print(json.dumps(out))
`;
      const py = spawnSync(PYTHON, ["-c", script, out], { encoding: "utf8" });
      expect(py.status, py.stderr).toBe(0);
      const cases = JSON.parse(py.stdout) as {
        case: string;
        shape: number[];
        lshape: number[];
        zooms: number[];
        lzooms: number[];
        axcodes: string[];
        qform_equals_sform: boolean;
        codes: number[];
        affine: number[][];
        laffine: number[][];
        dtype: string;
        ldtype: string;
        labels: number[];
        imax: number;
      }[];
      expect(cases.map((c) => c.case)).toEqual([`${joint}_001`, `${joint}_002`, `${joint}_003`]);
      for (const c of cases) {
        expect(c.labels).toEqual(Array.from({ length: JOINTS[joint] + 1 }, (_, i) => i));
        expect(c.shape).toEqual(c.lshape);
        expect(c.shape.slice(0, 2)).toEqual([32, 32]);
        expect(c.zooms).toEqual(c.lzooms);
        // in-plane isotropic; slice thickness / in-plane spacing in the joint's range (the paper's
        // acquisitions: ankle and shoulder thick slices, the knee nearly isotropic)
        expect(c.zooms[1]).toBeCloseTo(c.zooms[0] as number, 5);
        const ratio = (c.zooms[2] as number) / (c.zooms[0] as number);
        expect(ratio, `${joint} slice/in-plane spacing`).toBeGreaterThanOrEqual(THICKNESS[joint][0]);
        expect(ratio, `${joint} slice/in-plane spacing`).toBeLessThanOrEqual(THICKNESS[joint][1]);
        expect(c.axcodes).toEqual(AXCODES[joint]);
        expect(c.qform_equals_sform).toBe(true);
        expect(c.codes.every((v) => v > 0)).toBe(true);
        expect(c.affine).toEqual(c.laffine);
        expect(c.dtype).toBe("int16");
        expect(c.ldtype).toBe("uint8");
        expect(c.imax).toBeGreaterThan(100);
        // what we read agrees with nibabel
        const ours = await readNifti(path.join(out, "imagesTr", `${c.case}_0000.nii.gz`));
        for (let i = 0; i < 3; i++) expect(ours.spacing[i]).toBeCloseTo(c.zooms[i], 5);
        for (let i = 0; i < 4; i++)
          for (let j = 0; j < 4; j++) expect(ours.affine[i][j]).toBeCloseTo(c.affine[i][j], 4);
      }
    }
  });
});

describe("fedjoint data check", () => {
  it("passes on a synthesised dataset and prints a summary", async () => {
    const r = fedjoint(["data", "check", path.join(tmp, "knee")]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/cases: 3/);
    expect(r.stdout).toMatch(/1=femur \d+ voxels in 3 cases/);
    expect(r.stdout).toContain(`of ${3 * defaultDepth("knee", 32)}`);
    expect(r.stdout.trim().endsWith("ok")).toBe(true);
  });

  it("fails with exit 2 and exactly one line per problem, naming the files", async () => {
    const good = path.join(tmp, "knee");
    const bad = path.join(tmp, "check-bad");
    await cp(good, bad, { recursive: true });
    await unlink(path.join(bad, "labelsTr", "knee_001.nii.gz"));
    const lab = await readNifti(path.join(bad, "labelsTr", "knee_002.nii.gz"));
    lab.data[0] = 9;
    await writeNifti(path.join(bad, "labelsTr", "knee_002.nii.gz"), lab);
    const img = path.join(bad, "imagesTr", "knee_003_0000.nii.gz");
    const bytes = await readFile(img);
    await writeFile(img, bytes.subarray(0, 200));
    const r = fedjoint(["data", "check", bad]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe(
      `FJ_DATA_MISSING: ${path.join(bad, "labelsTr", "knee_001.nii.gz")}: file not found, expected the label map of case knee_001`,
    );
    expect(lines[1]).toMatch(
      /^FJ_DATA_LABEL_UNKNOWN: .*labelsTr\/knee_002\.nii\.gz: has label 9, dataset\.json declares 0–4$/,
    );
    expect(lines[2]).toMatch(
      /^FJ_DATA_NIFTI_GZIP: .*imagesTr\/knee_003_0000\.nii\.gz: corrupt or truncated gzip stream/,
    );
    expect(lines[3]).toMatch(/^FJ_DATA_TOO_FEW_CASES: .*imagesTr: 2 complete case\(s\), expected at least 3/);
    expect(r.stderr).not.toMatch(/\n\s+at /);

    const j = fedjoint(["data", "check", bad, "--json"]);
    expect(j.code).toBe(2);
    const jl = j.stdout.trim().split("\n");
    expect(jl).toHaveLength(1);
    const report = JSON.parse(jl[0]);
    expect(report.ok).toBe(false);
    expect(report.problems).toHaveLength(4);
  });

  it("rejects a bad flag with one line and exit 2", () => {
    const r = fedjoint(["synth", "--joint", "elbow", "--out", path.join(tmp, "x")]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("FJ_CLI_ARG: --joint is 'elbow', expected one of ankle, knee, shoulder");
  });
});
