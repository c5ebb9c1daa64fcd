/**
 * `fedjoint segment` on one exam, as a site evaluates its test exam (src/site-client/client.ts):
 * read the NIfTI (any datatype the data layer reads), slice it along the model's slice axis,
 * z-score per volume and resize to the network's input (src/data/slices.ts `sliceVolume`, the
 * training slicing), predict (src/model/predict.ts), stack the labels back onto the exam's grid
 * (src/eval/stack.ts), post-process as the paper does (largest 3D component per bone, closing with
 * a 5×5×5 ball: src/eval/postprocess.ts `postprocessLabelMap`) and write a uint8 label map with the
 * input's affine and header (qform, sform and their codes kept), so that ITK-SNAP, 3D Slicer and
 * nibabel show it in place over the exam. Nothing leaves the machine.
 */
import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import {
  isNiftiHeaderInfo,
  isNiftiPath,
  type NiftiHeader,
  type NiftiHeaderInfo,
  readNiftiHeader,
  readNiftiRaw,
  writeNifti,
} from "../data/nifti.js";
import { sliceVolume } from "../data/slices.js";
import { fjError } from "../errors.js";
import { postprocessLabelMap } from "../eval/postprocess.js";
import { stackLabels } from "../eval/stack.js";
import type { Joint } from "../joints.js";
import { type Logger, silentLogger } from "../log.js";
import type { ModelDir } from "../model/model-dir.js";
import { checkGeometry } from "./geometry.js";
import type { SegmentationNetwork } from "./network.js";

/** One exam to segment and where its label map goes. */
export interface ExamJob {
  image: string;
  out: string;
}

export interface SegmentExamOptions {
  /** The paper's post-processing (default) or none: the stacked argmax labels as they are. */
  postprocess: boolean;
  /** Segment even when the exam's geometry is outside the training range (logged as a warning). */
  ignoreGeometry?: boolean;
  /** Replace an existing output file. */
  overwrite?: boolean;
  /** Called after each forward pass: slices done, slices in the exam. */
  onProgress?: (done: number, total: number) => void;
  log?: Logger;
}

/** A bone of the written label map: its label value, voxel count and volume (local output only). */
export interface BoneVolume {
  label: number;
  voxels: number;
  volumeMm3: number;
}

export interface ExamSegmentation {
  image: string;
  out: string;
  dims: [number, number, number];
  spacing: [number, number, number];
  slices: number;
  postprocess: "paper" | "none";
  bones: Record<string, BoneVolume>;
  seconds: { read: number; predict: number; postprocess: number; write: number; total: number };
}

/** NIFTI_INTENT_LABEL: the volume's values are label indices. */
const INTENT_LABEL = 1002;

/**
 * Everything that can be refused before any computation: the image is a readable 3D NIfTI (a 4-D
 * image is refused by the data layer, FJ_DATA_NIFTI_DIMS), its geometry suits the model, and the
 * output is a NIfTI path that is not the input and does not exist (unless `overwrite`).
 */
export async function checkExam(
  model: ModelDir,
  joint: Joint,
  job: ExamJob,
  options: Pick<SegmentExamOptions, "ignoreGeometry" | "overwrite" | "log">,
): Promise<NiftiHeader> {
  if (!isNiftiPath(job.out)) {
    throw fjError("FJ_DATA_NIFTI_PATH", "expected an output file name ending in .nii or .nii.gz", {
      file: job.out,
    });
  }
  if (path.resolve(job.out) === path.resolve(job.image)) {
    throw fjError("FJ_SEGMENT_OUTPUT_EXISTS", "is the input image: the label map must go to another file", {
      file: job.out,
    });
  }
  const header = await readNiftiHeader(job.image);
  const trained = model.card.geometry[joint]!;
  try {
    checkGeometry(job.image, header.dims, header.spacing, trained, joint);
  } catch (err) {
    if (!options.ignoreGeometry) throw err;
    (options.log ?? silentLogger).warn(
      { image: job.image, reason: (err as Error).message },
      "segmenting outside the model's training geometry (--ignore-geometry)",
    );
  }
  if (!options.overwrite) {
    const exists = await stat(job.out).then(
      () => true,
      () => false,
    );
    if (exists) {
      throw fjError("FJ_SEGMENT_OUTPUT_EXISTS", "exists (pass --overwrite to replace it)", { file: job.out });
    }
  }
  return header;
}

