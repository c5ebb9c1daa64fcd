/**
 * Synthetic joint phantoms: T1-GRE-like MR volumes of pediatric ankles, knees and shoulders with
 * their bone label maps, written as nnU-Net v2 datasets. Bones are smooth implicit shapes
 * (superquadrics, tapered capsules, a thin triangular scapular blade) with a cortical rim, marrow
 * texture and growth plates; joint spaces are carved between neighbouring bones and lined with
 * cartilage; soft tissue has subcutaneous fat, muscle, tendons, fat pads and fluid. Each joint has
 * its own intensity profile; a smooth multiplicative bias field and Rician noise are added.
 * Everything is deterministic for (seed, joint, subject index).
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../atomic-write.js";
import { fjError } from "../errors.js";
import { isJoint, JOINT_BONES, JOINTS, type Joint, jointLabels } from "../joints.js";
import { normal, type Random, randomUint32, seeded, uniform } from "../random.js";
import { keepLargestComponents } from "../volume/components.js";
import { buildJoint, JOINT_GEOMETRY, type JointModel, scaleForAge, type Tissue } from "./anatomy.js";
import { type DatasetJson, loadDataset, type SiteDataset } from "./dataset.js";
import { type NiftiVolume, writeNifti } from "./nifti.js";
import type { Shape } from "./shapes.js";

/** Generator id written to dataset.json; /2: the src/random.ts PRNG (same seed, new subjects). */
export const PHANTOM_GENERATOR = "fedjoint-phantom/2";

/** Mean tissue signal per joint (relative units), the noise level and the stored intensity scale. */
interface Profile {
  tissue: Record<Tissue, number>;
  noise: number;
  scale: number;
  sequence: string;
}

export const PROFILES: Record<Joint, Profile> = {
  // 3T T1-weighted gradient echo: bright fatty marrow and fat, dark cortex and tendons.
  ankle: {
    sequence: "T1-GRE",
    tissue: {
      air: 0,
      fat: 0.95,
      muscle: 0.42,
      tendon: 0.05,
      fluid: 0.18,
      cartilage: 0.48,
      cortex: 0.06,
      marrow: 0.82,
      physis: 0.42,
    },
    noise: 0.035,
    scale: 1100,
  },
  // 3D GRE with water excitation (fat suppressed, T2*-weighted): very bright fluid and cartilage,
  // dark fat and fatty marrow, grey muscle.
  knee: {
    sequence: "3D-GRE-WE",
    tissue: {
      air: 0,
      fat: 0.08,
      muscle: 0.3,
      tendon: 0.03,
      fluid: 0.95,
      cartilage: 0.85,
      cortex: 0.02,
      marrow: 0.1,
      physis: 0.8,
    },
    noise: 0.05,
    scale: 700,
  },
  // eTHRIVE (fat-suppressed T1): dark marrow and fat, brighter muscle and cartilage.
  shoulder: {
    sequence: "eTHRIVE",
    tissue: {
      air: 0,
      fat: 0.13,
      muscle: 0.52,
      tendon: 0.06,
      fluid: 0.3,
      cartilage: 0.7,
      cortex: 0.03,
      marrow: 0.2,
      physis: 0.62,
    },
    noise: 0.03,
    scale: 1800,
  },
};

export interface PhantomOptions {
  joint: Joint;
  /** In-plane matrix (size × size). */
  size: number;
  /** Number of slices; default from the joint's through-plane extent (see defaultDepth). */
  depth?: number;
  seed: number;
  /** 0-based subject index; subject i is the same whatever the number of subjects. */
  index: number;
}

export interface PhantomSubject {
  id: string;
  joint: Joint;
  image: NiftiVolume;
  label: NiftiVolume;
  age: number;
  scale: number;
  /** Label voxels dropped because they were not connected to their bone (voxelisation debris). */
  removedVoxels: number;
  /** Voxel count per label value (index = label). */
  labelVoxels: number[];
}

