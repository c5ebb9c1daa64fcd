/**
 * Joint anatomy for the phantoms: each builder places the labelled bones (in label order), some
 * unlabelled neighbouring bones, the body outline and soft-tissue structures, in world mm with the
 * axes of the voxel grid (x = image column, y = image row pointing down, z = slice).
 *
 * - ankle, sagittal: x anterior, y inferior, z lateral — calcaneus, talus, distal tibia
 *   (+ fibula, navicular, cuboid unlabelled)
 * - knee, coronal: x lateral, y inferior, z anterior — distal femur, proximal fibula, patella,
 *   proximal tibia
 * - shoulder, axial: x lateral, y posterior, z superior — humerus, scapula with a thin blade,
 *   spine, acromion, coracoid (+ clavicle unlabelled, lung)
 */
import { boneLabel, type Joint } from "../joints.js";
import { normal, type Random, uniform } from "../random.js";
import {
  capsule,
  compose,
  type Mat3,
  offset,
  type Pose,
  rotateAbout,
  rotation,
  type Shape,
  subtract,
  superquadric,
  transformPoint,
  trianglePlate,
  union,
  type Vec3,
} from "./shapes.js";

export type Tissue =
  | "air"
  | "fat"
  | "muscle"
  | "tendon"
  | "fluid"
  | "cartilage"
  | "cortex"
  | "marrow"
  | "physis";

/** A planar growth plate inside a bone: |n·p − c| < thickness/2 (n unit, world). */
export interface Physis {
  normal: Vec3;
  point: Vec3;
  thickness: number;
}

export interface BoneModel {
  name: string;
  /** 1..n for labelled bones, 0 for neighbouring bones that are rendered but not labelled. */
  label: number;
  shape: Shape;
  physis?: Physis;
}

export interface Structure {
  tissue: Tissue;
  shape: Shape;
}

export interface JointModel {
  bones: BoneModel[];
  body: Shape;
  structures: Structure[];
  /** Subcutaneous fat thickness (mm). */
  fat: number;
  /** Articular cartilage thickness (mm) and the joint-space gap carved between bones (mm). */
  cartilage: number;
  gap: number;
  cortex: number;
}

export interface SubjectAnatomy {
  joint: Joint;
  age: number;
  /** Global size factor (1 = adolescent/adult-like). */
  scale: number;
}

/** Joint-specific acquisition geometry. */
export const JOINT_GEOMETRY: Record<
  Joint,
  {
    /** In-plane field of view (mm) for scale 1. */
    fov: number;
    /** Slice spacing / in-plane spacing, the anisotropy range of the paper's cohort (§3.1). */
    anisotropy: [number, number];
    /** Through-plane extent of the anatomy of interest (mm) at scale 1. */
    extentZ: number;
    /** Direction cosines (RAS) of the voxel x, y, z axes (columns). */
    directions: [Vec3, Vec3, Vec3];
    ages: [number, number];
  }
> = {
  // ankle 0.25×0.25×0.50 – 0.28×0.28×0.80 mm: slice/in-plane 1.8–2.9
  ankle: {
    fov: 125,
    anisotropy: [1.8, 2.9],
    extentZ: 55,
    directions: [
      [0, 1, 0],
      [0, 0, -1],
      [1, 0, 0],
    ],
    ages: [7, 13],
  },
  // knee 0.47×0.47×0.5 – 0.625×0.625×0.63 mm: 0.8–1.34
  knee: {
    fov: 160,
    anisotropy: [1.0, 1.34],
    extentZ: 80,
    directions: [
      [1, 0, 0],
      [0, 0, -1],
      [0, 1, 0],
    ],
    ages: [13, 18],
  },
  // shoulder 0.24×0.24×0.60 – 0.37×0.37×1.00 mm: 1.6–4.2, typical 2.5–2.7
  shoulder: {
    fov: 175,
    anisotropy: [2.2, 3.0],
    extentZ: 150,
    directions: [
      [1, 0, 0],
      [0, -1, 0],
      [0, 0, 1],
    ],
    ages: [5, 17],
  },
};

export function scaleForAge(joint: Joint, age: number): number {
  switch (joint) {
    case "ankle":
      return 0.74 + 0.035 * (age - 7);
    case "knee":
      return 0.9 + 0.022 * (age - 13);
    case "shoulder":
      return 0.64 + 0.032 * (age - 5);
  }
}

