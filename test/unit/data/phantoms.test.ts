import { describe, expect, it } from "vitest";
import { defaultDepth, type PhantomSubject, synthesizeSubject } from "../../../src/data/phantoms.js";
import { ksStatistic } from "../../../src/eval/ks.js";
import { JOINT_BONES, JOINTS, type Joint } from "../../../src/joints.js";
import { countComponents } from "../../../src/volume/components.js";

const SIZE = 48;
const cache = new Map<string, PhantomSubject>();
function subject(joint: Joint, index: number, seed = 7): PhantomSubject {
  const key = `${joint}/${index}/${seed}`;
  let s = cache.get(key);
  if (s === undefined) {
    s = synthesizeSubject({ joint, size: SIZE, seed, index });
    cache.set(key, s);
  }
  return s;
}

/** In-body intensities (above 5 % of the 99th percentile), z-scored per volume, sorted. */
function bodyIntensities(data: Float32Array): Float64Array {
  const sorted = Float64Array.from(data).sort();
  const thr = 0.05 * sorted[Math.floor(sorted.length * 0.99)];
  const v = Float64Array.from(data.filter((x) => x > thr));
  let s = 0;
  let q = 0;
  for (const x of v) {
    s += x;
    q += x * x;
  }
  const m = s / v.length;
  const sd = Math.sqrt(q / v.length - m * m);
  return v.map((x) => (x - m) / sd).sort();
}

function pooled(arrays: Float64Array[]): Float64Array {
  const out = new Float64Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out.sort();
}

/** Two-sample Kolmogorov–Smirnov statistic (src/eval/ks.ts, as scipy's ks_2samp). */
const ks = ksStatistic;

