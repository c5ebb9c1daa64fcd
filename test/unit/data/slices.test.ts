import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SiteDataset } from "../../../src/data/dataset.js";
import { readNifti, readNiftiHeader, readNiftiRaw } from "../../../src/data/nifti.js";
import { synthesizeDataset } from "../../../src/data/phantoms.js";
import {
  augmentSlice,
  loadSlices,
  makeBatchSampler,
  resliceBilinear,
  resliceNearest,
  sliceVolume,
  subsetSlices,
} from "../../../src/data/slices.js";

let tmp: string;
let ds: SiteDataset;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), "fj-slices-"));
  ds = await synthesizeDataset({
    joint: "knee",
    subjects: 3,
    size: 40,
    depth: 30,
    seed: 2,
    out: path.join(tmp, "knee"),
  });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("resampling", () => {
  it("bilinear resize keeps a linear ramp linear and nearest keeps label values", () => {
    // 4×2×1 volume, x ramp 0..3 → 8×8
    const data = new Float32Array([0, 1, 2, 3, 0, 1, 2, 3]);
    const out = new Float32Array(64);
    resliceBilinear(data, [4, 2, 1], 2, 8, out);
    // half-pixel centres: output col c samples x = (c + 0.5)/2 − 0.5, clamped to [0, 3]
    const row = Array.from(out.subarray(0, 8));
    expect(row).toEqual([0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3]);
    const lab = new Uint8Array(64);
    resliceNearest(new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]), [4, 2, 1], 2, 8, lab);
    expect(Array.from(lab.subarray(0, 8))).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    expect(Array.from(lab.subarray(56, 64))).toEqual([4, 4, 5, 5, 6, 6, 7, 7]);
  });

  it("slices along each axis with the documented row/column order", () => {
    // value = x + 10 y + 100 z on a 2×3×4 grid
    const dims: [number, number, number] = [2, 3, 4];
    const v = new Float32Array(24);
    for (let z = 0; z < 4; z++)
      for (let y = 0; y < 3; y++) for (let x = 0; x < 2; x++) v[x + 2 * (y + 3 * z)] = x + 10 * y + 100 * z;
    const size = 2;
    // axis 0: slice x=1, rows = z, cols = y (nearest picks z∈{1,3}, y∈{0,2})
    const out = new Uint8Array(2 * size * size);
    const small = Float32Array.from(v, (x) => x % 256);
    resliceNearest(small, dims, 0, size, out);
    const expectAt = (x: number, y: number, z: number) => (x + 10 * y + 100 * z) % 256;
    expect(Array.from(out.subarray(4, 8))).toEqual([
      expectAt(1, 0, 1),
      expectAt(1, 2, 1),
      expectAt(1, 0, 3),
      expectAt(1, 2, 3),
    ]);
    const out1 = new Uint8Array(3 * size * size);
    resliceNearest(small, dims, 1, size, out1);
    // axis 1: slice y=2, rows = z, cols = x
    expect(Array.from(out1.subarray(8, 12))).toEqual([
      expectAt(0, 2, 1),
      expectAt(1, 2, 1),
      expectAt(0, 2, 3),
      expectAt(1, 2, 3),
    ]);
  });
});

