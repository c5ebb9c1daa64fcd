import { createReadStream } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { createGunzip, gunzip, gunzipSync, gzip } from "node:zlib";
import * as nifti from "nifti-reader-js";
import { writeFileAtomic } from "../atomic-write.js";
import { fjError } from "../errors.js";

const gunzipAsync = promisify(gunzip);
const gzipAsync = promisify(gzip);

export type NiftiDatatype =
  | "uint8"
  | "int8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "float32"
  | "float64";

/**
 * The header fields we keep from a file so that writing the volume back preserves its geometry
 * codes and descriptive fields. Treat as opaque outside this module.
 */
export interface NiftiHeaderInfo {
  qformCode: number;
  sformCode: number;
  /** quatern_b, quatern_c, quatern_d, qoffset_x, qoffset_y, qoffset_z, qfac */
  quatern: [number, number, number, number, number, number, number];
  /** srow_x, srow_y, srow_z as three rows of four. */
  srow: number[][];
  /** The affine the volume was read with (to detect geometry edits before writing). */
  affineRead: number[][];
  datatype: NiftiDatatype;
  sclSlope: number;
  sclInter: number;
  xyztUnits: number;
  dimInfo: number;
  intentCode: number;
  intentName: string;
  description: string;
  auxFile: string;
  calMin: number;
  calMax: number;
}

export interface NiftiVolume {
  /** x, y, z voxel counts. */
  dims: [number, number, number];
  /** Voxel size in mm from pixdim[1..3]. */
  spacing: [number, number, number];
  /** scl_slope/scl_inter applied; index = x + X*(y + Y*z). */
  data: Float32Array;
  /** 4×4 voxel → world (sform if sform_code > 0, else qform if qform_code > 0, else diag(spacing)). */
  affine: number[][];
  /** The on-disk datatype it was read from. */
  datatype: NiftiDatatype;
  /** Opaque: the original header fields (NiftiHeaderInfo), so writes preserve qform/sform/codes. */
  header?: unknown;
}

const DATATYPE_CODES: Record<NiftiDatatype, number> = {
  uint8: 2,
  int16: 4,
  int32: 8,
  float32: 16,
  float64: 64,
  int8: 256,
  uint16: 512,
  uint32: 768,
};
const BYTES: Record<NiftiDatatype, number> = {
  uint8: 1,
  int8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  float32: 4,
  float64: 8,
};
const RANGES: Partial<Record<NiftiDatatype, [number, number]>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
};
const CODE_TO_DATATYPE = new Map<number, NiftiDatatype>(
  Object.entries(DATATYPE_CODES).map(([k, v]) => [v, k as NiftiDatatype]),
);
/** Codes nifti-reader-js knows but we do not read, for a clear message. */
const UNSUPPORTED_CODES: Record<number, string> = {
  1: "binary",
  32: "complex64",
  128: "rgb24",
  1024: "int64",
  1280: "uint64",
  1536: "float128",
  1792: "complex128",
  2048: "complex256",
  2304: "rgba32",
};

export const NIFTI_DATATYPES: readonly NiftiDatatype[] = Object.keys(DATATYPE_CODES) as NiftiDatatype[];

export function isNiftiPath(path: string): boolean {
  return path.endsWith(".nii") || path.endsWith(".nii.gz");
}

export function isNiftiHeaderInfo(h: unknown): h is NiftiHeaderInfo {
  return typeof h === "object" && h !== null && "quatern" in h && "srow" in h && "affineRead" in h;
}

function unreadable(path: string, err: unknown) {
  const code = (err as NodeJS.ErrnoException).code;
  return fjError(
    "FJ_DATA_MISSING",
    code === "ENOENT" ? "file not found" : `cannot read file (${code ?? String(err)})`,
    {
      file: path,
      cause: err,
    },
  );
}

/** The file's bytes, gunzipped when gzip. */
async function readBytes(path: string): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await readFile(path);
  } catch (err) {
    throw unreadable(path, err);
  }
  return maybeGunzip(raw, path);
}

/** Reads a NIfTI-1 `.nii` or `.nii.gz` file. Throws a DataError naming the file on any problem. */
export async function readNifti(path: string): Promise<NiftiVolume> {
  return decodeNifti(await readBytes(path), path);
}

