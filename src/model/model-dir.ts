/**
 * The model directory: a trained segmentation network a site (or `fedjoint train`) keeps and
 * `fedjoint segment` uses — Θ and Γ_k of the joints it serves, the label sets, the input size and
 * normalisation, the training exams' geometry, and where it came from. Backend-independent (named
 * float32 tensors), tfjs-free to read and write.
 *
 * Layout: the checkpoint format of ./checkpoint.ts (scope "all"), whose manifest holds the model
 * card as its `meta`:
 * ```
 * model/
 *   manifest.json   { format: "fedjoint-checkpoint", version, scope: "all", createdAt,
 *                     tensors: [{ name, shape, dtype, offset, length }], bytes, sha256,
 *                     meta: <ModelCard: kind "fedjoint-model", fedjoint version, source {study,
 *                     method, strategy, site, fold, folds, rounds…}, network, joints, labels,
 *                     input {size, sliceAxis, normalisation, resize}, inference, postprocess,
 *                     geometry per joint> }
 *   tensors.bin     float32 little-endian, in manifest order
 * ```
 * Only the segmentation network's variables are kept (the auto-encoder is a training device). The
 * directory is replaced as a whole: written next to its place, then renamed into it.
 */
import { randomBytes } from "node:crypto";
import { rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { readNiftiHeader } from "../data/nifti.js";
import { type ErrorCode, fjError, isFedjointError } from "../errors.js";
import { JOINTS, type Joint } from "../joints.js";
import { roundsOf, type StudyConfig, stepsOf } from "../study/config.js";
import { METHODS, methodSpec } from "../study/methods.js";
import { FEDJOINT_VERSION } from "../version.js";
import type { NamedTensor } from "./api.js";
import { attUNetVariables, type NetSpec } from "./architecture.js";
import { type CheckpointManifest, readCheckpoint, writeCheckpoint } from "./checkpoint.js";
import { type LabelSpec, labelSpecFromDatasetJson } from "./labels.js";

export const MODEL_CARD_KIND = "fedjoint-model";
export const MODEL_CARD_VERSION = 1;

const int = (min: number) => z.number().int().min(min);
const pair = z.tuple([z.number().positive(), z.number().positive()]);
const triple = z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]);
const axis = z.union([z.literal(0), z.literal(1), z.literal(2)]);

/**
 * The geometry of a joint's training exams, in the slice plane of `sliceAxis` (cols, rows: the two
 * other voxel axes in increasing order): field of view (voxels × spacing, mm), voxel spacing and
 * the through-plane ratio (slice spacing / the larger in-plane spacing). `fedjoint segment` refuses
 * an exam far outside it (src/segment/geometry.ts).
 */
export const trainingGeometrySchema = z.strictObject({
  exams: int(1),
  sliceAxis: axis,
  fovMm: z.strictObject({ min: pair, max: pair }),
  spacingMm: z.strictObject({ min: triple, max: triple }),
  throughPlaneRatio: z.strictObject({ min: z.number().positive(), max: z.number().positive() }),
});
export type TrainingGeometry = z.output<typeof trainingGeometrySchema>;

const labelsSchema = z.record(z.string(), z.number().int().min(0).max(255));

