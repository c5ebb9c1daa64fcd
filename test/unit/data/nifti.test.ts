import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  affineToQuatern,
  type NiftiDatatype,
  type NiftiVolume,
  quaternToAffine,
  readNifti,
  readNiftiHeader,
  writeNifti,
} from "../../../src/data/nifti.js";
import { DataError } from "../../../src/errors.js";

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../fixtures/nifti");

interface Expected {
  shape: number[];
  zooms: number[];
  affine: number[][];
  dtype: string;
  qform_code: number;
  sform_code: number;
  slope: number;
  inter: number;
  data: number[];
}

let expected: Record<string, Expected>;
let dir: string;

beforeAll(async () => {
  expected = JSON.parse(await readFile(path.join(FIXTURES, "expected.json"), "utf8"));
  dir = await mkdtemp(path.join(tmpdir(), "fj-nifti-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function expectAffine(actual: number[][], want: number[][], tol = 1e-4) {
  for (let i = 0; i < 4; i++)
    for (let j = 0; j < 4; j++) expect(actual[i][j]).toBeCloseTo(want[i][j], -Math.log10(tol));
}

function expectData(actual: Float32Array, want: number[]) {
  expect(actual.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const tol = Math.max(1e-4, Math.abs(want[i]) * 1e-6);
    if (Math.abs(actual[i] - want[i]) > tol) throw new Error(`voxel ${i}: ${actual[i]} != ${want[i]}`);
  }
}

describe("readNifti on files written by nibabel", () => {
  const names = [
    "int16_slope.nii.gz",
    "float64_qform.nii",
    "uint8_labels.nii.gz",
    "uint16.nii",
    "int32.nii.gz",
    "int8.nii",
    "uint32.nii.gz",
    "float32.nii.gz",
    "int16_bigendian.nii",
    "t1_4d.nii.gz",
  ];
  for (const name of names) {
    it(`reads ${name} as nibabel does`, async () => {
      const e = expected[name];
      const vol = await readNifti(path.join(FIXTURES, name));
      expect(vol.dims).toEqual(e.shape.slice(0, 3));
      for (let i = 0; i < 3; i++) expect(vol.spacing[i]).toBeCloseTo(e.zooms[i], 5);
      expect(vol.datatype).toBe(e.dtype);
      expectAffine(vol.affine, e.affine);
      expectData(vol.data, e.data);
      // the header path (first bytes only) reads the same geometry
      const head = await readNiftiHeader(path.join(FIXTURES, name));
      expect(head.dims).toEqual(vol.dims);
      expect(head.spacing).toEqual(vol.spacing);
      expect(head.affine).toEqual(vol.affine);
      expect(head.datatype).toBe(vol.datatype);
    });
  }

  it("applies scl_slope and scl_inter (int16, slope 0.5, inter 10)", async () => {
    const vol = await readNifti(path.join(FIXTURES, "int16_slope.nii.gz"));
    expect(expected["int16_slope.nii.gz"].slope).toBe(0.5);
    // stored raw value -300 → -300 * 0.5 + 10
    expect(vol.data[0]).toBe(-140);
  });
});

describe("writeNifti round trips", () => {
  const types: NiftiDatatype[] = [
    "uint8",
    "int8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "float32",
    "float64",
  ];
  for (const dt of types) {
    for (const ext of [".nii", ".nii.gz"]) {
      it(`${dt}${ext}`, async () => {
        const dims: [number, number, number] = [6, 4, 3];
        const n = 72;
        const data = new Float32Array(n);
        for (let i = 0; i < n; i++)
          data[i] = dt.startsWith("float") ? i * 0.25 - 3 : dt.startsWith("u") ? i * 3 : i * 3 - 100;
        const a = (30 * Math.PI) / 180;
        const affine = [
          [0.4 * Math.cos(a), -0.4 * Math.sin(a), 0, 12],
          [0.4 * Math.sin(a), 0.4 * Math.cos(a), 0, -7],
          [0, 0, -0.9, 3],
          [0, 0, 0, 1],
        ];
        const vol: NiftiVolume = { dims, spacing: [0.4, 0.4, 0.9], data, affine, datatype: dt };
        const file = path.join(dir, `rt_${dt}${ext}`);
        await writeNifti(file, vol);
        const back = await readNifti(file);
        expect(back.dims).toEqual(dims);
        expect(back.datatype).toBe(dt);
        for (let i = 0; i < 3; i++) expect(back.spacing[i]).toBeCloseTo(vol.spacing[i], 5);
        expectAffine(back.affine, affine);
        expectData(back.data, Array.from(data));
        // the qform we wrote describes the same geometry as the sform
        const h = back.header as { quatern: [number, number, number, number, number, number, number] };
        expectAffine(quaternToAffine(h.quatern, back.spacing), affine);
      });
    }
  }

  it("writes int16 back with the file's own slope/intercept", async () => {
    const vol = await readNifti(path.join(FIXTURES, "int16_slope.nii.gz"));
    const file = path.join(dir, "slope_back.nii.gz");
    await writeNifti(file, vol);
    const back = await readNifti(file);
    expectData(back.data, expected["int16_slope.nii.gz"].data);
    expect((back.header as { sclSlope: number }).sclSlope).toBe(0.5);
    expect((back.header as { qformCode: number; sformCode: number }).qformCode).toBe(1);
    expect((back.header as { qformCode: number; sformCode: number }).sformCode).toBe(2);
    expectAffine(back.affine, expected["int16_slope.nii.gz"].affine);
  });

  it("keeps a qform-only, left-handed geometry (qfac −1) through a write", async () => {
    const vol = await readNifti(path.join(FIXTURES, "float64_qform.nii"));
    const file = path.join(dir, "qform_back.nii");
    await writeNifti(file, vol, { datatype: "float32" });
    const back = await readNifti(file);
    expect(back.datatype).toBe("float32");
    expectAffine(back.affine, expected["float64_qform.nii"].affine);
  });

  it("refuses values that do not fit the datatype", async () => {
    const vol: NiftiVolume = {
      dims: [2, 1, 1],
      spacing: [1, 1, 1],
      data: new Float32Array([3, 300]),
      affine: [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
      ],
      datatype: "uint8",
    };
    await expect(writeNifti(path.join(dir, "bad.nii"), vol)).rejects.toThrow(/does not fit uint8/);
  });

  it("refuses an affine that disagrees with the spacing", async () => {
    const vol: NiftiVolume = {
      dims: [1, 1, 1],
      spacing: [1, 1, 2],
      data: new Float32Array([1]),
      affine: [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
      ],
      datatype: "float32",
    };
    await expect(writeNifti(path.join(dir, "bad2.nii"), vol)).rejects.toThrow(
      /FJ_DATA_NIFTI_AFFINE|spacing\[2\]/,
    );
  });

  it("affineToQuatern inverts quaternToAffine for a rotated, flipped grid", () => {
    const aff = expected["float64_qform.nii"].affine;
    const { quatern, zooms } = affineToQuatern(aff);
    expectAffine(quaternToAffine(quatern, zooms), aff);
    expect(quatern[6]).toBe(-1);
  });
});

describe("readNifti errors", () => {
  async function expectDataError(
    file: string,
    code: string,
    pattern: RegExp,
    read: (file: string) => Promise<unknown> = readNifti,
  ) {
    const err = await read(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DataError);
    const de = err as DataError;
    expect(de.code).toBe(code);
    expect(de.file).toBe(file);
    expect(de.toLine()).toMatch(pattern);
    expect(de.toLine()).not.toContain("\n");
  }

  it("rejects 4D with several time points", async () => {
    await expectDataError(path.join(FIXTURES, "t3_4d.nii.gz"), "FJ_DATA_NIFTI_DIMS", /3 time points/);
    await expectDataError(
      path.join(FIXTURES, "t3_4d.nii.gz"),
      "FJ_DATA_NIFTI_DIMS",
      /3 time points/,
      readNiftiHeader,
    );
  });

  it("rejects a truncated gzip stream", async () => {
    const buf = await readFile(path.join(FIXTURES, "int16_slope.nii.gz"));
    const file = path.join(dir, "trunc.nii.gz");
    await writeFile(file, buf.subarray(0, Math.floor(buf.length / 2)));
    await expectDataError(file, "FJ_DATA_NIFTI_GZIP", /truncated gzip/);
  });

  it("rejects a wrong magic", async () => {
    const buf = Buffer.from(await readFile(path.join(FIXTURES, "uint16.nii")));
    buf.write("xyz\0", 344, "latin1");
    const file = path.join(dir, "magic.nii");
    await writeFile(file, buf);
    await expectDataError(file, "FJ_DATA_NIFTI_MAGIC", /bad magic/);
    await expectDataError(file, "FJ_DATA_NIFTI_MAGIC", /bad magic/, readNiftiHeader);
  });

  it("rejects a file that is not NIfTI at all", async () => {
    const file = path.join(dir, "text.nii.gz");
    await writeFile(file, gzipSync(Buffer.from("hello world, definitely not an image")));
    await expectDataError(file, "FJ_DATA_NIFTI_TRUNCATED", /expected at least 348/);
    await expectDataError(file, "FJ_DATA_NIFTI_TRUNCATED", /expected at least 348/, readNiftiHeader);
  });

  it("rejects truncated image data", async () => {
    const buf = await readFile(path.join(FIXTURES, "uint16.nii"));
    const file = path.join(dir, "short.nii");
    await writeFile(file, buf.subarray(0, buf.length - 10));
    await expectDataError(file, "FJ_DATA_NIFTI_TRUNCATED", /truncated/);
  });

  it("rejects bad dims", async () => {
    const buf = Buffer.from(await readFile(path.join(FIXTURES, "uint16.nii")));
    buf.writeInt16LE(0, 42); // dim[1] = 0
    const file = path.join(dir, "dims.nii");
    await writeFile(file, buf);
    await expectDataError(file, "FJ_DATA_NIFTI_DIMS", /dim\[1\] is 0/);
    await expectDataError(file, "FJ_DATA_NIFTI_DIMS", /dim\[1\] is 0/, readNiftiHeader);
  });

  it("names a missing file", async () => {
    await expectDataError(path.join(dir, "nope.nii.gz"), "FJ_DATA_MISSING", /file not found/);
    await expectDataError(
      path.join(dir, "nope.nii.gz"),
      "FJ_DATA_MISSING",
      /file not found/,
      readNiftiHeader,
    );
  });
});
