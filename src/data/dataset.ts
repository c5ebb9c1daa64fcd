/**
 * Site datasets in the nnU-Net v2 layout:
 *   DIR/dataset.json                      channel_names, labels {name: value}, numTraining, file_ending
 *   DIR/imagesTr/<case>_0000<file_ending> one file per channel (_0000, _0001, …)
 *   DIR/labelsTr/<case><file_ending>      integer label map, same grid as the image
 * `loadDataset` parses and validates dataset.json and lists the cases (fast, no image reads);
 * `checkDataset` reads every file and reports every problem with the file it concerns. A file (or
 * folder) that resolves outside the dataset folder — a symlink to elsewhere — is refused
 * (FJ_DATA_PATH): a site reads only what its operator put in its dataset.
 */
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { type ErrorCode, fjError, isErrorCode, isFedjointError } from "../errors.js";
import { JOINTS, type Joint } from "../joints.js";
import { readNifti } from "./nifti.js";

export interface DatasetCase {
  id: string;
  /** Absolute path of channel 0. */
  image: string;
  /** Absolute path of the label map. */
  label: string;
}

export interface SiteDataset {
  root: string;
  name: string;
  /** Label name → value, background included. */
  labels: Record<string, number>;
  cases: DatasetCase[];
  fileEnding: string;
  /** Channel index → name, from dataset.json. */
  channelNames: Record<string, string>;
  /** `joint` from dataset.json when present (phantoms write it). */
  joint?: Joint;
  numTraining: number;
}

const labelValue = z.number().int().min(0).max(255);

export const datasetJsonSchema = z.looseObject({
  channel_names: z
    .record(z.string().regex(/^\d+$/, "channel keys must be '0', '1', …"), z.string())
    .refine((r) => Object.keys(r).length > 0, "expected at least one channel")
    .refine((r) => "0" in r, "expected a channel '0'"),
  labels: z
    .record(
      z.string().min(1),
      z.union([labelValue, z.array(labelValue)]).refine((v) => !Array.isArray(v), {
        message: "region-based labels (arrays) are not supported, expected one integer per label",
      }),
    )
    .refine((r) => r.background === 0, 'expected "background": 0')
    .refine(
      (r) => new Set(Object.values(r).map(String)).size === Object.keys(r).length,
      "label values must be unique",
    ),
  numTraining: z.number().int().min(0),
  file_ending: z.enum([".nii.gz", ".nii"], { message: 'expected ".nii.gz" or ".nii"' }),
  name: z.string().optional(),
  description: z.string().optional(),
  joint: z.enum(JOINTS).optional(),
});

export type DatasetJson = z.input<typeof datasetJsonSchema>;

export interface DatasetProblem {
  code: ErrorCode;
  file: string;
  message: string;
}

export interface DatasetSummary {
  cases: number;
  numTraining: number | null;
  labels: { name: string; value: number; voxels: number; cases: number }[];
  shapes: { shape: [number, number, number]; count: number }[];
  spacing: { min: [number, number, number]; max: [number, number, number] } | null;
  intensity: { min: number; max: number } | null;
  /** Slices along z (axis 2) that contain any foreground, over all readable cases. */
  slicesWithForeground: number;
  slices: number;
}

export interface DatasetReport {
  ok: boolean;
  root: string;
  name: string;
  problems: DatasetProblem[];
  /** Non-fatal remarks (e.g. image and label origins differ). */
  warnings: DatasetProblem[];
  summary: DatasetSummary;
}

function zodProblems(file: string, error: z.ZodError): DatasetProblem[] {
  return error.issues.map((iss) => {
    const field = iss.path.length > 0 ? iss.path.join(".") : "(root)";
    return { code: "FJ_DATA_JSON", file, message: `${field}: ${iss.message}` };
  });
}

async function readDatasetJson(
  root: string,
  file = path.join(root, "dataset.json"),
): Promise<{ json?: z.output<typeof datasetJsonSchema>; problems: DatasetProblem[] }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return {
      problems: [
        { code: "FJ_DATA_MISSING", file, message: "file not found, expected nnU-Net v2 dataset.json" },
      ],
    };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return {
      problems: [
        {
          code: "FJ_DATA_JSON",
          file,
          message: `invalid JSON (${err instanceof Error ? err.message : String(err)})`,
        },
      ],
    };
  }
  const parsed = datasetJsonSchema.safeParse(raw);
  if (!parsed.success) return { problems: zodProblems(file, parsed.error) };
  return { json: parsed.data, problems: [] };
}

/**
 * Reads and validates one dataset.json (a file, or a dataset folder holding it); throws the first
 * problem (FJ_DATA_MISSING / FJ_DATA_JSON) naming the file and the field.
 */