export const modelCardSchema = z.strictObject({
  kind: z.literal(MODEL_CARD_KIND),
  version: z.literal(MODEL_CARD_VERSION),
  /** fedjoint's version that wrote the directory. */
  fedjoint: z.string().min(1),
  source: z.strictObject({
    /** A site's personalised model of a federated study, or a centralised `fedjoint train` run. */
    kind: z.enum(["federated", "centralised"]),
    study: z.string().min(1),
    method: z.enum(METHODS),
    /** The study's strategy config (name and parameters); null when nothing was aggregated. */
    strategy: z.record(z.string(), z.unknown()).nullable(),
    /** The site that trained Γ_k (federated only). */
    site: z.string().min(1).optional(),
    /** The leave-one-out fold whose training this model is, of `folds`. */
    fold: int(0),
    folds: int(1),
    /** SEG rounds aggregated (federated) or epochs trained (centralised), of `localSteps` steps. */
    rounds: int(0),
    localSteps: int(1),
    seed: int(0),
  }),
  network: z.strictObject({
    arch: z.literal("att-unet"),
    base: int(1),
    depth: int(2),
    /** The "shared" baseline: one batch norm and one union head over every joint in `labels`. */
    sharedNorm: z.boolean(),
  }),
  /** Joints the model has Γ_k for, i.e. the joints it segments. */
  joints: z.array(z.enum(JOINTS)).min(1),
  /** dataset.json-style label sets of the joints its heads serve (⊇ joints). */
  labels: z.partialRecord(z.enum(JOINTS), labelsSchema),
  input: z.strictObject({
    /** Slice side of the network: every slice is resized to size × size. */
    size: int(2),
    channels: z.literal(1),
    /** Voxel axis the exams were sliced along (the acquisition axis of the training data). */
    sliceAxis: axis,
    normalisation: z.literal("z-score per volume"),
    resize: z.literal("bilinear, half-pixel centres; labels stacked back by nearest neighbour"),
  }),
  inference: z.strictObject({ batch: int(1) }),
  postprocess: z.strictObject({
    largestComponent: z.boolean(),
    connectivity: z.union([z.literal(6), z.literal(18), z.literal(26)]),
    closingRadius: int(0),
  }),
  geometry: z.partialRecord(z.enum(JOINTS), trainingGeometrySchema),
});
export type ModelCard = z.output<typeof modelCardSchema>;

/** The paper's post-processing (DESIGN §2), as a model card records it. */
export const PAPER_POSTPROCESS: ModelCard["postprocess"] = {
  largestComponent: true,
  connectivity: 6,
  closingRadius: 2,
};

export const MODEL_INPUT = {
  channels: 1,
  normalisation: "z-score per volume",
  resize: "bilinear, half-pixel centres; labels stacked back by nearest neighbour",
} as const;

export interface ModelDir {
  dir: string;
  card: ModelCard;
  /** Label set per joint the heads serve. */
  labels: Partial<Record<Joint, LabelSpec>>;
  /** The network the tensors are the variables of. */
  net: NetSpec;
  tensors: NamedTensor[];
  manifest: CheckpointManifest;
}

/** The network description of a card (classes per joint from its label sets). */
export function cardNetSpec(card: ModelCard): NetSpec {
  const classes: Partial<Record<Joint, number>> = {};
  for (const j of JOINTS) {
    const l = card.labels[j];
    if (l) classes[j] = Object.keys(l).length;
  }
  return { base: card.network.base, depth: card.network.depth, classes, sharedNorm: card.network.sharedNorm };
}

/** One exam's geometry in the slice plane of `sliceAxis` (see trainingGeometrySchema). */
export function examGeometry(
  dims: readonly [number, number, number],
  spacing: readonly [number, number, number],
  sliceAxis: 0 | 1 | 2,
): { fovMm: [number, number]; throughPlaneRatio: number } {
  const [c, r] = ([0, 1, 2] as const).filter((a) => a !== sliceAxis);
  return {
    fovMm: [dims[c] * spacing[c], dims[r] * spacing[r]],
    throughPlaneRatio: spacing[sliceAxis] / Math.max(spacing[c], spacing[r]),
  };
}

/** The training geometry of a joint from its exams' grids. */
export function summariseGeometry(
  exams: readonly { dims: readonly [number, number, number]; spacing: readonly [number, number, number] }[],
  sliceAxis: 0 | 1 | 2,
): TrainingGeometry {
  if (exams.length === 0) throw new RangeError("summariseGeometry: no exams");
  const g = exams.map((e) => ({ ...examGeometry(e.dims, e.spacing, sliceAxis), spacing: e.spacing }));
  const lo = (xs: number[]) => Math.min(...xs);
  const hi = (xs: number[]) => Math.max(...xs);
  const at = <T extends number[]>(
    f: (x: (typeof g)[number]) => readonly number[],
    agg: typeof lo,
    n: number,
  ) => Array.from({ length: n }, (_, i) => agg(g.map((x) => f(x)[i]))) as T;
  return {
    exams: exams.length,
    sliceAxis,
    fovMm: {
      min: at<[number, number]>((x) => x.fovMm, lo, 2),
      max: at<[number, number]>((x) => x.fovMm, hi, 2),
    },
    spacingMm: {
      min: at<[number, number, number]>((x) => x.spacing, lo, 3),
      max: at<[number, number, number]>((x) => x.spacing, hi, 3),
    },
    throughPlaneRatio: {
      min: lo(g.map((x) => x.throughPlaneRatio)),
      max: hi(g.map((x) => x.throughPlaneRatio)),
    },
  };
}

