/**
 * Can the model handle this exam? A 2D network sees each slice resized to size × size: it works
 * on exams whose field of view in the slice plane is close to that of its training exams (the
 * bones then have the size in pixels it learnt), sliced along the same axis. The check compares an
 * exam's grid with the training geometry its model directory records (src/model/model-dir.ts).
 */
import { fjError } from "../errors.js";
import type { Joint } from "../joints.js";
import { examGeometry, type TrainingGeometry } from "../model/model-dir.js";

/** An exam may be this factor larger or smaller than the training range (field of view, slice ratio). */
export const GEOMETRY_TOLERANCE = 1.5;

/** Smallest in-plane side (voxels) a slice may have. */
const MIN_SIDE = 2;

const mm = (x: number) => x.toFixed(1);

/**
 * Throws FJ_SEGMENT_GEOMETRY (naming the file) when the exam's in-plane field of view is outside
 * the training range ×/÷ GEOMETRY_TOLERANCE, when its slices are much thinner relative to its
 * pixels than the training exams' were (a sign that it was acquired along another axis), or when a
 * slice would have fewer than 2 voxels on a side.
 */
export function checkGeometry(
  file: string,
  dims: readonly [number, number, number],
  spacing: readonly [number, number, number],
  trained: TrainingGeometry,
  joint: Joint,
): void {
  const axis = trained.sliceAxis;
  const [c, r] = ([0, 1, 2] as const).filter((a) => a !== axis);
  const fail = (detail: string) => {
    throw fjError("FJ_SEGMENT_GEOMETRY", detail, { file });
  };
  if (dims[c] < MIN_SIDE || dims[r] < MIN_SIDE) {
    fail(
      `slices along axis ${axis} are ${dims[c]}×${dims[r]} voxels, expected at least ${MIN_SIDE}×${MIN_SIDE}`,
    );
  }
  const g = examGeometry(dims, spacing, axis);
  const t = GEOMETRY_TOLERANCE;
  const { min, max } = trained.fovMm;
  const inside = [0, 1].every((i) => g.fovMm[i] >= min[i] / t && g.fovMm[i] <= max[i] * t);
  if (!inside) {
    fail(
      `field of view ${mm(g.fovMm[0])}×${mm(g.fovMm[1])} mm in the slice plane (${dims[c]}×${dims[r]} voxels of ${spacing[c]}×${spacing[r]} mm), ` +
        `the ${joint} model was trained on ${mm(min[0])}–${mm(max[0])} × ${mm(min[1])}–${mm(max[1])} mm (accepted ×/÷ ${t})`,
    );
  }
  const ratio = trained.throughPlaneRatio.min / t;
  if (g.throughPlaneRatio < ratio) {
    fail(
      `slice spacing ${spacing[axis]} mm along axis ${axis} is ${g.throughPlaneRatio.toFixed(2)}× the in-plane spacing, ` +
        `the ${joint} model's training exams had ≥ ${trained.throughPlaneRatio.min.toFixed(2)}× (accepted down to ${ratio.toFixed(2)}×): ` +
        `the exam looks acquired along another axis`,
    );
  }
}