async function maybeGunzip(raw: Buffer, path: string): Promise<Buffer> {
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      // The gzip trailer holds the uncompressed size: when plausible, inflate into one buffer of
      // that size (no chunk list + concatenation, so about half the peak memory).
      const isize = raw.length >= 18 ? raw.readUInt32LE(raw.length - 4) : 0;
      if (isize >= 348 && isize <= 2 ** 30 && isize <= 1100 * raw.length) {
        return gunzipSync(raw, { chunkSize: isize + 64 });
      }
      return await gunzipAsync(raw);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw fjError("FJ_DATA_NIFTI_GZIP", `corrupt or truncated gzip stream (${msg})`, {
        file: path,
        cause: err,
      });
    }
  }
  if (path.endsWith(".gz")) {
    throw fjError("FJ_DATA_NIFTI_GZIP", "file name ends with .gz but the content is not gzip", {
      file: path,
    });
  }
  return raw;
}

/** Decodes an uncompressed NIfTI-1 byte buffer (exported for tests and in-memory use). */
export function decodeNifti(buf: Buffer, path = "<buffer>"): NiftiVolume {
  const raw = decodeNiftiRaw(buf, path);
  const { values, slope, inter, ...rest } = raw;
  const n = values.length;
  const data = new Float32Array(n);
  if (slope === 1 && inter === 0) {
    data.set(values);
  } else {
    for (let i = 0; i < n; i++) data[i] = values[i] * slope + inter;
  }
  return { ...rest, data };
}

/**
 * A volume whose voxel values are still the stored ones: `values[i] * slope + inter` is the
 * scaled value. `values` is a typed view into the decoded file bytes where possible (no copy).
 */
export interface NiftiRawVolume extends Omit<NiftiVolume, "data"> {
  values: NumArray;
  slope: number;
  inter: number;
}

/** Reads a NIfTI file without converting its values (memory: the file bytes only). */
export async function readNiftiRaw(path: string): Promise<NiftiRawVolume> {
  return decodeNiftiRaw(await readBytes(path), path);
}

/** What the header of a NIfTI-1 file says (validated), without the voxel data. */
export interface NiftiHeader extends Omit<NiftiVolume, "data" | "header"> {
  header: NiftiHeaderInfo;
  slope: number;
  inter: number;
  /** Byte offset of the voxel data. */
  voxOffset: number;
  littleEndian: boolean;
}

/** Bytes of a NIfTI-1 header with its extension flag. */
const HEADER_BYTES = 352;

/**
 * Reads and validates only the header of a `.nii`/`.nii.gz` (streams the first bytes; no full
 * decompression). The same checks as `readNifti`, except for the data's length.
 */
export async function readNiftiHeader(path: string): Promise<NiftiHeader> {
  let gz = false;
  try {
    const fh = await open(path, "r");
    const magic = Buffer.alloc(2);
    await fh.read(magic, 0, 2, 0);
    await fh.close();
    gz = magic[0] === 0x1f && magic[1] === 0x8b;
  } catch (err) {
    throw unreadable(path, err);
  }
  const head = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const file = createReadStream(path, gz ? {} : { end: HEADER_BYTES - 1 });
    const src = gz ? file.pipe(createGunzip()) : file;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      file.destroy();
      resolve(Buffer.concat(chunks));
    };
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      file.destroy();
      reject(err);
    };
    src.on("data", (c: Buffer) => {
      chunks.push(c);
      total += c.length;
      if (total >= HEADER_BYTES) finish();
    });
    src.on("end", finish);
    src.on("error", fail);
    file.on("error", fail);
  }).catch((err: unknown) => {
    throw fjError(
      "FJ_DATA_NIFTI_GZIP",
      `cannot read header (${err instanceof Error ? err.message : String(err)})`,
      {
        file: path,
        cause: err,
      },
    );
  });
  if (!gz && path.endsWith(".gz")) {
    throw fjError("FJ_DATA_NIFTI_GZIP", "file name ends with .gz but the content is not gzip", {
      file: path,
    });
  }
  return decodeNiftiHeader(head, path);
}