/** Default slice count: the joint's anatomy through-plane, with a margin, at the typical anisotropy. */
export function defaultDepth(joint: Joint, size: number): number {
  const g = JOINT_GEOMETRY[joint];
  const sx = g.fov / size;
  const sz = sx * ((g.anisotropy[0] + g.anisotropy[1]) / 2);
  return Math.max(12, Math.round((1.3 * g.extentZ) / sz));
}

function clamp01(v: number): number {
  return v < 0 ? 0 : Math.min(v, 1);
}

/** Smooth value noise: a coarse random lattice, trilinearly interpolated. */
class LatticeNoise {
  private readonly nx: number;
  private readonly ny: number;
  private readonly nz: number;
  private readonly values: Float32Array;
  constructor(
    rand: Random,
    private readonly cell: number,
    private readonly half: [number, number, number],
  ) {
    this.nx = Math.ceil((2 * half[0]) / cell) + 2;
    this.ny = Math.ceil((2 * half[1]) / cell) + 2;
    this.nz = Math.ceil((2 * half[2]) / cell) + 2;
    this.values = new Float32Array(this.nx * this.ny * this.nz);
    for (let i = 0; i < this.values.length; i++) this.values[i] = normal(rand);
  }
  at(x: number, y: number, z: number): number {
    const fx = Math.min(Math.max((x + this.half[0]) / this.cell, 0), this.nx - 1.001);
    const fy = Math.min(Math.max((y + this.half[1]) / this.cell, 0), this.ny - 1.001);
    const fz = Math.min(Math.max((z + this.half[2]) / this.cell, 0), this.nz - 1.001);
    const ix = Math.floor(fx);
    const iy = Math.floor(fy);
    const iz = Math.floor(fz);
    const tx = fx - ix;
    const ty = fy - iy;
    const tz = fz - iz;
    const v = this.values;
    const sx = 1;
    const sy = this.nx;
    const sz = this.nx * this.ny;
    const b = ix + sy * iy + sz * iz;
    const c00 = v[b] * (1 - tx) + v[b + sx] * tx;
    const c10 = v[b + sy] * (1 - tx) + v[b + sy + sx] * tx;
    const c01 = v[b + sz] * (1 - tx) + v[b + sz + sx] * tx;
    const c11 = v[b + sz + sy] * (1 - tx) + v[b + sz + sy + sx] * tx;
    return (c00 * (1 - ty) + c10 * ty) * (1 - tz) + (c01 * (1 - ty) + c11 * ty) * tz;
  }
}

/** 65 536 standard normal values, to draw per-voxel noise quickly and deterministically. */
function normalTable(rand: Random): Float32Array {
  const t = new Float32Array(65536);
  for (let i = 0; i < t.length; i++) t[i] = normal(rand);
  return t;
}

/**
 * Distances of `shape` along one grid row (y, z) for columns i0..i1 into `out`. Outside a shape
 * the distance estimate is a lower bound of the true distance (convex parts, smooth-min unions), so
 * columns farther than `far` are skipped by `factor` of the remaining margin and marked far + 1.
 * Inside estimates can exceed the true distance, so nothing is skipped inside.
 */
function marchRow(
  shape: Shape,
  xs: Float64Array,
  y: number,
  z: number,
  i0: number,
  i1: number,
  far: number,
  step: number,
  out: Float32Array,
  factor: number,
): void {
  let i = i0;
  while (i <= i1) {
    const d = shape.d(xs[i], y, z);
    out[i] = d;
    if (d > far) {
      const end = Math.min(i1, i + Math.floor((factor * (d - far)) / step));
      for (let q = i + 1; q <= end; q++) out[q] = far + 1;
      i = end + 1;
    } else {
      i++;
    }
  }
}