/** dataset.json-style `{name: value}` of a label set. */
export function labelRecord(spec: LabelSpec): Record<string, number> {
  return Object.fromEntries(spec.names.map((n, v) => [n, v]));
}

/** The training geometry of a joint from its exams' NIfTI headers (no voxel data is read). */
export async function geometryOfExams(
  files: readonly string[],
  sliceAxis: 0 | 1 | 2,
): Promise<TrainingGeometry> {
  const headers = [];
  for (const f of files) headers.push(await readNiftiHeader(f));
  return summariseGeometry(headers, sliceAxis);
}

/** What a study-trained model card is made of (a site's model, or `fedjoint train --out`). */
export interface StudyModelCardInput {
  study: StudyConfig;
  kind: ModelCard["source"]["kind"];
  site?: string;
  fold: number;
  /** Joints with Γ_k in the model and the label sets its heads serve (⊇ joints). */
  joints: readonly Joint[];
  labels: Partial<Record<Joint, LabelSpec>>;
  /** Slices per forward pass (the trainer's `inferenceChunk`). */
  inferenceBatch: number;
  sliceAxis: 0 | 1 | 2;
  geometry: Partial<Record<Joint, TrainingGeometry>>;
}

/** The model card of a network trained by a study config (federated or centralised). */
export function studyModelCard(o: StudyModelCardInput): ModelCard {
  const s = o.study;
  const spec = methodSpec(s.method);
  return {
    kind: MODEL_CARD_KIND,
    version: MODEL_CARD_VERSION,
    fedjoint: FEDJOINT_VERSION,
    source: {
      kind: o.kind,
      study: s.study,
      method: s.method,
      strategy: o.kind === "federated" && spec.federation !== "nothing" ? { ...s.strategy } : null,
      ...(o.site === undefined ? {} : { site: o.site }),
      fold: o.fold,
      folds: s.folds,
      rounds: roundsOf(s, "seg"),
      localSteps: stepsOf(s, "seg"),
      seed: s.seed,
    },
    network: { arch: "att-unet", base: s.model.base, depth: s.model.depth, sharedNorm: spec.sharedNorm },
    joints: JOINTS.filter((j) => o.joints.includes(j)),
    labels: Object.fromEntries(
      JOINTS.filter((j) => o.labels[j]).map((j) => [j, labelRecord(o.labels[j]!)]),
    ) as ModelCard["labels"],
    input: { size: s.model.size, sliceAxis: o.sliceAxis, ...MODEL_INPUT },
    inference: { batch: o.inferenceBatch },
    postprocess: { ...PAPER_POSTPROCESS },
    geometry: o.geometry,
  };
}

/**
 * Writes a model directory: the segmentation network's tensors (exactly the variables of the
 * card's network for its joints) and the card. An existing directory is replaced only once the new
 * one is complete.
 */
