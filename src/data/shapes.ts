/**
 * Smooth implicit shapes for the phantoms: each shape is an approximate signed distance in mm
 * (negative inside) with a world-space bounding box, built from superquadrics, tapered capsules and
 * thin triangular plates, and combined with smooth union / subtraction. Distances are first-order
 * (Sampson) approximations: accurate within a few mm of the surface, which is all the renderer
 * needs (cortex, cartilage, joint spaces, partial volume).
 */

export type Vec3 = [number, number, number];
/** Row-major 3×3 rotation. */
export type Mat3 = [number, number, number, number, number, number, number, number, number];

export interface Box {
  min: Vec3;
  max: Vec3;
}

export interface Shape {
  /** Approximate signed distance (mm) at world point (x, y, z). */
  d(x: number, y: number, z: number): number;
  box: Box;
}

export const IDENTITY: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

/** Rotation from Euler angles in degrees, applied about x, then y, then z (R = Rz·Ry·Rx). */
export function rotation(ax: number, ay: number, az: number): Mat3 {
  const [a, b, c] = [ax, ay, az].map((v) => (v * Math.PI) / 180);
  const rx: Mat3 = [1, 0, 0, 0, Math.cos(a), -Math.sin(a), 0, Math.sin(a), Math.cos(a)];
  const ry: Mat3 = [Math.cos(b), 0, Math.sin(b), 0, 1, 0, -Math.sin(b), 0, Math.cos(b)];
  const rz: Mat3 = [Math.cos(c), -Math.sin(c), 0, Math.sin(c), Math.cos(c), 0, 0, 0, 1];
  return mul3(rz, mul3(ry, rx));
}

export function mul3(a: Mat3, b: Mat3): Mat3 {
  const r = new Array<number>(9).fill(0);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      r[3 * i + j] = a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
    }
  }
  return r as Mat3;
}

export function apply3(m: Mat3, v: Vec3): Vec3 {
  return [
    m[0] * v[0] + m[1] * v[1] + m[2] * v[2],
    m[3] * v[0] + m[4] * v[1] + m[5] * v[2],
    m[6] * v[0] + m[7] * v[1] + m[8] * v[2],
  ];
}

/** A rigid placement: world = R·local + t. */
export interface Pose {
  r: Mat3;
  t: Vec3;
}

/** Composes poses: (outer ∘ inner)(p) = outer(inner(p)). */
export function compose(outer: Pose, inner: Pose): Pose {
  const t = apply3(outer.r, inner.t);
  return { r: mul3(outer.r, inner.r), t: [t[0] + outer.t[0], t[1] + outer.t[1], t[2] + outer.t[2]] };
}

/** A pose that rotates by `r` about the world point `pivot`. */
export function rotateAbout(r: Mat3, pivot: Vec3): Pose {
  const rp = apply3(r, pivot);
  return { r, t: [pivot[0] - rp[0], pivot[1] - rp[1], pivot[2] - rp[2]] };
}

export function transformPoint(p: Pose, v: Vec3): Vec3 {
  const q = apply3(p.r, v);
  return [q[0] + p.t[0], q[1] + p.t[1], q[2] + p.t[2]];
}

function ellipsoidal(e1: number, e2: number): boolean {
  return e1 >= 1 && e2 >= 1;
}

function boxAround(center: Vec3, radius: number): Box {
  return {
    min: [center[0] - radius, center[1] - radius, center[2] - radius],
    max: [center[0] + radius, center[1] + radius, center[2] + radius],
  };
}

export function unionBox(a: Box, b: Box): Box {
  return {
    min: [Math.min(a.min[0], b.min[0]), Math.min(a.min[1], b.min[1]), Math.min(a.min[2], b.min[2])],
    max: [Math.max(a.max[0], b.max[0]), Math.max(a.max[1], b.max[1]), Math.max(a.max[2], b.max[2])],
  };
}

/**
 * Superquadric with semi-axes (a, b, c) along its local x, y, z, shape exponents e1 (along z) and
 * e2 (in the xy section; 1 = ellipse, < 1 boxier), centred at `center` (local) under `pose`.
 */