/** The voxel grid of one subject, centred on the world origin (mm). */
interface Grid {
  X: number;
  Y: number;
  Z: number;
  N: number;
  /** In-plane and slice spacing (mm). */
  sx: number;
  sz: number;
  /** World coordinates of the voxel centres along each axis. */
  xs: Float64Array;
  ys: Float64Array;
  zs: Float64Array;
}

function makeGrid(X: number, Y: number, Z: number, sx: number, sz: number): Grid {
  return {
    X,
    Y,
    Z,
    N: X * Y * Z,
    sx,
    sz,
    xs: Float64Array.from({ length: X }, (_, i) => (i - (X - 1) / 2) * sx),
    ys: Float64Array.from({ length: Y }, (_, j) => (j - (Y - 1) / 2) * sx),
    zs: Float64Array.from({ length: Z }, (_, k) => (k - (Z - 1) / 2) * sz),
  };
}

/** World x (or y) → fractional voxel index; world z → fractional slice index. */
const toI = (g: Grid, x: number) => x / g.sx + (g.X - 1) / 2;
const toK = (g: Grid, z: number) => z / g.sz + (g.Z - 1) / 2;

/** Who this subject is: age, size, acquisition geometry, anatomy and tissue signal means. */
interface SubjectDraw {
  age: number;
  scale: number;
  grid: Grid;
  model: JointModel;
  tissue: Record<Tissue, number>;
}

function drawSubject(joint: Joint, size: number, depth: number, rand: Random): SubjectDraw {
  const geom = JOINT_GEOMETRY[joint];
  const age = uniform(rand, geom.ages[0], geom.ages[1]);
  const scale = scaleForAge(joint, age) * (1 + 0.04 * clampedNormal(rand));
  const fov = geom.fov * scale * uniform(rand, 0.94, 1.06);
  const sx = fov / size;
  const sz = sx * uniform(rand, geom.anisotropy[0], geom.anisotropy[1]);
  const model = buildJoint(joint, rand, { joint, age, scale }, sx);
  const tissue: Record<Tissue, number> = { ...PROFILES[joint].tissue };
  for (const k of Object.keys(tissue) as Tissue[]) {
    if (k !== "air") tissue[k] *= 1 + 0.06 * clampedNormal(rand);
  }
  return { age, scale, grid: makeGrid(size, size, depth, sx, sz), model, tissue };
}

/** N(0, 1) clipped to ±2. */
function clampedNormal(rand: Random): number {
  return Math.max(-2, Math.min(2, normal(rand)));
}

/** Distance beyond which a voxel is not near any bone (a value no distance reaches). */
const FAR = 1e9;

/** Nearest and second-nearest bone distance per voxel, and the nearest bone's index. */
interface BoneField {
  d1: Float32Array;
  d2: Float32Array;
  id1: Int8Array;
  /** Distances beyond `margin` (mm) of every bone are not computed (left at FAR). */
  margin: number;
}

/**
 * Step 1: the two nearest bone distances per voxel, coarse to fine: each bone is evaluated on every
 * other row and column first; cells whose four corners are all far outside are skipped, cells away
 * from the surface are interpolated, and only cells within 3 voxels of a surface are evaluated voxel
 * by voxel.
 */