/** Validates and decodes the header at the start of `buf` (at least 348 bytes). */
export function decodeNiftiHeader(buf: Buffer, path = "<buffer>"): NiftiHeader {
  if (buf.length < 348) {
    throw fjError("FJ_DATA_NIFTI_TRUNCATED", `header is ${buf.length} bytes, expected at least 348`, {
      file: path,
    });
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const le = view.getInt32(0, true) === 348;
  if (!le && view.getInt32(0, false) !== 348) {
    if (view.getInt32(0, true) === 540 || view.getInt32(0, false) === 540) {
      throw fjError("FJ_DATA_NIFTI_MAGIC", "NIfTI-2 files are not supported, expected NIfTI-1", {
        file: path,
      });
    }
    throw fjError("FJ_DATA_NIFTI_MAGIC", "not a NIfTI-1 file (sizeof_hdr is not 348)", { file: path });
  }
  const magic = buf.toString("latin1", 344, 348);
  if (magic === "ni1\0") {
    throw fjError(
      "FJ_DATA_NIFTI_MAGIC",
      "header/image pairs (.hdr/.img) are not supported, expected a single .nii",
      { file: path },
    );
  }
  if (magic !== "n+1\0") {
    throw fjError(
      "FJ_DATA_NIFTI_MAGIC",
      `bad magic ${JSON.stringify(magic.replace(/\0/g, "\\0"))}, expected "n+1\\0"`,
      { file: path },
    );
  }
  const ab = buf.buffer.slice(
    buf.byteOffset,
    buf.byteOffset + Math.min(buf.byteLength, HEADER_BYTES),
  ) as ArrayBuffer;
  const h = nifti.readHeader(ab) as nifti.NIFTI1;
  if (!(h instanceof nifti.NIFTI1)) {
    throw fjError("FJ_DATA_NIFTI_MAGIC", "not a NIfTI-1 header", { file: path });
  }
  const nd = h.dims[0];
  if (!Number.isInteger(nd) || nd < 1 || nd > 7) {
    throw fjError("FJ_DATA_NIFTI_DIMS", `dim[0] is ${nd}, expected 1–7`, { file: path });
  }
  const d = [1, 1, 1, 1, 1, 1, 1];
  for (let i = 1; i <= nd; i++) d[i - 1] = h.dims[i];
  for (let i = 0; i < 7; i++) {
    if (!Number.isInteger(d[i]) || d[i] < 1) {
      throw fjError("FJ_DATA_NIFTI_DIMS", `dim[${i + 1}] is ${d[i]}, expected a positive integer`, {
        file: path,
      });
    }
  }
  if (d[3] > 1) {
    throw fjError(
      "FJ_DATA_NIFTI_DIMS",
      `is 4D with ${d[3]} time points (dim = ${d.slice(0, nd).join("×")}), expected a single 3D volume`,
      { file: path },
    );
  }
  if (d[4] > 1 || d[5] > 1 || d[6] > 1) {
    throw fjError("FJ_DATA_NIFTI_DIMS", `has dims 5–7 = ${d.slice(4).join("×")}, expected 1`, { file: path });
  }
  const dims: [number, number, number] = [d[0], d[1], d[2]];
  const datatype = CODE_TO_DATATYPE.get(h.datatypeCode);
  if (datatype === undefined) {
    const name = UNSUPPORTED_CODES[h.datatypeCode] ?? `code ${h.datatypeCode}`;
    throw fjError(
      "FJ_DATA_NIFTI_DATATYPE",
      `datatype ${name} is not supported, expected one of ${NIFTI_DATATYPES.join(", ")}`,
      { file: path },
    );
  }
  const spacing = [1, 2, 3].map((i) => Math.abs(h.pixDims[i] ?? 1)) as [number, number, number];
  for (let i = 0; i < 3; i++) {
    if (!Number.isFinite(spacing[i]) || spacing[i] <= 0) {
      throw fjError("FJ_DATA_NIFTI_SPACING", `pixdim[${i + 1}] is ${spacing[i]}, expected > 0`, {
        file: path,
      });
    }
  }
  let slope = h.scl_slope;
  let inter = h.scl_inter;
  if (!Number.isFinite(slope) || slope === 0) {
    slope = 1;
    inter = 0;
  }
  if (!Number.isFinite(inter)) inter = 0;

  const srow = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => view.getFloat32(280 + 16 * r + 4 * c, le)));
  const qfac = h.pixDims[0] < 0 ? -1 : 1;
  const quatern: NiftiHeaderInfo["quatern"] = [
    h.quatern_b,
    h.quatern_c,
    h.quatern_d,
    h.qoffset_x,
    h.qoffset_y,
    h.qoffset_z,
    qfac,
  ];
  let affine: number[][];
  if (h.sform_code > 0) {
    affine = [...srow.map((r) => [...r]), [0, 0, 0, 1]];
  } else if (h.qform_code > 0) {
    affine = quaternToAffine(quatern, spacing);
  } else {
    affine = [
      [spacing[0], 0, 0, 0],
      [0, spacing[1], 0, 0],
      [0, 0, spacing[2], 0],
      [0, 0, 0, 1],
    ];
  }
  const header: NiftiHeaderInfo = {
    qformCode: h.qform_code,
    sformCode: h.sform_code,
    quatern,
    srow,
    affineRead: affine.map((r) => [...r]),
    datatype,
    sclSlope: slope,
    sclInter: inter,
    xyztUnits: h.xyzt_units,
    dimInfo: h.dim_info,
    intentCode: h.intent_code,
    intentName: h.intent_name ?? "",
    description: h.description ?? "",
    auxFile: h.aux_file ?? "",
    calMin: h.cal_min,
    calMax: h.cal_max,
  };
  const voxOffset = Math.max(HEADER_BYTES, Math.floor(h.vox_offset));
  return { dims, spacing, slope, inter, affine, datatype, header, voxOffset, littleEndian: le };
}