export async function loadDatasetJson(fileOrDir: string): Promise<z.output<typeof datasetJsonSchema>> {
  const given = path.resolve(fileOrDir);
  const file = (await isDir(given)) ? path.join(given, "dataset.json") : given;
  const { json, problems } = await readDatasetJson(path.dirname(file), file);
  if (json === undefined) throw fjError(problems[0].code, problems[0].message, { file: problems[0].file });
  return json;
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() === true;
}

interface Listing {
  cases: DatasetCase[];
  problems: DatasetProblem[];
}

async function listCases(root: string, fileEnding: string, channels: string[]): Promise<Listing> {
  const problems: DatasetProblem[] = [];
  const imagesDir = path.join(root, "imagesTr");
  const labelsDir = path.join(root, "labelsTr");
  if (!(await isDir(imagesDir))) {
    problems.push({
      code: "FJ_DATA_MISSING",
      file: imagesDir,
      message: `folder not found, expected imagesTr/<case>_0000${fileEnding}`,
    });
  }
  if (!(await isDir(labelsDir))) {
    problems.push({
      code: "FJ_DATA_MISSING",
      file: labelsDir,
      message: `folder not found, expected labelsTr/<case>${fileEnding}`,
    });
  }
  if (problems.length > 0) return { cases: [], problems };
  const realRoot = await realpath(root);
  /** Undefined when `file` resolves inside the dataset folder, else the problem. */
  const escapes = async (file: string): Promise<DatasetProblem | undefined> => {
    const real = await realpath(file).catch(() => undefined);
    if (real === undefined) return undefined;
    const rel = path.relative(realRoot, real);
    if (rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel)) return undefined;
    return {
      code: "FJ_DATA_PATH",
      file,
      message: `resolves to ${real}, outside the dataset folder ${realRoot}: expected a file inside it`,
    };
  };
  for (const dir of [imagesDir, labelsDir]) {
    const p = await escapes(dir);
    if (p) problems.push(p);
  }
  if (problems.length > 0) return { cases: [], problems };
  const images = (await readdir(imagesDir)).filter((f) => f.endsWith(fileEnding)).sort();
  const labels = new Set((await readdir(labelsDir)).filter((f) => f.endsWith(fileEnding)));
  const imageSet = new Set(images);
  const ids = new Set<string>();
  const suffix = new RegExp(`_(\\d{4})${fileEnding.replace(/\./g, "\\.")}$`);
  for (const f of images) {
    const m = f.match(suffix);
    if (m === null) {
      problems.push({
        code: "FJ_DATA_NAME",
        file: path.join(imagesDir, f),
        message: `expected a name <case>_0000${fileEnding} (channel suffix _XXXX)`,
      });
      continue;
    }
    ids.add(f.slice(0, f.length - m[0].length));
  }
  const cases: DatasetCase[] = [];
  for (const id of [...ids].sort()) {
    for (const ch of channels) {
      const chFile = `${id}_${ch.padStart(4, "0")}${fileEnding}`;
      if (!imageSet.has(chFile)) {
        problems.push({
          code: "FJ_DATA_MISSING",
          file: path.join(imagesDir, chFile),
          message: `file not found, dataset.json declares channel ${ch}`,
        });
      }
    }
    const labelFile = `${id}${fileEnding}`;
    if (!labels.has(labelFile)) {
      problems.push({
        code: "FJ_DATA_MISSING",
        file: path.join(labelsDir, labelFile),
        message: `file not found, expected the label map of case ${id}`,
      });
      continue;
    }
    labels.delete(labelFile);
    if (!imageSet.has(`${id}_0000${fileEnding}`)) continue;
    const outside: DatasetProblem[] = [];
    for (const file of [
      ...channels.map((ch) => path.join(imagesDir, `${id}_${ch.padStart(4, "0")}${fileEnding}`)),
      path.join(labelsDir, labelFile),
    ]) {
      const p = await escapes(file);
      if (p) outside.push(p);
    }
    if (outside.length > 0) {
      problems.push(...outside);
      continue;
    }
    cases.push({
      id,
      image: path.join(imagesDir, `${id}_0000${fileEnding}`),
      label: path.join(labelsDir, labelFile),
    });
  }
  for (const orphan of [...labels].sort()) {
    const id = orphan.slice(0, orphan.length - fileEnding.length);
    problems.push({
      code: "FJ_DATA_MISSING",
      file: path.join(imagesDir, `${id}_0000${fileEnding}`),
      message: `file not found, labelsTr/${orphan} has no image`,
    });
  }
  return { cases, problems };
}

/**
 * Parses and validates dataset.json and lists the cases. Throws a DataError (the first problem)
 * when dataset.json is missing or invalid or a case misses a file; does not read the volumes.
 */