describe("loadSlices", () => {
  it("loads all slices z-scored per volume, resized, with labels and foreground flags", async () => {
    const set = await loadSlices(ds, { size: 32 });
    expect(set.count).toBe(90);
    expect(set.images.length).toBe(90 * 32 * 32);
    expect(set.caseIds).toEqual(["knee_001", "knee_002", "knee_003"]);
    expect(set.classes).toBe(5);
    expect(Array.from(set.caseIndex.subarray(28, 32))).toEqual([0, 0, 1, 1]);
    expect(Array.from(set.sliceIndex.subarray(28, 32))).toEqual([28, 29, 0, 1]);
    // z-score per volume: each exam's slices have mean ≈ 0 and std ≈ 1 (resizing changes it a little)
    for (let c = 0; c < 3; c++) {
      let s = 0;
      let q = 0;
      const part = set.images.subarray(c * 30 * 1024, (c + 1) * 30 * 1024);
      for (const v of part) {
        s += v;
        q += v * v;
      }
      const mean = s / part.length;
      expect(Math.abs(mean)).toBeLessThan(0.1);
      expect(Math.sqrt(q / part.length - mean * mean)).toBeGreaterThan(0.85);
      expect(Math.sqrt(q / part.length - mean * mean)).toBeLessThan(1.15);
    }
    const values = new Set(set.labels);
    for (const v of values) expect(v).toBeLessThanOrEqual(4);
    expect(values.size).toBe(5);
    for (let k = 0; k < set.count; k++) {
      const any = set.labels.subarray(k * 1024, (k + 1) * 1024).some((v) => v !== 0);
      expect(set.hasForeground[k]).toBe(any ? 1 : 0);
    }
    expect(set.hasForeground.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it("slices along another axis and only the asked cases", async () => {
    const set = await loadSlices(ds, { size: 16, axis: 0, caseIds: ["knee_003", "knee_001"] });
    expect(set.count).toBe(80);
    expect(set.caseIds).toEqual(["knee_003", "knee_001"]);
    await expect(loadSlices(ds, { size: 16, caseIds: ["nope"] })).rejects.toThrow(/case 'nope'/);
    const sub = subsetSlices(set, ["knee_001"]);
    expect(sub.count).toBe(40);
    expect(Array.from(sub.images.subarray(0, 256))).toEqual(
      Array.from(set.images.subarray(40 * 256, 41 * 256)),
    );
  });

  it("sliceVolume (inference) gives loadSlices' slices bit for bit, and the header path agrees with readNifti", async () => {
    const set = await loadSlices(ds, { size: 24, caseIds: ["knee_002"] });
    const vol = await readNifti(ds.cases[1].image);
    const head = await readNiftiHeader(ds.cases[1].image);
    expect(head.dims).toEqual(vol.dims);
    expect(head.spacing).toEqual(vol.spacing);
    expect(head.affine).toEqual(vol.affine);
    const one = sliceVolume(await readNiftiRaw(ds.cases[1].image), { size: 24 });
    expect(one.count).toBe(set.count);
    expect(Buffer.from(one.images.buffer).equals(Buffer.from(set.images.buffer))).toBe(true);
  });
});

describe("makeBatchSampler", () => {
  it("is deterministic for a seed and balances foreground", async () => {
    const set = await loadSlices(ds, { size: 32 });
    const fg = set.hasForeground.reduce((x, y) => x + y, 0);
    expect(fg).toBeGreaterThan(10);
    expect(fg).toBeLessThan(set.count - 10);
    const a = makeBatchSampler(set, { batch: 10, seed: 4, augment: true, foregroundFraction: 0.7 });
    const b = makeBatchSampler(set, { batch: 10, seed: 4, augment: true, foregroundFraction: 0.7 });
    for (let step = 0; step < 3; step++) {
      const x = a.next();
      const y = b.next();
      expect(x.n).toBe(10);
      expect(x.images.length).toBe(10 * 1024);
      expect(Array.from(x.indices)).toEqual(Array.from(y.indices));
      expect(Buffer.from(x.images.buffer).equals(Buffer.from(y.images.buffer))).toBe(true);
      expect(x.indices.filter((k) => set.hasForeground[k] === 1).length).toBe(7);
    }
    const c = makeBatchSampler(set, { batch: 10, seed: 5, augment: true }).next();
    expect(Array.from(c.indices)).not.toEqual(
      Array.from(makeBatchSampler(set, { batch: 10, seed: 4, augment: true }).next().indices),
    );
  });

  it("without augmentation returns the stored slices; epochs visit every slice once", async () => {
    const set = await loadSlices(ds, { size: 16 });
    const s = makeBatchSampler(set, { batch: 15, seed: 1, augment: false });
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      const batch = s.next();
      for (let j = 0; j < batch.n; j++) {
        const k = batch.indices[j];
        seen.push(k);
        expect(Array.from(batch.labels.subarray(j * 256, (j + 1) * 256))).toEqual(
          Array.from(set.labels.subarray(k * 256, (k + 1) * 256)),
        );
      }
    }
    expect(new Set(seen).size).toBe(90);
  });

  it("augmentation: identity is exact, flips are exact, rotations keep labels nearest", () => {
    const size = 8;
    const img = Float32Array.from({ length: 64 }, (_, i) => i);
    const lab = Uint8Array.from({ length: 64 }, (_, i) => (i % 8 < 4 ? 1 : 2));
    const outI = new Float32Array(64);
    const outL = new Uint8Array(64);
    augmentSlice(img, lab, size, { angle: 0, shiftX: 0, shiftY: 0, flipX: false, flipY: false }, outI, outL);
    expect(Array.from(outI)).toEqual(Array.from(img));
    augmentSlice(img, lab, size, { angle: 0, shiftX: 0, shiftY: 0, flipX: true, flipY: false }, outI, outL);
    expect(outI[0]).toBe(7);
    expect(outL[0]).toBe(2);
    augmentSlice(img, lab, size, { angle: 0, shiftX: 0, shiftY: 0, flipX: false, flipY: true }, outI, outL);
    expect(outI[0]).toBe(56);
    // 90° rotation maps the grid onto itself: out[r][q] = in[size−1−q][r], values and labels
    const asym = Uint8Array.from({ length: 64 }, (_, i) => (i * 7 + (i >> 3)) % 5);
    augmentSlice(
      img,
      asym,
      size,
      { angle: Math.PI / 2, shiftX: 0, shiftY: 0, flipX: false, flipY: false },
      outI,
      outL,
    );
    for (let r = 0; r < size; r++) {
      for (let q = 0; q < size; q++) {
        const from = (size - 1 - q) * size + r;
        expect(outL[r * size + q], `label (${r},${q})`).toBe(asym[from]);
        expect(outI[r * size + q], `image (${r},${q})`).toBeCloseTo(img[from] as number, 9);
      }
    }
    expect(Array.from(outL)).not.toEqual(Array.from(asym));
    // a shift moves content and fills with the minimum / background
    augmentSlice(img, lab, size, { angle: 0, shiftX: 2, shiftY: 0, flipX: false, flipY: false }, outI, outL);
    expect(outI[2]).toBe(0);
    expect(outI[0]).toBe(0);
    expect(outL[0]).toBe(0);
    expect(outL[2]).toBe(1);
  });
});