/** A jittered value: v·(1 + f·N(0,1)) with the normal clipped to ±2. */
function jit(rand: Random, v: number, f = 0.06): number {
  const n = Math.max(-2, Math.min(2, normal(rand)));
  return v * (1 + f * n);
}

function physisThickness(age: number): number {
  return Math.max(0.7, Math.min(2.6, 2.8 - 0.13 * (age - 5)));
}

export function buildJoint(joint: Joint, rand: Random, subject: SubjectAnatomy, pixel: number): JointModel {
  switch (joint) {
    case "ankle":
      return buildAnkle(rand, subject, pixel);
    case "knee":
      return buildKnee(rand, subject, pixel);
    case "shoulder":
      return buildShoulder(rand, subject, pixel);
  }
}

/** Random global pose: in-plane rotation, small out-of-plane tilt and a shift. */
function globalPose(rand: Random, inPlaneDeg: number, tiltDeg: number, shift: number, base: Vec3): Pose {
  const r = rotation(
    uniform(rand, -tiltDeg, tiltDeg),
    uniform(rand, -tiltDeg, tiltDeg),
    uniform(rand, -inPlaneDeg, inPlaneDeg),
  );
  return {
    r,
    t: [
      base[0] + uniform(rand, -shift, shift),
      base[1] + uniform(rand, -shift, shift),
      base[2] + uniform(rand, -shift / 2, shift / 2),
    ],
  };
}

function planeIn(pose: Pose, normal: Vec3, point: Vec3, thickness: number): Physis {
  const n = transformPoint({ r: pose.r, t: [0, 0, 0] }, normal);
  const len = Math.hypot(n[0], n[1], n[2]);
  return { normal: [n[0] / len, n[1] / len, n[2] / len], point: transformPoint(pose, point), thickness };
}

function common(subject: SubjectAnatomy, rand: Random, pixel: number) {
  const cart = jit(rand, 1.4 + 0.09 * Math.max(0, 17 - subject.age), 0.1);
  return {
    cartilage: cart,
    gap: Math.max(2 * cart + 0.6, 1.2 * pixel),
    cortex: Math.max(jit(rand, 0.9 + 0.07 * subject.age, 0.1), 0.8 * pixel),
    fat: jit(rand, 5, 0.25),
  };
}