export async function loadDataset(dir: string): Promise<SiteDataset> {
  const root = path.resolve(dir);
  const { json, problems } = await readDatasetJson(root);
  if (json === undefined) {
    const p = problems[0];
    throw fjError(p.code, p.message, { file: p.file });
  }
  const listing = await listCases(root, json.file_ending, Object.keys(json.channel_names));
  if (listing.problems.length > 0) {
    const p = listing.problems[0];
    const more =
      listing.problems.length > 1
        ? ` (and ${listing.problems.length - 1} more; run fedjoint data check)`
        : "";
    throw fjError(p.code, p.message + more, { file: p.file });
  }
  const labels: Record<string, number> = {};
  for (const [k, v] of Object.entries(json.labels)) labels[k] = v as number;
  return {
    root,
    name: json.name ?? path.basename(root),
    labels,
    cases: listing.cases,
    fileEnding: json.file_ending,
    channelNames: json.channel_names,
    joint: json.joint,
    numTraining: json.numTraining,
  };
}

function closeTo(a: number, b: number, rel = 1e-3): boolean {
  return Math.abs(a - b) <= rel * Math.max(1, Math.abs(a), Math.abs(b));
}

/**
 * Validates a dataset completely: dataset.json, files present, every volume readable, image and
 * label shapes and spacings agree, label values ⊆ dataset.json, finite intensities, ≥ 3 cases.
 * Never throws for data problems: they are returned, one per problem, naming the file.
 */