function boneDistances(g: Grid, model: JointModel): BoneField {
  const { X, Y, Z, N, sx, xs, ys, zs } = g;
  const d1 = new Float32Array(N).fill(FAR);
  const d2 = new Float32Array(N).fill(FAR);
  const id1 = new Int8Array(N).fill(-1);
  const margin = Math.max(model.gap + model.cartilage + 2 * sx, 6);
  const exact = 3 * sx;
  const nearFar = margin + 1.5 * sx;
  const coarseW = Math.ceil(X / 2) + 1;
  const coarseH = Math.ceil(Y / 2) + 1;
  const coarse = new Float32Array(coarseW * coarseH);
  const coarseRow = new Float32Array(coarseW);
  const coarseXs = new Float64Array(coarseW);
  const bones = model.bones;
  for (let b = 0; b < bones.length; b++) {
    const { box } = bones[b].shape;
    const i0 = Math.max(0, Math.floor(toI(g, box.min[0] - margin)) & ~1);
    const i1 = Math.min(X - 1, Math.ceil(toI(g, box.max[0] + margin)));
    const j0 = Math.max(0, Math.floor(toI(g, box.min[1] - margin)) & ~1);
    const j1 = Math.min(Y - 1, Math.ceil(toI(g, box.max[1] + margin)));
    const k0 = Math.max(0, Math.floor(toK(g, box.min[2] - margin)));
    const k1 = Math.min(Z - 1, Math.ceil(toK(g, box.max[2] + margin)));
    if (i1 < i0 || j1 < j0 || k1 < k0) continue;
    const shape = bones[b].shape;
    const cw = ((i1 - i0) >> 1) + 2;
    const ch = ((j1 - j0) >> 1) + 2;
    for (let c = 0; c < cw; c++) coarseXs[c] = (i0 + 2 * c - (X - 1) / 2) * sx;
    for (let k = k0; k <= k1; k++) {
      const z = zs[k];
      for (let r = 0; r < ch; r++) {
        marchRow(
          shape,
          coarseXs,
          (j0 + 2 * r - (Y - 1) / 2) * sx,
          z,
          0,
          cw - 1,
          nearFar,
          2 * sx,
          coarseRow,
          0.9,
        );
        coarse.set(coarseRow.subarray(0, cw), r * cw);
      }
      for (let j = j0; j <= j1; j++) {
        const r = (j - j0) >> 1;
        const ty = ((j - j0) & 1) * 0.5;
        const y = ys[j];
        const row = X * (j + Y * k);
        for (let i = i0; i <= i1; i++) {
          const c = (i - i0) >> 1;
          const tx = ((i - i0) & 1) * 0.5;
          const a = r * cw + c;
          const c00 = coarse[a];
          const c01 = coarse[a + 1];
          const c10 = coarse[a + cw];
          const c11 = coarse[a + cw + 1];
          let d: number;
          if (c00 > nearFar && c01 > nearFar && c10 > nearFar && c11 > nearFar) continue;
          if (tx === 0 && ty === 0) {
            d = c00;
          } else if (
            (c00 > exact && c01 > exact && c10 > exact && c11 > exact && c00 < nearFar) ||
            (c00 < -exact && c01 < -exact && c10 < -exact && c11 < -exact)
          ) {
            // away from the surface the distance is smooth: bilinear from the coarse grid
            d = (c00 * (1 - tx) + c01 * tx) * (1 - ty) + (c10 * (1 - tx) + c11 * tx) * ty;
          } else {
            d = shape.d(xs[i], y, z);
          }
          if (d > margin) continue;
          const idx = row + i;
          if (d < d1[idx]) {
            d2[idx] = d1[idx];
            d1[idx] = d;
            id1[idx] = b;
          } else if (d < d2[idx]) {
            d2[idx] = d;
          }
        }
      }
    }
  }
  return { d1, d2, id1, margin };
}

/** Effective bone distance after carving the joint spaces, and the label map. */
interface CarvedBones {
  /** Effective distance to the nearest bone (< 0 inside), FAR where no bone is near. */
  de: Float32Array;
  labels: Uint8Array;
  /** Label voxels dropped because they were not connected to their bone. */
  removedVoxels: number;
}

/**
 * Step 2: carve a joint space of `gap` mm between neighbouring bones, label the voxels inside each
 * labelled bone, and keep each bone's largest 6-connected component (voxelisation debris).
 */