export function superquadric(
  pose: Pose,
  center: Vec3,
  radii: Vec3,
  e1 = 1,
  e2 = 1,
  rot: Mat3 = IDENTITY,
): Shape {
  const full = compose(pose, { r: rot, t: center });
  const r = full.r;
  const [tx, ty, tz] = full.t;
  const [a, b, c] = radii;
  const p2 = 2 / e2;
  const p1 = 2 / e1;
  const ratio = e2 / e1;
  const ellipsoid = e1 === 1 && e2 === 1;
  // a box-like superquadric reaches its corners, at |(a, b, c)| from the centre
  const box = boxAround(full.t, (ellipsoidal(e1, e2) ? Math.max(a, b, c) : Math.hypot(a, b, c)) * 1.02);
  return {
    box,
    d(x, y, z) {
      const dx = x - tx;
      const dy = y - ty;
      const dz = z - tz;
      // world → local: Rᵀ·(p − t)
      const lx = (r[0] * dx + r[3] * dy + r[6] * dz) / a;
      const ly = (r[1] * dx + r[4] * dy + r[7] * dz) / b;
      const lz = (r[2] * dx + r[5] * dy + r[8] * dz) / c;
      if (ellipsoid) {
        const g = Math.sqrt(lx * lx + ly * ly + lz * lz);
        if (g < 1e-9) return -Math.min(a, b, c);
        // ∇g (world length) = |(lx/a, ly/b, lz/c)| / g
        const gx = lx / a;
        const gy = ly / b;
        const gz = lz / c;
        const grad = Math.sqrt(gx * gx + gy * gy + gz * gz) / g;
        return (g - 1) / grad;
      }
      const ax = Math.abs(lx) + 1e-12;
      const ay = Math.abs(ly) + 1e-12;
      const az = Math.abs(lz) + 1e-12;
      const px = ax ** p2;
      const py = ay ** p2;
      const u = px + py;
      const ur = u ** ratio;
      const w = az ** p1;
      const f = ur + w;
      const g = f ** (e1 / 2);
      if (g < 1e-9) return -Math.min(a, b, c);
      // ∂f/∂l = (2/e1)·u^(ratio−1)·|l|^(p2−1) for x,y and (2/e1)|lz|^(p1−1) for z (chain 1/a etc.)
      const k = (2 / e1) * (ur / u);
      const fx = (k * px) / ax / a;
      const fy = (k * py) / ay / b;
      const fz = ((2 / e1) * w) / az / c;
      const grad = (e1 / 2) * (g / f) * Math.sqrt(fx * fx + fy * fy + fz * fz);
      return (g - 1) / grad;
    },
  };
}

/** Tapered capsule from local point p0 (radius r0) to p1 (radius r1). */
export function capsule(pose: Pose, p0: Vec3, p1: Vec3, r0: number, r1 = r0): Shape {
  const a = transformPoint(pose, p0);
  const b = transformPoint(pose, p1);
  const bx = b[0] - a[0];
  const by = b[1] - a[1];
  const bz = b[2] - a[2];
  const len2 = bx * bx + by * by + bz * bz;
  const rmax = Math.max(r0, r1);
  return {
    box: {
      min: [Math.min(a[0], b[0]) - rmax, Math.min(a[1], b[1]) - rmax, Math.min(a[2], b[2]) - rmax],
      max: [Math.max(a[0], b[0]) + rmax, Math.max(a[1], b[1]) + rmax, Math.max(a[2], b[2]) + rmax],
    },
    d(x, y, z) {
      const px = x - a[0];
      const py = y - a[1];
      const pz = z - a[2];
      let t = (px * bx + py * by + pz * bz) / len2;
      t = t < 0 ? 0 : Math.min(t, 1);
      const qx = px - t * bx;
      const qy = py - t * by;
      const qz = pz - t * bz;
      return Math.sqrt(qx * qx + qy * qy + qz * qz) - (r0 + (r1 - r0) * t);
    },
  };
}

/**
 * Thin plate: a 2D triangle (vertices in the plate's local u,v plane) with thickness `thick`
 * along the local w axis and rounded edges of radius `round`.
 */