export async function checkDataset(dir: string, options: { minCases?: number } = {}): Promise<DatasetReport> {
  const root = path.resolve(dir);
  const minCases = options.minCases ?? 3;
  const problems: DatasetProblem[] = [];
  const warnings: DatasetProblem[] = [];
  const summary: DatasetSummary = {
    cases: 0,
    numTraining: null,
    labels: [],
    shapes: [],
    spacing: null,
    intensity: null,
    slicesWithForeground: 0,
    slices: 0,
  };
  const report = (): DatasetReport => ({
    ok: problems.length === 0,
    root,
    name: path.basename(root),
    problems,
    warnings,
    summary,
  });
  if (!(await isDir(root))) {
    problems.push({
      code: "FJ_DATA_MISSING",
      file: root,
      message: "folder not found, expected an nnU-Net v2 dataset folder",
    });
    return report();
  }
  const { json, problems: jsonProblems } = await readDatasetJson(root);
  problems.push(...jsonProblems);
  const fileEnding = json?.file_ending ?? ".nii.gz";
  const channels = json ? Object.keys(json.channel_names) : ["0"];
  const listing = await listCases(root, fileEnding, channels);
  problems.push(...listing.problems);
  const declared = new Map<number, string>();
  if (json) {
    summary.numTraining = json.numTraining;
    for (const [name, v] of Object.entries(json.labels)) declared.set(v as number, name);
  }
  const labelVoxels = new Map<number, { voxels: number; cases: number }>();
  const shapes = new Map<string, { shape: [number, number, number]; count: number }>();
  let spMin: [number, number, number] | null = null;
  let spMax: [number, number, number] | null = null;
  let iMin = Number.POSITIVE_INFINITY;
  let iMax = Number.NEGATIVE_INFINITY;
  const declaredRange = () => {
    const vals = [...declared.keys()].sort((a, b) => a - b);
    const contiguous = vals.every((v, i) => v === vals[0] + i);
    return contiguous && vals.length > 1 ? `${vals[0]}–${vals[vals.length - 1]}` : vals.join(", ");
  };

  for (const c of listing.cases) {
    const rel = (p: string) => path.relative(root, p) || p;
    let image: Awaited<ReturnType<typeof readNifti>> | undefined;
    let label: Awaited<ReturnType<typeof readNifti>> | undefined;
    for (const [which, file] of [
      ["image", c.image],
      ["label", c.label],
    ] as const) {
      try {
        const vol = await readNifti(file);
        if (which === "image") image = vol;
        else label = vol;
      } catch (err) {
        if (!isFedjointError(err) || !isErrorCode(err.code)) throw err;
        problems.push({ code: err.code, file, message: err.detail });
      }
    }
    if (image) {
      let nonFinite = 0;
      const d = image.data;
      for (let i = 0; i < d.length; i++) {
        const v = d[i];
        if (!Number.isFinite(v)) nonFinite++;
        else {
          if (v < iMin) iMin = v;
          if (v > iMax) iMax = v;
        }
      }
      if (nonFinite > 0) {
        problems.push({
          code: "FJ_DATA_NONFINITE",
          file: c.image,
          message: `${nonFinite} of ${d.length} voxels are NaN or infinite, expected finite intensities`,
        });
      }
      const key = image.dims.join("x");
      const entry = shapes.get(key) ?? { shape: [...image.dims] as [number, number, number], count: 0 };
      entry.count++;
      shapes.set(key, entry);
      spMin = spMin
        ? (spMin.map((v, i) => Math.min(v, image!.spacing[i])) as [number, number, number])
        : [...image.spacing];
      spMax = spMax
        ? (spMax.map((v, i) => Math.max(v, image!.spacing[i])) as [number, number, number])
        : [...image.spacing];
    }
    if (image && label) {
      if (image.dims.join("×") !== label.dims.join("×")) {
        problems.push({
          code: "FJ_DATA_SHAPE_MISMATCH",
          file: c.label,
          message: `shape ${label.dims.join("×")} differs from ${rel(c.image)} ${image.dims.join("×")}, expected the same grid`,
        });
      } else if (!image.spacing.every((s, i) => closeTo(s, label!.spacing[i]))) {
        problems.push({
          code: "FJ_DATA_SPACING_MISMATCH",
          file: c.label,
          message: `spacing ${label.spacing.map((s) => s.toFixed(4)).join("×")} mm differs from ${rel(c.image)} ${image.spacing
            .map((s) => s.toFixed(4))
            .join("×")} mm, expected the same spacing`,
        });
      } else {
        const origin = (a: number[][]) => [a[0][3], a[1][3], a[2][3]];
        const oi = origin(image.affine);
        const ol = origin(label.affine);
        if (!oi.every((v, i) => Math.abs(v - ol[i]) < 1e-2 * Math.max(1, ...image!.spacing))) {
          warnings.push({
            code: "FJ_DATA_ORIGIN_MISMATCH",
            file: c.label,
            message: `origin (${ol.map((v) => v.toFixed(2)).join(", ")}) differs from the image's (${oi.map((v) => v.toFixed(2)).join(", ")})`,
          });
        }
      }
    }
    if (label) {
      const counts = new Map<number, number>();
      let nonInteger = 0;
      const d = label.data;
      for (let i = 0; i < d.length; i++) {
        const v = d[i];
        if (!Number.isInteger(v)) {
          nonInteger++;
          continue;
        }
        counts.set(v, (counts.get(v) ?? 0) + 1);
      }
      if (nonInteger > 0) {
        problems.push({
          code: "FJ_DATA_LABEL_NONINTEGER",
          file: c.label,
          message: `${nonInteger} voxels are not integers, expected label values from dataset.json`,
        });
      }
      if (json) {
        const unknown = [...counts.keys()].filter((v) => !declared.has(v)).sort((a, b) => a - b);
        if (unknown.length > 0) {
          problems.push({
            code: "FJ_DATA_LABEL_UNKNOWN",
            file: c.label,
            message: `has label ${unknown.join(", ")}, dataset.json declares ${declaredRange()}`,
          });
        }
      }
      if (nonInteger === 0 && [...counts.keys()].every((v) => v === 0)) {
        warnings.push({
          code: "FJ_DATA_LABEL_EMPTY",
          file: c.label,
          message: "holds only background (label 0): no bone is segmented in this case",
        });
      }
      for (const [v, n] of counts) {
        const e = labelVoxels.get(v) ?? { voxels: 0, cases: 0 };
        e.voxels += n;
        e.cases++;
        labelVoxels.set(v, e);
      }
      const [X, Y, Z] = label.dims;
      const plane = X * Y;
      for (let zi = 0; zi < Z; zi++) {
        let fg = false;
        for (let i = zi * plane; i < (zi + 1) * plane; i++) {
          if (d[i] !== 0) {
            fg = true;
            break;
          }
        }
        if (fg) summary.slicesWithForeground++;
      }
      summary.slices += Z;
    }
  }
  summary.cases = listing.cases.length;
  if (json && json.numTraining !== listing.cases.length && listing.problems.length === 0) {
    problems.push({
      code: "FJ_DATA_NUMTRAINING",
      file: path.join(root, "dataset.json"),
      message: `numTraining is ${json.numTraining} but imagesTr/labelsTr hold ${listing.cases.length} cases`,
    });
  }
  if (listing.cases.length < minCases) {
    problems.push({
      code: "FJ_DATA_TOO_FEW_CASES",
      file: path.join(root, "imagesTr"),
      message: `${listing.cases.length} complete case(s), expected at least ${minCases} (train, validation and test)`,
    });
  }
  const names = new Map([...declared.entries()]);
  summary.labels = [...new Set([...declared.keys(), ...labelVoxels.keys()])]
    .sort((a, b) => a - b)
    .map((value) => ({
      name: names.get(value) ?? "(undeclared)",
      value,
      voxels: labelVoxels.get(value)?.voxels ?? 0,
      cases: labelVoxels.get(value)?.cases ?? 0,
    }));
  summary.shapes = [...shapes.values()];
  summary.spacing = spMin && spMax ? { min: spMin, max: spMax } : null;
  summary.intensity = Number.isFinite(iMin) ? { min: iMin, max: iMax } : null;
  const out = report();
  if (json?.name) out.name = json.name;
  return out;
}