function carveJointSpaces(joint: Joint, g: Grid, model: JointModel, field: BoneField): CarvedBones {
  const { d1, d2, id1 } = field;
  const de = new Float32Array(g.N);
  const labels = new Uint8Array(g.N);
  for (let idx = 0; idx < g.N; idx++) {
    const a = d1[idx];
    if (a >= FAR) {
      de[idx] = FAR;
      continue;
    }
    const e = Math.max(a, (model.gap - (d2[idx] - a)) / 2);
    de[idx] = e;
    if (e < 0) labels[idx] = model.bones[id1[idx]].label;
  }
  const values = JOINT_BONES[joint].map((_, i) => i + 1);
  const removedVoxels = keepLargestComponents(labels, [g.X, g.Y, g.Z], values, 6);
  return { de, labels, removedVoxels };
}

/**
 * Step 3: noise-free intensities: soft tissue (fat, muscle with texture, tendons, fat pads, fluid)
 * inside the body outline, joint fluid and cartilage in the joint spaces, bone (cortex, marrow with
 * texture, growth plates), times a smooth separable bias field.
 */
function renderIntensities(
  subject: SubjectDraw,
  field: BoneField,
  carved: CarvedBones,
  rand: Random,
): Float32Array {
  const { grid: g, model, tissue: T } = subject;
  const { X, Y, Z, N, sx, sz, xs, ys, zs } = g;
  const { d2, id1, margin } = field;
  const { de, labels: lab } = carved;
  const half: [number, number, number] = [(X * sx) / 2 + 10, (Y * sx) / 2 + 10, (Z * sz) / 2 + 10];
  const softTex = new LatticeNoise(rand, 7, half);
  const marrowTex = new LatticeNoise(rand, 3, half);
  const bias = biasField(g, rand);
  const h = 0.5 * sx;
  const ramp = (d: number) => clamp01(0.5 - d / (2 * h));
  const { body, structures, fat, cartilage, cortex, gap, bones } = model;
  const image = new Float32Array(N);
  const physes = bones.map((b) => b.physis);
  const bodySlice = new Float32Array(X * Y);
  const bodyFar = 2 * (fat + 2 * h) + 2;
  const structRows = structures.map(() => new Float32Array(X));
  const structActive = new Uint8Array(structures.length);
  const structI0 = new Int32Array(structures.length);
  const structI1 = new Int32Array(structures.length);
  for (let k = 0; k < Z; k++) {
    const z = zs[k];
    bodyDistanceSlice(g, body, z, bodyFar, bodySlice);
    for (let j = 0; j < Y; j++) {
      const y = ys[j];
      const biasYZ = bias.y[j] * bias.z[k];
      const row = X * (j + Y * k);
      for (let q = 0; q < structures.length; q++) {
        const bx = structures[q].shape.box;
        structActive[q] = 0;
        if (y < bx.min[1] - h || y > bx.max[1] + h || z < bx.min[2] - sz || z > bx.max[2] + sz) continue;
        const a0 = Math.max(0, Math.floor(toI(g, bx.min[0] - h)));
        const a1 = Math.min(X - 1, Math.ceil(toI(g, bx.max[0] + h)));
        if (a1 < a0) continue;
        structActive[q] = 1;
        structI0[q] = a0;
        structI1[q] = a1;
        marchRow(structures[q].shape, xs, y, z, a0, a1, 2 * h, sx, structRows[q], 0.9);
      }
      for (let i = 0; i < X; i++) {
        const x = xs[i];
        const idx = row + i;
        // soft tissue
        const db = bodySlice[j * X + i];
        const inBody = ramp(db);
        let v = 0;
        if (inBody > 0) {
          const core = ramp(db + fat);
          const tex = softTex.at(x, y, z);
          const m = T.muscle * (1 + 0.07 * tex);
          const f = T.fat * (1 - 0.04 * tex);
          v = f + (m - f) * core;
          for (let q = 0; q < structures.length; q++) {
            if (structActive[q] === 0 || i < structI0[q] || i > structI1[q]) continue;
            const fr = ramp(structRows[q][i]);
            if (fr > 0) v += (T[structures[q].tissue] - v) * fr;
          }
          v *= inBody;
        }
        // joints and bone
        const e = de[idx];
        if (e < margin && inBody > 0) {
          const b = id1[idx];
          const joint2 = ramp(d2[idx] - (gap + 4));
          if (joint2 > 0) {
            const layer = ramp(e - cartilage);
            v += (T.fluid - v) * joint2 * (1 - layer) * ramp(-e);
            v += (T.cartilage - v) * joint2 * layer;
          }
          const removed = e < 0 && lab[idx] === 0 && bones[b].label > 0;
          const bf = removed ? 0 : ramp(e);
          if (bf > 0) {
            const marrowFrac = ramp(e + cortex);
            let bone = T.cortex + (T.marrow * (1 + 0.1 * marrowTex.at(x, y, z)) - T.cortex) * marrowFrac;
            const ph = physes[b];
            if (ph !== undefined) {
              const dist =
                Math.abs(
                  ph.normal[0] * (x - ph.point[0]) +
                    ph.normal[1] * (y - ph.point[1]) +
                    ph.normal[2] * (z - ph.point[2]),
                ) -
                ph.thickness / 2;
              const pf = ramp(dist) * marrowFrac;
              if (pf > 0) bone += (T.physis - bone) * pf;
            }
            v += (bone - v) * bf * inBody;
          }
        }
        image[idx] = v * bias.x[i] * biasYZ;
      }
    }
  }
  return image;
}