/**
 * The label volume of one exam on its own grid: slices → network → stacked labels → the paper's
 * post-processing (or none). Pure apart from the network; the site's test exam goes through the
 * same steps.
 */
export async function labelExam(
  net: SegmentationNetwork,
  image: Parameters<typeof sliceVolume>[0],
  options: { postprocess: boolean; file?: string; onProgress?: (done: number, total: number) => void },
): Promise<{ labels: Uint8Array; slices: number; predictSeconds: number; postprocessSeconds: number }> {
  const card = net.model.card;
  const size = card.input.size;
  const axis = card.input.sliceAxis;
  const t0 = performance.now();
  const { images, count } = sliceVolume(image, { size, axis, file: options.file });
  const pred = await net.predict(images, options.onProgress);
  const px = size * size;
  const planes = Array.from({ length: count }, (_, i) => pred.subarray(i * px, (i + 1) * px));
  const raw = stackLabels(planes, { dims: image.dims, trainSize: [size, size], axis });
  const t1 = performance.now();
  const values = net.labels.names.map((_, v) => v).filter((v) => v !== 0);
  const pp = card.postprocess;
  const labels = options.postprocess
    ? postprocessLabelMap(raw, image.dims, values, {
        largestComponent: pp.largestComponent,
        componentConnectivity: pp.connectivity,
        closingRadius: pp.closingRadius,
      })
    : raw;
  const t2 = performance.now();
  return {
    labels,
    slices: count,
    predictSeconds: (t1 - t0) / 1000,
    postprocessSeconds: (t2 - t1) / 1000,
  };
}

/** Segments one exam and writes its label map (atomically: a complete file or none). */
export async function segmentExam(
  net: SegmentationNetwork,
  job: ExamJob,
  options: SegmentExamOptions,
): Promise<ExamSegmentation> {
  const t0 = performance.now();
  await checkExam(net.model, net.joint, job, options);
  const image = await readNiftiRaw(job.image);
  const tRead = performance.now();
  const r = await labelExam(net, image, {
    postprocess: options.postprocess,
    file: job.image,
    onProgress: options.onProgress,
  });
  const tWrite = performance.now();
  const counts = new Float64Array(256);
  for (let i = 0; i < r.labels.length; i++) counts[r.labels[i]]++;
  const voxelMm3 = image.spacing[0] * image.spacing[1] * image.spacing[2];
  const bones: Record<string, BoneVolume> = {};
  net.labels.names.forEach((name, value) => {
    if (value === 0) return;
    bones[name] = { label: value, voxels: counts[value], volumeMm3: counts[value] * voxelMm3 };
  });
  await mkdir(path.dirname(path.resolve(job.out)), { recursive: true });
  await writeNifti(
    job.out,
    {
      dims: image.dims,
      spacing: image.spacing,
      data: Float32Array.from(r.labels),
      affine: image.affine,
      datatype: "uint8",
      header: labelHeader(image.header, net.labels.classes - 1, net.joint),
    },
    { datatype: "uint8" },
  );
  const tEnd = performance.now();
  return {
    image: job.image,
    out: job.out,
    dims: [...image.dims],
    spacing: [...image.spacing],
    slices: r.slices,
    postprocess: options.postprocess ? "paper" : "none",
    bones,
    seconds: {
      read: (tRead - t0) / 1000,
      predict: r.predictSeconds,
      postprocess: r.postprocessSeconds,
      write: (tEnd - tWrite) / 1000,
      total: (tEnd - t0) / 1000,
    },
  };
}

/**
 * The input's header fields for a label map: geometry (qform, sform, codes, affine) unchanged;
 * no intensity scaling, display range 0–max label, intent "label".
 */
function labelHeader(header: unknown, maxLabel: number, joint: string): NiftiHeaderInfo | undefined {
  if (!isNiftiHeaderInfo(header)) return undefined;
  return {
    ...header,
    datatype: "uint8",
    sclSlope: 1,
    sclInter: 0,
    calMin: 0,
    calMax: maxLabel,
    intentCode: INTENT_LABEL,
    intentName: "labels",
    description: `fedjoint segment (${joint} bones)`,
  };
}