function buildAnkle(rand: Random, subject: SubjectAnatomy, pixel: number): JointModel {
  const s = subject.scale;
  const pose = globalPose(rand, 8, 4, 6, [0, -4 * s, 0]);
  const c = common(subject, rand, pixel);
  // plantar/dorsiflexion of the foot about the talar dome
  const dome: Vec3 = [2 * s, 7 * s, 0];
  const flex = compose(pose, rotateAbout(rotation(0, 0, uniform(rand, -12, 12)), dome));
  const J = (v: number) => jit(rand, v * s, 0.07);

  const talusDome = superquadric(flex, [2 * s, 8 * s, 0], [J(17), J(9.5), J(14)], 0.8, 0.9);
  const talus = union(
    5 * s,
    talusDome,
    capsule(flex, [6 * s, 9 * s, 0], [22 * s, 13 * s, 1 * s], J(8), J(9)),
    superquadric(flex, [24 * s, 14 * s, 1 * s], [J(8), J(8.5), J(10)]),
  );
  const tibiaRaw = union(
    6 * s,
    capsule(pose, [0, -260, 0], [1 * s, -26 * s, 0], J(11), J(12)),
    superquadric(pose, [1.5 * s, -16 * s, 0], [J(17), J(12), J(15)], 0.7, 0.9),
    superquadric(pose, [2 * s, -8.5 * s, 0], [J(16), J(5.5), J(14)], 0.5, 0.8),
    capsule(pose, [2 * s, -10 * s, -11 * s], [3 * s, 5 * s, -13 * s], J(5), J(4)),
  );
  // the plafond wraps the talar dome
  const tibia = subtract(tibiaRaw, offset(talusDome, c.gap));
  const calcRot: Mat3 = rotation(0, 0, jit(rand, -14, 0.2));
  const calcaneus = union(
    7 * s,
    superquadric(flex, [-8 * s, 24 * s, 1 * s], [J(27), J(11), J(12)], 0.7, 0.85, calcRot),
    superquadric(flex, [-30 * s, 27 * s, 0], [J(9), J(12), J(11)]),
    capsule(flex, [0, 16 * s, -9 * s], [8 * s, 17 * s, -13 * s], J(4)),
  );
  const fibula = union(
    5 * s,
    capsule(pose, [-6 * s, -260, 17 * s], [-5 * s, 0, 18 * s], J(7), J(6)),
    superquadric(pose, [-4 * s, 1 * s, 18 * s], [J(6), J(10), J(6)]),
  );
  const navicular = superquadric(flex, [36 * s, 15 * s, -2 * s], [J(5), J(10), J(11)]);
  const cuboid = superquadric(flex, [27 * s, 23 * s, 9 * s], [J(8), J(8), J(9)], 0.8, 0.8);
  const t = physisThickness(subject.age);
  const bones: BoneModel[] = [
    {
      name: "calcaneus",
      label: boneLabel("ankle", "calcaneus"),
      shape: calcaneus,
      physis: planeIn(flex, [1, -0.2, 0], [-27 * s, 27 * s, 0], t * 0.8),
    },
    { name: "talus", label: boneLabel("ankle", "talus"), shape: talus },
    {
      name: "tibia",
      label: boneLabel("ankle", "tibia"),
      shape: tibia,
      physis: planeIn(pose, [0, 1, 0], [0, -12.5 * s, 0], t),
    },
    { name: "fibula", label: 0, shape: fibula, physis: planeIn(pose, [0, 1, 0], [0, -9 * s, 0], t) },
    { name: "navicular", label: 0, shape: navicular },
    { name: "cuboid", label: 0, shape: cuboid },
  ];
  const body = union(
    14 * s,
    capsule(pose, [-6 * s, -300, 2 * s], [-6 * s, 12 * s, 2 * s], J(31)),
    superquadric(flex, [24 * s, 30 * s, 2 * s], [J(62), J(19), J(36)], 0.6, 0.8),
    superquadric(flex, [-28 * s, 30 * s, 2 * s], [J(19), J(16), J(27)]),
  );
  const structures: Structure[] = [
    { tissue: "fat", shape: superquadric(pose, [-20 * s, -10 * s, 0], [J(8), J(18), J(13)]) },
    { tissue: "fat", shape: superquadric(flex, [-18 * s, 42 * s, 2 * s], [J(20), J(5), J(22)]) },
    { tissue: "tendon", shape: capsule(pose, [-29 * s, -260, 0], [-32 * s, 24 * s, 0], J(5), J(4)) },
    { tissue: "tendon", shape: capsule(pose, [19 * s, -260, -4 * s], [24 * s, -6 * s, -4 * s], J(2.8)) },
    { tissue: "tendon", shape: capsule(pose, [-14 * s, -260, -16 * s], [-10 * s, 14 * s, -18 * s], J(2.5)) },
    { tissue: "fluid", shape: superquadric(pose, [12 * s, -4 * s, 0], [J(5), J(3), J(10)]) },
  ];
  return { bones, body, structures, ...c };
}