/** Smooth separable multiplicative bias field exp(p(x))·exp(q(y))·exp(r(z)), p, q, r quadratic. */
function biasField(g: Grid, rand: Random): { x: Float64Array; y: Float64Array; z: Float64Array } {
  const c = Array.from({ length: 6 }, () => 0.13 * normal(rand));
  const axis = (n: number, c1: number, c2: number) =>
    Float64Array.from({ length: n }, (_, i) => {
      const u = (2 * i) / Math.max(1, n - 1) - 1;
      return Math.exp(c1 * u + c2 * u * u);
    });
  return { x: axis(g.X, c[0], c[3]), y: axis(g.Y, c[1], c[4]), z: axis(g.Z, c[2], c[5]) };
}

/**
 * Distance to the body outline for every voxel of slice z into `out` (X·Y). The outline is
 * smooth: its distance is computed on every other row and column and interpolated bilinearly.
 */
function bodyDistanceSlice(g: Grid, body: Shape, z: number, far: number, out: Float32Array): void {
  const { X, Y, sx } = g;
  const Xh = Math.ceil(X / 2) + 1;
  const Yh = Math.ceil(Y / 2) + 1;
  const xsH = Float64Array.from({ length: Xh }, (_, i) => (2 * i - (X - 1) / 2) * sx);
  const coarse = new Float32Array(Xh * Yh);
  const rowH = new Float32Array(Xh);
  for (let jh = 0; jh < Yh; jh++) {
    marchRow(body, xsH, (2 * jh - (Y - 1) / 2) * sx, z, 0, Xh - 1, far, 2 * sx, rowH, 0.9);
    coarse.set(rowH, jh * Xh);
  }
  for (let j = 0; j < Y; j++) {
    const jh = j >> 1;
    const ty = (j & 1) * 0.5;
    for (let i = 0; i < X; i++) {
      const ih = i >> 1;
      const tx = (i & 1) * 0.5;
      const a = jh * Xh + ih;
      const top = coarse[a] * (1 - tx) + coarse[a + 1] * tx;
      const bot = coarse[a + Xh] * (1 - tx) + coarse[a + Xh + 1] * tx;
      out[j * X + i] = top * (1 - ty) + bot * ty;
    }
  }
}

/**
 * Step 4: Rician noise (normals from a seeded table) at the joint's noise level, then the stored
 * intensity scale (int16 range), in place.
 */
