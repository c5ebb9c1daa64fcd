/**
 * The study's networks as data (no tfjs): which variables each phase's network has for a set of
 * joints, which of them the method federates (Θ), their tensor schema and their seeded Θ_0. The
 * coordinator knows from here what every update must look like before any site sends one, and
 * serves Θ_0 in round 0; the trainer builds exactly these variables.
 */
import type { TensorSchema } from "../aggregation/strategy.js";
import type { Joint } from "../joints.js";
import type { NamedTensor } from "../model/api.js";
import {
  attUNetVariables,
  autoEncoderVariables,
  initialTensors,
  isSharedName,
  type NetSpec,
  type VariableSpec,
} from "../model/architecture.js";
import { type LabelSpec, PAPER_LABELS } from "../model/labels.js";
import { type StudyConfig, studyJoints } from "./config.js";
import { methodSpec, type Phase } from "./methods.js";

/** Label sets of the study's joints: the canonical (paper) sets, which every site must declare. */
export function studyLabels(config: StudyConfig): Partial<Record<Joint, LabelSpec>> {
  return Object.fromEntries(studyJoints(config).map((j) => [j, PAPER_LABELS[j]]));
}

/**
 * The network description of the study. `labels` are the label sets the network's heads serve
 * (every joint of the study for the "shared" method's union head; the joints trained otherwise).
 */
export function netSpec(config: StudyConfig, labels: Partial<Record<Joint, LabelSpec>>): NetSpec {
  const classes = Object.fromEntries(Object.entries(labels).map(([j, l]) => [j, l!.classes]));
  return {
    base: config.model.base,
    depth: config.model.depth,
    classes,
    sharedNorm: methodSpec(config.method).sharedNorm,
  };
}

/** Every variable of a phase's network built for `joints`. */
export function phaseVariables(
  config: StudyConfig,
  phase: Phase,
  joints: readonly Joint[],
  labels: Partial<Record<Joint, LabelSpec>>,
): VariableSpec[] {
  const net = netSpec(config, labels);
  return phase === "ae" ? autoEncoderVariables(net, joints) : attUNetVariables(net, joints);
}

/** Θ of a phase: the variables that cross the wire (none when the method federates nothing). */
export function federatedVariables(config: StudyConfig, phase: Phase): VariableSpec[] {
  const spec = methodSpec(config.method);
  if (spec.federation === "nothing" || !spec.phases.includes(phase)) return [];
  const joints = studyJoints(config);
  return phaseVariables(config, phase, joints, studyLabels(config)).filter((v) => isSharedName(v.name));
}

/** The tensor schema every update of a phase must match. */
export function federatedSchema(config: StudyConfig, phase: Phase): TensorSchema {
  return { tensors: federatedVariables(config, phase).map((v) => ({ name: v.name, shape: [...v.shape] })) };
}

/** Θ_0 of a phase: the seeded initial values every site's network also starts from. */
export function initialModel(config: StudyConfig, phase: Phase): NamedTensor[] {
  return initialTensors(federatedVariables(config, phase), config.seed);
}
