/**
 * The joint-and-label vocabulary of the project, in one tfjs-free module that the model, the data
 * layer, evaluation and the study config all import: the joints (one domain each) and, per joint,
 * the bones the paper segments (paper §3.1), in label order — bone i has label value i + 1, 0 is the
 * background. Phantoms (`fedjoint synth`) write exactly these labels.
 */

/** Joints the method knows (one domain each), in canonical order. */
export const JOINTS = ["ankle", "knee", "shoulder"] as const;
export type Joint = (typeof JOINTS)[number];

/** The background's name and value in every label set (nnU-Net v2 `dataset.json`). */
export const BACKGROUND = "background";

/** Bones per joint in label order: `JOINT_BONES[j][i]` has label value i + 1. */
export const JOINT_BONES = {
  ankle: ["calcaneus", "talus", "tibia"],
  knee: ["femur", "fibula", "patella", "tibia"],
  shoulder: ["humerus", "scapula"],
} as const satisfies Record<Joint, readonly string[]>;

/** A bone segmented at joint J. */
export type Bone<J extends Joint> = (typeof JOINT_BONES)[J][number];

/** Label value of a bone: its position in `JOINT_BONES[joint]` + 1. */
export function boneLabel<J extends Joint>(joint: J, bone: Bone<J>): number {
  return (JOINT_BONES[joint] as readonly string[]).indexOf(bone) + 1;
}

export function isJoint(value: unknown): value is Joint {
  return typeof value === "string" && (JOINTS as readonly string[]).includes(value);
}

/** Label names indexed by value, background first: `["background", "femur", …]`. */
export function jointLabelNames(joint: Joint): string[] {
  return [BACKGROUND, ...JOINT_BONES[joint]];
}

/** The `labels` object of a dataset.json: `{ background: 0, femur: 1, … }`. */
export function jointLabels(joint: Joint): Record<string, number> {
  return Object.fromEntries(jointLabelNames(joint).map((name, value) => [name, value]));
}