describe("phantoms", () => {
  it("are deterministic for (seed, joint, index) and differ between subjects", () => {
    const a = synthesizeSubject({ joint: "knee", size: 32, seed: 3, index: 1 });
    const b = synthesizeSubject({ joint: "knee", size: 32, seed: 3, index: 1 });
    const c = synthesizeSubject({ joint: "knee", size: 32, seed: 3, index: 2 });
    const d = synthesizeSubject({ joint: "knee", size: 32, seed: 4, index: 1 });
    expect(Buffer.from(a.image.data.buffer).equals(Buffer.from(b.image.data.buffer))).toBe(true);
    expect(Buffer.from(a.label.data.buffer).equals(Buffer.from(b.label.data.buffer))).toBe(true);
    expect(a.image.spacing).toEqual(b.image.spacing);
    expect(Buffer.from(a.image.data.buffer).equals(Buffer.from(c.image.data.buffer))).toBe(false);
    expect(Buffer.from(a.label.data.buffer).equals(Buffer.from(d.label.data.buffer))).toBe(false);
  });

  for (const joint of JOINTS) {
    it(`${joint}: labels 0..${JOINT_BONES[joint].length}, every bone present and one 6-connected component`, () => {
      const removed: number[] = [];
      for (let i = 0; i < 4; i++) {
        const s = subject(joint, i);
        const n = JOINT_BONES[joint].length;
        expect(s.image.dims).toEqual([SIZE, SIZE, defaultDepth(joint, SIZE)]);
        const values = new Set(s.label.data);
        expect([...values].sort()).toEqual(Array.from({ length: n + 1 }, (_, v) => v));
        const fg = s.labelVoxels.slice(1).reduce((a, b) => a + b, 0);
        removed.push(s.removedVoxels / fg);
        for (let v = 1; v <= n; v++) {
          expect(countComponents(s.label.data, s.label.dims, v, 6), `${joint} subject ${i} label ${v}`).toBe(
            1,
          );
          expect(s.labelVoxels[v]).toBeGreaterThan(20);
        }
      }
      // The connectivity guard removes voxelisation debris only: at 48×48 the shoulder's thin
      // scapular blade sometimes breaks off a few percent (measured over 150 subjects, seed 3, with
      // both the old and the current PRNG: median 0, 90th percentile 0.8–1.0 %, max 7–9 %).
      for (const r of removed) expect(r).toBeLessThan(0.1);
      expect(removed.sort((a, b) => a - b)[1]).toBeLessThanOrEqual(0.005);
    });

    it(`${joint}: bones contrast with the soft tissue around them`, () => {
      for (let k = 0; k < 4; k++) {
        const s = subject(joint, k);
        const [X, Y, Z] = s.label.dims;
        const lab = s.label.data;
        const img = s.image.data;
        // shell = non-bone voxels within 2 voxels (in-plane) of a bone
        const bone: number[] = [];
        const shell: number[] = [];
        for (let z = 0; z < Z; z++) {
          for (let y = 2; y < Y - 2; y++) {
            for (let x = 2; x < X - 2; x++) {
              const i = x + X * (y + Y * z);
              if (lab[i] !== 0) {
                bone.push(img[i]);
                continue;
              }
              let near = false;
              for (let dy = -2; dy <= 2 && !near; dy++)
                for (let dx = -2; dx <= 2; dx++) if (lab[i + dx + X * dy] !== 0) near = true;
              if (near && img[i] > 0) shell.push(img[i]);
            }
          }
        }
        // Bone and shell intensities have different distributions in every joint (KS over 30
        // subjects of seed 7: ankle ≥ 0.20, knee ≥ 0.80, shoulder ≥ 0.87). Only knee and shoulder also
        // differ in mean: on T1 ankles bright fatty marrow inside a dark cortex averages close to the
        // surrounding fat and muscle (|Δmean|/sd 0.0–0.4 across subjects with either PRNG).
        expect(ks(bone, shell)).toBeGreaterThan(0.15);
        if (joint !== "ankle") {
          const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
          let all = 0;
          let sq = 0;
          for (const v of img) {
            all += v;
            sq += v * v;
          }
          const sd = Math.sqrt(sq / img.length - (all / img.length) ** 2);
          expect(Math.abs(mean(bone) - mean(shell)) / sd).toBeGreaterThan(0.25);
        }
      }
    });
  }

  it("the three joints' intensity distributions differ (two-sample KS) more than subjects of one joint do", () => {
    const per: Record<string, Float64Array[]> = {};
    for (const joint of JOINTS)
      per[joint] = [0, 1, 2, 3].map((i) => bodyIntensities(subject(joint, i).image.data));
    const within = JOINTS.map((j) => ks(pooled(per[j].slice(0, 2)), pooled(per[j].slice(2))));
    const between: number[] = [];
    for (let a = 0; a < 3; a++) {
      for (let b = a + 1; b < 3; b++) between.push(ks(pooled(per[JOINTS[a]]), pooled(per[JOINTS[b]])));
    }
    // seed 7 (src/random.ts PRNG): between 0.156–0.234, within 0.037–0.150. Over seeds 100–139 the
    // old (data/rng.ts) and the current PRNG give the same statistics: mean smallest between 0.167,
    // mean largest within 0.124; this inequality holds for 35 resp. 32 of the 40 seeds.
    for (const d of between) {
      expect(d).toBeGreaterThan(0.12);
      expect(d).toBeGreaterThan(Math.max(...within));
    }
  });

  it("writes anisotropic spacing in the paper's ranges and a per-joint orientation", () => {
    const ranges: Record<Joint, [number, number]> = {
      ankle: [1.8, 2.9],
      knee: [1.0, 1.34],
      shoulder: [2.2, 3.0],
    };
    for (const joint of JOINTS) {
      const s = subject(joint, 1);
      const [sx, sy, sz] = s.image.spacing;
      expect(sx).toBeCloseTo(sy, 10);
      expect(sz / sx).toBeGreaterThanOrEqual(ranges[joint][0]);
      expect(sz / sx).toBeLessThanOrEqual(ranges[joint][1]);
      // affine columns have the spacing as length and the image and label share the grid
      for (let c = 0; c < 3; c++) {
        const len = Math.hypot(s.image.affine[0][c], s.image.affine[1][c], s.image.affine[2][c]);
        expect(len).toBeCloseTo(s.image.spacing[c], 6);
      }
      expect(s.label.affine).toEqual(s.image.affine);
    }
  });
});