function decodeNiftiRaw(buf: Buffer, path: string): NiftiRawVolume {
  const { voxOffset, littleEndian, ...h } = decodeNiftiHeader(buf, path);
  const nvox = h.dims[0] * h.dims[1] * h.dims[2];
  const need = voxOffset + nvox * BYTES[h.datatype];
  if (buf.length < need) {
    throw fjError(
      "FJ_DATA_NIFTI_TRUNCATED",
      `image data is truncated: ${buf.length} bytes, expected ${need} for ${h.dims.join("×")} ${h.datatype}`,
      { file: path },
    );
  }
  return { ...h, values: storedValues(buf, voxOffset, nvox, h.datatype, littleEndian) };
}

/** The stored values as a typed array: a view when the byte order matches, else a converted copy. */
function storedValues(
  buf: Buffer,
  offset: number,
  n: number,
  datatype: NiftiDatatype,
  le: boolean,
): NumArray {
  const bytes = BYTES[datatype];
  const start = buf.byteOffset + offset;
  const hostLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  if (le === hostLE) {
    // Fast path: a typed view over the data (copy first when unaligned).
    let ab: ArrayBufferLike = buf.buffer;
    let at = start;
    if (at % bytes !== 0) {
      const copy = new Uint8Array(n * bytes);
      copy.set(buf.subarray(offset, offset + n * bytes));
      ab = copy.buffer;
      at = 0;
    }
    return typedView(ab, at, n, datatype);
  }
  const out = datatype === "float64" ? new Float64Array(n) : new Float32Array(n);
  const view = new DataView(buf.buffer, start, n * bytes);
  const get = getter(view, datatype, le);
  for (let i = 0; i < n; i++) out[i] = get(i * bytes);
  return out;
}

export type NumArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array;

function typedView(ab: ArrayBufferLike, at: number, n: number, dt: NiftiDatatype): NumArray {
  switch (dt) {
    case "uint8":
      return new Uint8Array(ab, at, n);
    case "int8":
      return new Int8Array(ab, at, n);
    case "int16":
      return new Int16Array(ab, at, n);
    case "uint16":
      return new Uint16Array(ab, at, n);
    case "int32":
      return new Int32Array(ab, at, n);
    case "uint32":
      return new Uint32Array(ab, at, n);
    case "float32":
      return new Float32Array(ab, at, n);
    case "float64":
      return new Float64Array(ab, at, n);
  }
}