function buildKnee(rand: Random, subject: SubjectAnatomy, pixel: number): JointModel {
  const s = subject.scale;
  const pose = globalPose(rand, 6, 4, 6, [0, 0, 0]);
  const c = common(subject, rand, pixel);
  const J = (v: number) => jit(rand, v * s, 0.06);
  const flexDeg = uniform(rand, -3, 15);
  const leg = compose(pose, rotateAbout(rotation(flexDeg, 0, uniform(rand, -4, 4)), [0, 2 * s, -4 * s]));
  const t = physisThickness(subject.age);

  const femur = union(
    8 * s,
    capsule(pose, [0, -300, -3 * s], [0, -44 * s, -3 * s], J(13)),
    superquadric(pose, [0, -28 * s, -2 * s], [J(30), J(17), J(24)], 0.8, 0.8),
    superquadric(pose, [-18 * s, -11 * s, -4 * s], [J(14), J(13), J(24)]),
    superquadric(pose, [17 * s, -11 * s, -4 * s], [J(13.5), J(12.5), J(23)]),
    superquadric(pose, [0, -19 * s, 12 * s], [J(21), J(11), J(10)]),
  );
  const tibia = union(
    7 * s,
    superquadric(leg, [0, 12 * s, -4 * s], [J(36), J(7), J(26)], 0.5, 0.8),
    superquadric(leg, [0, 7 * s, -4 * s], [J(6), J(4), J(8)]),
    superquadric(leg, [0, 24 * s, -6 * s], [J(27), J(13), J(22)], 0.8, 0.9),
    capsule(leg, [0, 30 * s, -8 * s], [0, 300, -10 * s], J(12)),
    superquadric(leg, [0, 31 * s, 12 * s], [J(9), J(10), J(6)]),
  );
  const fibula = union(
    5 * s,
    superquadric(leg, [33 * s, 28 * s, -17 * s], [J(10), J(11), J(10)]),
    capsule(leg, [33 * s, 31 * s, -17 * s], [30 * s, 300, -15 * s], J(7.5), J(6.5)),
  );
  const patY = -14 * s + flexDeg * 0.35 * s;
  const patella = superquadric(
    pose,
    [0, patY, 33 * s - flexDeg * 0.15 * s],
    [J(19), J(21), J(8.5)],
    0.8,
    0.9,
    rotation(-flexDeg * 0.5, 0, 0),
  );
  const bones: BoneModel[] = [
    {
      name: "femur",
      label: boneLabel("knee", "femur"),
      shape: femur,
      physis: planeIn(pose, [0, 1, 0.1], [0, -23 * s, 0], t),
    },
    {
      name: "fibula",
      label: boneLabel("knee", "fibula"),
      shape: fibula,
      physis: planeIn(leg, [0, 1, 0], [0, 34 * s, 0], t * 0.8),
    },
    { name: "patella", label: boneLabel("knee", "patella"), shape: patella },
    {
      name: "tibia",
      label: boneLabel("knee", "tibia"),
      shape: tibia,
      physis: planeIn(leg, [0, 1, -0.1], [0, 18 * s, 0], t),
    },
  ];
  const body = superquadric(pose, [0, 0, 0], [J(52), 400, J(50)], 0.25, 1);
  const structures: Structure[] = [
    { tissue: "tendon", shape: capsule(leg, [0, 5 * s, 40 * s], [0, 31 * s, 19 * s], J(4), J(3.5)) },
    { tissue: "tendon", shape: capsule(pose, [0, -34 * s, 37 * s], [0, -90 * s, 30 * s], J(5)) },
    { tissue: "fat", shape: superquadric(leg, [0, 8 * s, 27 * s], [J(18), J(9), J(7)]) },
    { tissue: "fat", shape: superquadric(pose, [0, -5 * s, -37 * s], [J(15), J(30), J(7)]) },
    { tissue: "fluid", shape: superquadric(pose, [0, -42 * s, 23 * s], [J(16), J(11), J(3)]) },
    { tissue: "tendon", shape: capsule(pose, [-39 * s, -18 * s, -4 * s], [-37 * s, 30 * s, -4 * s], J(2.4)) },
    { tissue: "tendon", shape: capsule(pose, [38 * s, -14 * s, -6 * s], [34 * s, 25 * s, -16 * s], J(2.4)) },
    { tissue: "fat", shape: superquadric(pose, [-30 * s, -70 * s, 20 * s], [J(10), J(30), J(10)]) },
  ];
  return { bones, body, structures, ...c };
}