function addRicianNoise(image: Float32Array, joint: Joint, muscle: number, rand: Random): void {
  const profile = PROFILES[joint];
  const sigma = profile.noise * uniform(rand, 0.8, 1.25) * muscle;
  const table = normalTable(rand);
  const mask = table.length - 1;
  for (let idx = 0; idx < image.length; idx++) {
    const r = randomUint32(rand);
    const re = image[idx] + sigma * table[r & mask];
    const im = sigma * table[(r >>> 16) & mask];
    const mag = Math.sqrt(re * re + im * im) * profile.scale;
    image[idx] = Math.min(32767, Math.round(mag));
  }
}

/** Voxel → world affine: the joint's direction cosines, spacing, grid centred on the origin. */
function phantomAffine(joint: Joint, g: Grid): number[][] {
  const dir = JOINT_GEOMETRY[joint].directions;
  const sp = [g.sx, g.sx, g.sz];
  const c = [(g.X - 1) / 2, (g.Y - 1) / 2, (g.Z - 1) / 2];
  const affine = [0, 1, 2].map((r) => {
    const rowv = [0, 1, 2].map((col) => dir[col][r] * sp[col]);
    return [...rowv, -(rowv[0] * c[0] + rowv[1] * c[1] + rowv[2] * c[2])];
  });
  affine.push([0, 0, 0, 1]);
  return affine;
}

/**
 * Synthesises one subject (image + label volumes) in memory, in four steps: draw the subject
 * (`drawSubject`), bone distances (`boneDistances`), joint spaces and labels (`carveJointSpaces`),
 * intensities (`renderIntensities`) and noise (`addRicianNoise`). Deterministic for (seed, joint,
 * index); subject i does not depend on how many subjects are made.
 */
export function synthesizeSubject(options: PhantomOptions): PhantomSubject {
  const { joint, size, seed, index } = options;
  if (!Number.isInteger(size) || size < 16 || size > 1024) {
    throw fjError("FJ_CLI_ARG", `--size is ${size}, expected an integer 16–1024`);
  }
  const depth = options.depth ?? defaultDepth(joint, size);
  if (!Number.isInteger(depth) || depth < 4 || depth > 2048) {
    throw fjError("FJ_CLI_ARG", `--depth is ${depth}, expected an integer 4–2048`);
  }
  const rand = seeded("fedjoint-phantom", seed, joint, index);
  const subject = drawSubject(joint, size, depth, rand);
  const g = subject.grid;
  const field = boneDistances(g, subject.model);
  const carved = carveJointSpaces(joint, g, subject.model, field);
  const image = renderIntensities(subject, field, carved, rand);
  addRicianNoise(image, joint, subject.tissue.muscle, rand);
  const labelVoxels = new Array<number>(JOINT_BONES[joint].length + 1).fill(0);
  for (const v of carved.labels) labelVoxels[v]++;
  const affine = phantomAffine(joint, g);
  const dims: [number, number, number] = [g.X, g.Y, g.Z];
  const spacing: [number, number, number] = [g.sx, g.sx, g.sz];
  return {
    id: `${joint}_${String(index + 1).padStart(3, "0")}`,
    joint,
    image: { dims, spacing, data: image, affine, datatype: "int16" },
    label: {
      dims: [...dims],
      spacing: [...spacing],
      data: Float32Array.from(carved.labels),
      affine: affine.map((r) => [...r]),
      datatype: "uint8",
    },
    age: subject.age,
    scale: subject.scale,
    removedVoxels: carved.removedVoxels,
    labelVoxels,
  };
}

export interface SynthesizeOptions {
  joint: Joint;
  subjects: number;
  size: number;
  depth?: number;
  seed: number;
  out: string;
  /** gzip level for the .nii.gz files (default 4). */
  gzipLevel?: number;
  /** Called after each subject is written. */
  onSubject?: (s: { index: number; id: string; seconds: number }) => void;
}