function getter(view: DataView, dt: NiftiDatatype, le: boolean): (at: number) => number {
  switch (dt) {
    case "uint8":
      return (at) => view.getUint8(at);
    case "int8":
      return (at) => view.getInt8(at);
    case "int16":
      return (at) => view.getInt16(at, le);
    case "uint16":
      return (at) => view.getUint16(at, le);
    case "int32":
      return (at) => view.getInt32(at, le);
    case "uint32":
      return (at) => view.getUint32(at, le);
    case "float32":
      return (at) => view.getFloat32(at, le);
    case "float64":
      return (at) => view.getFloat64(at, le);
  }
}

/** NIfTI quaternion parameters → 4×4 affine (nifti1_io.c nifti_quatern_to_mat44). */
export function quaternToAffine(
  q: NiftiHeaderInfo["quatern"],
  spacing: [number, number, number],
): number[][] {
  let [b, c, d] = q;
  const [, , , qx, qy, qz, qfacIn] = q;
  let a = 1 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    const s = 1 / Math.sqrt(b * b + c * c + d * d);
    b *= s;
    c *= s;
    d *= s;
    a = 0;
  } else {
    a = Math.sqrt(a);
  }
  const xd = spacing[0];
  const yd = spacing[1];
  const zd = qfacIn < 0 ? -spacing[2] : spacing[2];
  return [
    [(a * a + b * b - c * c - d * d) * xd, 2 * (b * c - a * d) * yd, 2 * (b * d + a * c) * zd, qx],
    [2 * (b * c + a * d) * xd, (a * a + c * c - b * b - d * d) * yd, 2 * (c * d - a * b) * zd, qy],
    [2 * (b * d - a * c) * xd, 2 * (c * d + a * b) * yd, (a * a + d * d - c * c - b * b) * zd, qz],
    [0, 0, 0, 1],
  ];
}

/**
 * 4×4 affine → NIfTI quaternion parameters (nifti1_io.c nifti_mat44_to_quatern): the rotation is
 * the orthogonal polar factor of the 3×3 part with unit columns; qfac = −1 for a left-handed grid.
 */
export function affineToQuatern(affine: number[][]): {
  quatern: NiftiHeaderInfo["quatern"];
  zooms: [number, number, number];
} {
  const cols = [0, 1, 2].map((j) => [affine[0][j], affine[1][j], affine[2][j]]);
  const zooms = cols.map((c) => Math.hypot(c[0], c[1], c[2])) as [number, number, number];
  const r = [0, 1, 2].map((i) =>
    [0, 1, 2].map((j) => (zooms[j] > 0 ? cols[j][i] / zooms[j] : i === j ? 1 : 0)),
  );
  let qfac = 1;
  if (det3(r) < 0) {
    qfac = -1;
    for (let i = 0; i < 3; i++) r[i][2] = -r[i][2];
  }
  const p = polar3(r);
  const [r11, r12, r13] = p[0];
  const [r21, r22, r23] = p[1];
  const [r31, r32, r33] = p[2];
  let a = r11 + r22 + r33 + 1;
  let b: number;
  let c: number;
  let d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return { quatern: [b, c, d, affine[0][3], affine[1][3], affine[2][3], qfac], zooms };
}

function det3(m: number[][]): number {
  return (
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
    m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
    m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
  );
}

function inv3T(m: number[][]): number[][] {
  const det = det3(m);
  const c = (i: number, j: number) => {
    const r = [0, 1, 2].filter((k) => k !== i);
    const s = [0, 1, 2].filter((k) => k !== j);
    const minor = m[r[0]][s[0]] * m[r[1]][s[1]] - m[r[0]][s[1]] * m[r[1]][s[0]];
    return ((i + j) % 2 === 0 ? 1 : -1) * minor;
  };
  // inverse transpose = cofactor matrix / det
  return [0, 1, 2].map((i) => [0, 1, 2].map((j) => c(i, j) / det));
}

