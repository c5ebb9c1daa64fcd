import { fjError } from "../errors.js";
import { JOINTS, type Joint, jointLabelNames } from "../joints.js";

/**
 * Label set of one joint (domain): class names indexed by label value, background first.
 * `classes` = |C_k| + 1 is the width of that joint's output head.
 */
export interface LabelSpec {
  /** names[v] is the name of label value v; names[0] is the background. */
  names: string[];
  classes: number;
}

/**
 * Label set from a dataset.json `labels` object (`{"background": 0, "femur": 1, …}`, nnU-Net v2).
 * Values must be the integers 0..n−1 without gaps, 0 being the background; `source` names the
 * file in the error message.
 */
export function labelSpecFromDatasetJson(
  labels: Record<string, unknown>,
  source = "dataset.json",
): LabelSpec {
  const entries = Object.entries(labels);
  const names: string[] = [];
  for (const [name, value] of entries) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 255) {
      throw fjError(
        "FJ_MODEL_LABELS",
        `${source}: labels.${name} is ${JSON.stringify(value)}, expected an integer 0–255`,
      );
    }
    if (names[value] !== undefined) {
      throw fjError(
        "FJ_MODEL_LABELS",
        `${source}: labels ${names[value]} and ${name} share the value ${value}`,
      );
    }
    names[value] = name;
  }
  for (let v = 0; v < names.length; v++) {
    if (names[v] === undefined) {
      throw fjError(
        "FJ_MODEL_LABELS",
        `${source}: label values must be 0..${names.length - 1} without gaps, ${v} is missing`,
      );
    }
  }
  if (names.length < 2)
    throw fjError("FJ_MODEL_LABELS", `${source}: expected background (0) and at least one structure`);
  return { names, classes: names.length };
}

/** The joints' label sets of the paper (and of `fedjoint synth` phantoms), from src/joints.ts. */
export const PAPER_LABELS: Readonly<Record<Joint, LabelSpec>> = Object.fromEntries(
  JOINTS.map((j) => {
    const names = jointLabelNames(j);
    return [j, { names, classes: names.length }];
  }),
) as Record<Joint, LabelSpec>;

/**
 * The "shared" baseline's union label space: background + every joint's structures with distinct
 * labels (paper §3.2.1), joints in canonical order (ankle, knee, shoulder). Joint k's label v > 0
 * becomes `offset[k] + v`.
 */
export interface UnionLabels {
  classes: number;
  names: string[];
  offset: Partial<Record<Joint, number>>;
}

export function unionLabels(labels: Readonly<Partial<Record<Joint, LabelSpec>>>): UnionLabels {
  const names = ["background"];
  const offset: Partial<Record<Joint, number>> = {};
  for (const j of JOINTS) {
    const spec = labels[j];
    if (!spec) continue;
    offset[j] = names.length - 1;
    for (let v = 1; v < spec.classes; v++) names.push(`${j}/${spec.names[v]}`);
  }
  return { classes: names.length, names, offset };
}