export function phantomDatasetJson(
  joint: Joint,
  subjects: number,
  extra: Record<string, unknown> = {},
): DatasetJson {
  const labels = jointLabels(joint);
  return {
    channel_names: { "0": PROFILES[joint].sequence },
    labels,
    numTraining: subjects,
    file_ending: ".nii.gz",
    name: `fedjoint-phantom-${joint}`,
    description: `Synthetic pediatric ${joint} MR phantoms (${PROFILES[joint].sequence}-like), fedjoint`,
    joint,
    ...extra,
  };
}

async function isReplaceablePhantomDir(dir: string): Promise<boolean> {
  const st = await stat(dir).catch(() => undefined);
  if (st === undefined) return true;
  if (!st.isDirectory()) return false;
  const entries = await readdir(dir);
  if (entries.length === 0) return true;
  try {
    const json = JSON.parse(await readFile(path.join(dir, "dataset.json"), "utf8")) as {
      fedjoint?: { generator?: string };
    };
    return (
      typeof json.fedjoint?.generator === "string" && json.fedjoint.generator.startsWith("fedjoint-phantom")
    );
  } catch {
    return false;
  }
}

/**
 * Writes a complete nnU-Net v2 phantom dataset to `out` (dataset.json, imagesTr/<id>_0000.nii.gz,
 * labelsTr/<id>.nii.gz). The dataset is built in a temporary sibling folder and renamed into
 * place; an existing `out` is replaced only when it is empty or a previous phantom dataset.
 */
export async function synthesizeDataset(options: SynthesizeOptions): Promise<SiteDataset> {
  const { joint, subjects, size, seed } = options;
  if (!isJoint(joint)) {
    throw fjError("FJ_CLI_ARG", `--joint is '${String(joint)}', expected one of ${JOINTS.join(", ")}`);
  }
  if (!Number.isInteger(subjects) || subjects < 1 || subjects > 10000) {
    throw fjError("FJ_CLI_ARG", `--subjects is ${subjects}, expected an integer 1–10000`);
  }
  if (!Number.isInteger(seed) || seed < 0) {
    throw fjError("FJ_CLI_ARG", `--seed is ${seed}, expected an integer ≥ 0`);
  }
  const out = path.resolve(options.out);
  if (!(await isReplaceablePhantomDir(out))) {
    throw fjError(
      "FJ_DATA_OUT_EXISTS",
      `${out}: exists and is not empty or a previous phantom dataset, expected a new or empty folder`,
    );
  }
  const depth = options.depth ?? defaultDepth(joint, size);
  await mkdir(path.dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  await mkdir(path.join(tmp, "imagesTr"), { recursive: true });
  await mkdir(path.join(tmp, "labelsTr"), { recursive: true });
  try {
    const pending: Promise<void>[] = [];
    for (let index = 0; index < subjects; index++) {
      const t0 = performance.now();
      const s = synthesizeSubject({ joint, size, depth, seed, index });
      const level = options.gzipLevel ?? 4;
      const writes = Promise.all([
        writeNifti(path.join(tmp, "imagesTr", `${s.id}_0000.nii.gz`), s.image, { gzipLevel: level }),
        writeNifti(path.join(tmp, "labelsTr", `${s.id}.nii.gz`), s.label, { gzipLevel: level }),
      ]).then(() => {
        options.onSubject?.({ index, id: s.id, seconds: (performance.now() - t0) / 1000 });
      });
      pending.push(writes);
      // let compression run in the thread pool while the next subject is computed, bounded
      if (pending.length >= 4) await pending.shift();
    }
    await Promise.all(pending);
    const json = phantomDatasetJson(joint, subjects, {
      fedjoint: { generator: PHANTOM_GENERATOR, joint, seed, size, depth, subjects },
    });
    await writeFileAtomic(path.join(tmp, "dataset.json"), `${JSON.stringify(json, null, 2)}\n`);
    await rm(out, { recursive: true, force: true });
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return loadDataset(out);
}