/** Orthogonal polar factor by Newton iteration X ← (X + X⁻ᵀ)/2. */
function polar3(m: number[][]): number[][] {
  let x = m.map((r) => [...r]);
  for (let it = 0; it < 30; it++) {
    const xi = inv3T(x);
    let diff = 0;
    const nx = x.map((r, i) =>
      r.map((v, j) => {
        const nv = 0.5 * (v + xi[i][j]);
        diff = Math.max(diff, Math.abs(nv - v));
        return nv;
      }),
    );
    x = nx;
    if (diff < 1e-12) break;
  }
  return x;
}

function sameAffine(a: number[][], b: number[][], tol = 1e-5): boolean {
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 4; j++) {
      if (Math.abs(a[i][j] - b[i][j]) > tol * Math.max(1, Math.abs(b[i][j]))) return false;
    }
  }
  return true;
}

/** A diagonal affine with the grid centred on the world origin (used when a caller has none). */
export function centredAffine(dims: [number, number, number], spacing: [number, number, number]): number[][] {
  return [
    [spacing[0], 0, 0, (-(dims[0] - 1) / 2) * spacing[0]],
    [0, spacing[1], 0, (-(dims[1] - 1) / 2) * spacing[1]],
    [0, 0, spacing[2], (-(dims[2] - 1) / 2) * spacing[2]],
    [0, 0, 0, 1],
  ];
}

function writeString(view: DataView, at: number, max: number, s: string): void {
  const n = Math.min(max - 1, s.length);
  for (let i = 0; i < n; i++) view.setUint8(at + i, s.charCodeAt(i) & 0x7f);
}

/**
 * Encodes a volume as an uncompressed NIfTI-1 single file (little-endian, vox_offset 352, no
 * extensions). qform and sform are both written from `vol.affine`; when the volume was read from
 * a file and its affine was not changed, the original quaternion, srow and codes are kept as-is.
 */