function buildShoulder(rand: Random, subject: SubjectAnatomy, pixel: number): JointModel {
  const s = subject.scale;
  const pose = globalPose(rand, 8, 4, 6, [-12 * s, 0, 10 * s]);
  const c = common(subject, rand, pixel);
  const J = (v: number) => jit(rand, v * s, 0.06);
  const t = physisThickness(subject.age);
  // humerus abduction / rotation about the head centre
  const head: Vec3 = [22 * s, 2 * s, 0];
  const arm = compose(pose, rotateAbout(rotation(0, uniform(rand, -10, 10), uniform(rand, -15, 15)), head));

  const headShape = superquadric(arm, head, [J(20), J(21), J(22)]);
  const humerus = union(
    7 * s,
    headShape,
    superquadric(arm, [38 * s, -2 * s, -6 * s], [J(8), J(11), J(12)]),
    superquadric(arm, [30 * s, -15 * s, -8 * s], [J(6), J(6), J(8)]),
    capsule(arm, [30 * s, 0, -12 * s], [37 * s, 2 * s, -300], J(14), J(11)),
  );
  // scapular plane: ~35° anterior to coronal, blade running medially and posteriorly
  const ang = (jit(rand, 35, 0.12) * Math.PI) / 180;
  const u: Vec3 = [-Math.cos(ang), Math.sin(ang), 0];
  const v: Vec3 = [0, 0, 1];
  const w: Vec3 = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
  const plateRot: Mat3 = [u[0], v[0], w[0], u[1], v[1], w[1], u[2], v[2], w[2]];
  const neck: Vec3 = [-14 * s, 5 * s, 0];
  const platePose = compose(pose, { r: plateRot, t: neck });
  const P = (pu: number, pv: number, pw = 0): Vec3 => transformPoint({ r: plateRot, t: neck }, [pu, pv, pw]);
  const blade = Math.max(jit(rand, 4 * s, 0.1), 1.5 * pixel);
  const glenoid = subtract(
    superquadric(pose, [-4 * s, 1 * s, 0], [J(8), J(13), J(17)], 0.7, 0.8),
    offset(headShape, c.gap),
  );
  // blade triangle in the scapular plane (u medial from the neck, v superior): neck, superior
  // angle, inferior angle
  const triA: [number, number] = [2 * s, 12 * s];
  const triB: [number, number] = [J(85), J(28)];
  const triC: [number, number] = [J(72), -J(110)];
  const spineMedial = P(J(80), J(22), 4 * s);
  const spineLateral: Vec3 = [-10 * s, 18 * s, 24 * s];
  const acromion: Vec3 = [20 * s, 10 * s, 33 * s];
  const scapula = union(
    5 * s,
    glenoid,
    capsule(pose, [-4 * s, 1 * s, 0], neck, J(9), J(8)),
    trianglePlate(pose, neck, plateRot, [triA, triB, triC], blade, 1),
    // thicker lateral border along the blade edge from the neck to the inferior angle
    capsule(
      platePose,
      [triA[0] + 0.1 * (triC[0] - triA[0]), triA[1] + 0.1 * (triC[1] - triA[1]), 0],
      [triC[0], triC[1], 0],
      Math.max(J(4), blade * 0.8),
      Math.max(J(2.5), blade * 0.6),
    ),
    capsule(pose, spineMedial, spineLateral, J(4.5), J(6)),
    capsule(pose, spineLateral, acromion, J(6), J(5)),
    superquadric(pose, acromion, [J(15), J(11), J(4.5)], 0.6, 0.9, rotation(0, -10, 20)),
    capsule(pose, [-10 * s, -2 * s, 14 * s], [6 * s, -28 * s, 16 * s], J(5.5), J(4.5)),
    superquadric(pose, [10 * s, -33 * s, 12 * s], [J(6), J(5), J(5)]),
  );
  const clavicle = capsule(pose, [-90 * s, -24 * s, 46 * s], [16 * s, -2 * s, 42 * s], J(7), J(6));
  const bones: BoneModel[] = [
    {
      name: "humerus",
      label: boneLabel("shoulder", "humerus"),
      shape: humerus,
      physis: planeIn(arm, [-0.35, 0, 1], [28 * s, 0, -13 * s], t),
    },
    { name: "scapula", label: boneLabel("shoulder", "scapula"), shape: scapula },
    { name: "clavicle", label: 0, shape: clavicle },
  ];
  const body = union(
    24 * s,
    superquadric(pose, [-70 * s, 6 * s, -40 * s], [J(80), J(66), 220], 0.3, 0.9),
    capsule(pose, [32 * s, 2 * s, 8 * s], [44 * s, 4 * s, -300], J(40), J(34)),
    superquadric(pose, [18 * s, 4 * s, 12 * s], [J(50), J(46), J(44)]),
  );
  const structures: Structure[] = [
    { tissue: "air", shape: superquadric(pose, [-125 * s, -8 * s, -40 * s], [J(48), J(55), J(100)]) },
    { tissue: "tendon", shape: capsule(pose, [0, 8 * s, 27 * s], [38 * s, 2 * s, 19 * s], J(4)) },
    { tissue: "tendon", shape: capsule(arm, [30 * s, -17 * s, 14 * s], [35 * s, -19 * s, -70 * s], J(2.6)) },
    { tissue: "tendon", shape: capsule(pose, P(30 * s, -40 * s, -9 * s), [4 * s, -14 * s, -4 * s], J(3)) },
    { tissue: "fat", shape: capsule(pose, P(60 * s, -70 * s, 14 * s), P(20 * s, 10 * s, 14 * s), J(3.5)) },
    { tissue: "fat", shape: capsule(pose, [-20 * s, -30 * s, -30 * s], [10 * s, -44 * s, 10 * s], J(4)) },
    { tissue: "fluid", shape: superquadric(arm, [44 * s, 6 * s, 16 * s], [J(4), J(14), J(8)]) },
  ];
  return { bones, body, structures, ...c };
}