export function trianglePlate(
  pose: Pose,
  origin: Vec3,
  rot: Mat3,
  tri: [[number, number], [number, number], [number, number]],
  thick: number,
  round = 0,
): Shape {
  const full = compose(pose, { r: rot, t: origin });
  const r = full.r;
  const [tx, ty, tz] = full.t;
  const [[x0, y0], [x1, y1], [x2, y2]] = tri;
  const e0x = x1 - x0;
  const e0y = y1 - y0;
  const e1x = x2 - x1;
  const e1y = y2 - y1;
  const e2x = x0 - x2;
  const e2y = y0 - y2;
  const s = Math.sign(e0x * e2y - e0y * e2x);
  const half = thick / 2;
  let box: Box | undefined;
  for (const [u, v] of tri) {
    for (const w of [-half, half]) {
      const p = transformPoint(full, [u, v, w]);
      const b = boxAround(p, round + 1);
      box = box === undefined ? b : unionBox(box, b);
    }
  }
  return {
    box: box as Box,
    d(x, y, z) {
      const dx = x - tx;
      const dy = y - ty;
      const dz = z - tz;
      const u = r[0] * dx + r[3] * dy + r[6] * dz;
      const v = r[1] * dx + r[4] * dy + r[7] * dz;
      const w = r[2] * dx + r[5] * dy + r[8] * dz;
      // 2D triangle SDF (Quilez)
      const v0x = u - x0;
      const v0y = v - y0;
      const v1x = u - x1;
      const v1y = v - y1;
      const v2x = u - x2;
      const v2y = v - y2;
      const t0 = clamp01((v0x * e0x + v0y * e0y) / (e0x * e0x + e0y * e0y));
      const t1 = clamp01((v1x * e1x + v1y * e1y) / (e1x * e1x + e1y * e1y));
      const t2 = clamp01((v2x * e2x + v2y * e2y) / (e2x * e2x + e2y * e2y));
      const q0x = v0x - e0x * t0;
      const q0y = v0y - e0y * t0;
      const q1x = v1x - e1x * t1;
      const q1y = v1y - e1y * t1;
      const q2x = v2x - e2x * t2;
      const q2y = v2y - e2y * t2;
      const d0 = q0x * q0x + q0y * q0y;
      const d1 = q1x * q1x + q1y * q1y;
      const d2 = q2x * q2x + q2y * q2y;
      const s0 = s * (v0x * e0y - v0y * e0x);
      const s1 = s * (v1x * e1y - v1y * e1x);
      const s2 = s * (v2x * e2y - v2y * e2x);
      const dmin = Math.min(d0, d1, d2);
      const smin = Math.min(s0, s1, s2);
      const d2d = -Math.sqrt(dmin) * Math.sign(smin) + round;
      const dw = Math.abs(w) - half;
      // extrusion: exact box-style combination
      const ox = Math.max(d2d, 0);
      const ow = Math.max(dw, 0);
      return Math.min(Math.max(d2d, dw), 0) + Math.sqrt(ox * ox + ow * ow) - round;
    },
  };
}

function clamp01(v: number): number {
  return v < 0 ? 0 : Math.min(v, 1);
}

/** Distance from a point to an axis-aligned box (0 inside): a lower bound of any distance to what it holds. */
function boxDistance(b: Box, x: number, y: number, z: number): number {
  const dx = Math.max(b.min[0] - x, 0, x - b.max[0]);
  const dy = Math.max(b.min[1] - y, 0, y - b.max[1]);
  const dz = Math.max(b.min[2] - z, 0, z - b.max[2]);
  return Math.sqrt(dx * dx + dy * dy + dz * dz);
}

/**
 * Smooth union (polynomial smooth-min with blend radius k mm). Parts whose bounding box is farther
 * than the running distance plus k cannot change the result and are not evaluated.
 */
export function union(k: number, ...shapes: Shape[]): Shape {
  let box = shapes[0].box;
  for (const s of shapes.slice(1)) box = unionBox(box, s.box);
  const fns = shapes.map((s) => s);
  const boxes = shapes.map((s) => s.box);
  const n = fns.length;
  const bd = new Float64Array(n);
  return {
    box,
    d(x, y, z) {
      // start from the part whose box is nearest
      let first = 0;
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i < n; i++) {
        bd[i] = boxDistance(boxes[i], x, y, z);
        if (bd[i] < best) {
          best = bd[i];
          first = i;
        }
      }
      let d = fns[first].d(x, y, z);
      for (let i = 0; i < n; i++) {
        if (i === first || bd[i] > d + k) continue;
        const e = fns[i].d(x, y, z);
        if (k <= 0) {
          if (e < d) d = e;
          continue;
        }
        const h = Math.max(k - Math.abs(d - e), 0) / k;
        d = Math.min(d, e) - h * h * k * 0.25;
      }
      return d;
    },
  };
}

/** `a` minus `b` (b's inside removed from a). */
export function subtract(a: Shape, b: Shape): Shape {
  return {
    box: a.box,
    d(x, y, z) {
      const da = a.d(x, y, z);
      const db = b.d(x, y, z);
      return Math.max(da, -db);
    },
  };
}

/** Grows (r > 0) or shrinks a shape by r mm. */
export function offset(a: Shape, r: number): Shape {
  return {
    box: {
      min: [a.box.min[0] - r, a.box.min[1] - r, a.box.min[2] - r],
      max: [a.box.max[0] + r, a.box.max[1] + r, a.box.max[2] + r],
    },
    d: (x, y, z) => a.d(x, y, z) - r,
  };
}