export function encodeNifti(
  vol: NiftiVolume,
  options: { datatype?: NiftiDatatype; path?: string } = {},
): Buffer {
  const where = options.path ?? "<volume>";
  const [X, Y, Z] = vol.dims;
  const n = X * Y * Z;
  if (![X, Y, Z].every((v) => Number.isInteger(v) && v >= 1 && v <= 32767)) {
    throw fjError("FJ_DATA_NIFTI_DIMS", `dims ${vol.dims.join("×")}, expected integers 1–32767`, {
      file: where,
    });
  }
  if (vol.data.length !== n) {
    throw fjError(
      "FJ_DATA_NIFTI_DIMS",
      `data has ${vol.data.length} values, expected ${X}×${Y}×${Z} = ${n}`,
      {
        file: where,
      },
    );
  }
  if (!vol.spacing.every((s) => Number.isFinite(s) && s > 0)) {
    throw fjError("FJ_DATA_NIFTI_SPACING", `spacing ${vol.spacing.join("×")}, expected > 0`, { file: where });
  }
  const datatype = options.datatype ?? vol.datatype;
  if (!(datatype in DATATYPE_CODES)) {
    throw fjError(
      "FJ_DATA_NIFTI_DATATYPE",
      `datatype '${datatype}', expected one of ${NIFTI_DATATYPES.join(", ")}`,
      { file: where },
    );
  }
  const info = isNiftiHeaderInfo(vol.header) ? vol.header : undefined;
  const affine = vol.affine;
  const { quatern: qFromAffine, zooms } = affineToQuatern(affine);
  for (let i = 0; i < 3; i++) {
    if (Math.abs(zooms[i] - vol.spacing[i]) > 1e-3 * Math.max(1, vol.spacing[i])) {
      throw fjError(
        "FJ_DATA_NIFTI_AFFINE",
        `affine column ${i} has length ${zooms[i].toFixed(6)} mm but spacing[${i}] is ${vol.spacing[i]}, expected them to agree`,
        { file: where },
      );
    }
  }
  const unchanged = info !== undefined && sameAffine(affine, info.affineRead);
  let qformCode = 1;
  let sformCode = 1;
  let quatern = qFromAffine;
  let srow = [0, 1, 2].map((r) => [affine[r][0], affine[r][1], affine[r][2], affine[r][3]]);
  if (info !== undefined) {
    qformCode = info.qformCode > 0 ? info.qformCode : info.sformCode > 0 ? info.sformCode : 1;
    sformCode = info.sformCode > 0 ? info.sformCode : info.qformCode > 0 ? info.qformCode : 1;
    if (unchanged && info.qformCode > 0) quatern = info.quatern;
    if (unchanged && info.sformCode > 0) srow = info.srow.map((r) => [...r]);
  }

  // Scaling: keep the file's slope/intercept when writing back the same integer datatype.
  const range = RANGES[datatype];
  let slope = 1;
  let inter = 0;
  if (
    range !== undefined &&
    info !== undefined &&
    info.datatype === datatype &&
    (info.sclSlope !== 1 || info.sclInter !== 0)
  ) {
    slope = info.sclSlope;
    inter = info.sclInter;
  }
  const bytes = BYTES[datatype];
  const out = Buffer.alloc(352 + n * bytes);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setInt32(0, 348, true);
  view.setUint8(38, "r".charCodeAt(0));
  view.setUint8(39, info?.dimInfo ?? 0);
  const dim = [3, X, Y, Z, 1, 1, 1, 1];
  for (let i = 0; i < 8; i++) view.setInt16(40 + 2 * i, dim[i], true);
  view.setInt16(68, info?.intentCode ?? 0, true);
  view.setInt16(70, DATATYPE_CODES[datatype], true);
  view.setInt16(72, bytes * 8, true);
  const pixdim = [quatern[6] < 0 ? -1 : 1, vol.spacing[0], vol.spacing[1], vol.spacing[2], 1, 1, 1, 1];
  for (let i = 0; i < 8; i++) view.setFloat32(76 + 4 * i, pixdim[i], true);
  view.setFloat32(108, 352, true);
  view.setFloat32(112, range === undefined ? 1 : slope, true);
  view.setFloat32(116, range === undefined ? 0 : inter, true);
  // xyzt_units: mm (2) + seconds (8) unless the source said otherwise.
  view.setUint8(123, info?.xyztUnits ?? 10);
  view.setFloat32(124, info?.calMax ?? 0, true);
  view.setFloat32(128, info?.calMin ?? 0, true);
  writeString(view, 148, 80, info?.description ?? "fedjoint");
  writeString(view, 228, 24, info?.auxFile ?? "");
  view.setInt16(252, qformCode, true);
  view.setInt16(254, sformCode, true);
  for (let i = 0; i < 6; i++) view.setFloat32(256 + 4 * i, quatern[i], true);
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 4; c++) view.setFloat32(280 + 16 * r + 4 * c, srow[r][c], true);
  writeString(view, 328, 16, info?.intentName ?? "");
  out.write("n+1\0", 344, "latin1");
  // extension flag bytes 348..351 stay zero

  const src = vol.data;
  const dst = typedView(out.buffer, out.byteOffset + 352, n, datatype);
  if (range === undefined) {
    for (let i = 0; i < n; i++) dst[i] = src[i];
  } else {
    const [lo, hi] = range;
    for (let i = 0; i < n; i++) {
      const v = Math.round((src[i] - inter) / slope);
      if (!(v >= lo && v <= hi)) {
        throw fjError(
          "FJ_DATA_NIFTI_RANGE",
          `value ${src[i]} at voxel ${i} does not fit ${datatype} (${lo}…${hi})`,
          { file: where },
        );
      }
      dst[i] = v;
    }
  }
  return out;
}

/**
 * Writes a volume atomically as `.nii` or `.nii.gz` (by extension). qform and sform are both
 * written from `vol.affine`; `options.datatype` overrides the volume's datatype.
 */
export async function writeNifti(
  path: string,
  vol: NiftiVolume,
  options: { datatype?: NiftiDatatype; gzipLevel?: number } = {},
): Promise<void> {
  if (!isNiftiPath(path)) {
    throw fjError("FJ_DATA_NIFTI_PATH", "expected a file name ending in .nii or .nii.gz", { file: path });
  }
  const raw = encodeNifti(vol, { datatype: options.datatype, path });
  const bytes = path.endsWith(".gz") ? await gzipAsync(raw, { level: options.gzipLevel ?? 6 }) : raw;
  await writeFileAtomic(path, bytes);
}
