/**
 * Which exams a `fedjoint segment` command line names: one `--image FILE --out FILE`, or a folder
 * in nnU-Net's inference naming, `--images DIR --out DIR`: every `<case>_0000.nii[.gz]` in DIR (the
 * one channel of an MR exam) becomes `DIR_OUT/<case>.nii[.gz]`, as `nnUNetv2_predict` names them.
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { isNiftiPath } from "../data/nifti.js";
import { fjError } from "../errors.js";
import type { ExamJob } from "./segment.js";

const CHANNEL0 = /^(.+)_0000(\.nii(?:\.gz)?)$/;

/** The jobs of a folder: its `<case>_0000` NIfTI files in name order (other files are ignored). */
export async function folderJobs(images: string, out: string): Promise<(ExamJob & { case: string })[]> {
  let names: string[];
  try {
    if (!(await stat(images)).isDirectory()) throw new Error("not a directory");
    names = await readdir(images);
  } catch (err) {
    throw fjError("FJ_SEGMENT_INPUT", `--images ${images}: cannot list (${(err as Error).message})`);
  }
  const nifti = names.filter(isNiftiPath).sort();
  const other = nifti.find((n) => !CHANNEL0.test(n));
  if (other !== undefined) {
    throw fjError(
      "FJ_SEGMENT_INPUT",
      `is not named <case>_0000.nii[.gz] (nnU-Net naming; the model reads one channel)`,
      { file: path.join(images, other) },
    );
  }
  if (nifti.length === 0) {
    throw fjError("FJ_SEGMENT_INPUT", `--images ${images} holds no <case>_0000.nii[.gz] file`);
  }
  return nifti.map((n) => {
    const [, id, ending] = CHANNEL0.exec(n)!;
    return { case: id, image: path.join(images, n), out: path.join(out, `${id}${ending}`) };
  });
}