export async function writeModelDir(
  dir: string,
  card: ModelCard,
  tensors: readonly NamedTensor[],
): Promise<void> {
  const parsed = modelCardSchema.safeParse(card);
  if (!parsed.success) {
    const iss = parsed.error.issues[0];
    throw fjError("FJ_MODEL_DIR_MANIFEST", `model card: ${iss.path.join(".") || "(root)"}: ${iss.message}`);
  }
  checkCardTensors(`${dir} (new)`, parsed.data, tensors);
  const target = path.resolve(dir);
  const suffix = `${process.pid}-${randomBytes(4).toString("hex")}`;
  const tmp = `${target}.tmp-${suffix}`;
  const old = `${target}.old-${suffix}`;
  try {
    await writeCheckpoint(tmp, tensors, "all", parsed.data);
    const exists = await stat(target).then(
      () => true,
      () => false,
    );
    if (exists) await rename(target, old);
    await rename(tmp, target);
    if (exists) await rm(old, { recursive: true, force: true });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Reads and verifies a model directory: the checkpoint's format, sizes and SHA-256, the model card,
 * and that the tensors are exactly the card's network's variables. Every refusal is one input error
 * naming the file (FJ_MODEL_DIR_MANIFEST, FJ_MODEL_DIR_CHECKSUM).
 */
export async function readModelDir(dir: string): Promise<ModelDir> {
  const manifestFile = path.join(dir, "manifest.json");
  let read: Awaited<ReturnType<typeof readCheckpoint>>;
  try {
    read = await readCheckpoint(dir);
  } catch (err) {
    if (isFedjointError(err) && (err.code === "FJ_MODEL_CHECKPOINT" || err.code === "FJ_MODEL_CHECKSUM")) {
      const code: ErrorCode =
        err.code === "FJ_MODEL_CHECKSUM" ? "FJ_MODEL_DIR_CHECKSUM" : "FJ_MODEL_DIR_MANIFEST";
      throw fjError(code, err.message, { cause: err });
    }
    throw err;
  }
  const { manifest, tensors } = read;
  if (manifest.scope !== "all") {
    throw fjError(
      "FJ_MODEL_DIR_MANIFEST",
      `${manifestFile}: scope is '${manifest.scope}', a model directory holds every variable ('all'): this is a training checkpoint, not a model`,
    );
  }
  const parsed = modelCardSchema.safeParse(manifest.meta);
  if (!parsed.success) {
    const iss = parsed.error.issues[0];
    const field = ["meta", ...iss.path].join(".");
    throw fjError(
      "FJ_MODEL_DIR_MANIFEST",
      `${manifestFile}: ${field}: ${iss.message} (expected the model card of a fedjoint model directory)`,
    );
  }
  const card = parsed.data;
  const labels: Partial<Record<Joint, LabelSpec>> = {};
  for (const j of JOINTS) {
    const l = card.labels[j];
    if (!l) continue;
    try {
      labels[j] = labelSpecFromDatasetJson(l, `${manifestFile}: meta.labels.${j}`);
    } catch (err) {
      throw fjError("FJ_MODEL_DIR_MANIFEST", (err as Error).message);
    }
  }
  for (const j of card.joints) {
    if (!labels[j])
      throw fjError(
        "FJ_MODEL_DIR_MANIFEST",
        `${manifestFile}: meta.labels has no ${j}, a joint of meta.joints`,
      );
    if (!card.geometry[j])
      throw fjError(
        "FJ_MODEL_DIR_MANIFEST",
        `${manifestFile}: meta.geometry has no ${j}, a joint of meta.joints`,
      );
  }
  checkCardTensors(manifestFile, card, tensors);
  return { dir, card, labels, net: cardNetSpec(card), tensors, manifest };
}

/** The tensors must be exactly the variables of the card's network for its joints. */
function checkCardTensors(source: string, card: ModelCard, tensors: readonly NamedTensor[]): void {
  const expected = new Map(attUNetVariables(cardNetSpec(card), card.joints).map((v) => [v.name, v.shape]));
  const seen = new Set<string>();
  for (const t of tensors) {
    const shape = expected.get(t.name);
    if (!shape)
      throw fjError(
        "FJ_MODEL_DIR_MANIFEST",
        `${source}: tensor ${t.name} is not a variable of the att-unet the card describes (base ${card.network.base}, depth ${card.network.depth}, joints ${card.joints.join(",")})`,
      );
    if (shape.join() !== t.shape.join())
      throw fjError(
        "FJ_MODEL_DIR_MANIFEST",
        `${source}: tensor ${t.name} has shape [${t.shape}], the card's network has [${shape}]`,
      );
    seen.add(t.name);
  }
  const missing = [...expected.keys()].find((n) => !seen.has(n));
  if (missing !== undefined)
    throw fjError("FJ_MODEL_DIR_MANIFEST", `${source}: lacks ${missing}, a variable of the card's network`);
}
