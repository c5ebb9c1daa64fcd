import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The native kernels (native/src/*.cc, built by `npm ci` through scripts/build-native.mjs): plain
 * functions over Float32Arrays in ordinary memory, multi-threaded, convolutions as im2col +
 * OpenBLAS SGEMM. The `native` tfjs backend (./backend.ts) calls them; nothing else does.
 * Every call checks array lengths against its shape arguments and throws ERR_NATIVE_ARGS on a
 * mismatch (a bug in this glue, never a user error).
 */
export interface NativeAddon {
  /** out = Σ_i conv(xs[i], ws[i]); geometry = [n,h,w,c,kh,kw,o,outH,outW,stride,dilation,padTop,padLeft]. */
  conv2d(xs: Float32Array[], ws: Float32Array[], out: Float32Array, geometry: number[]): void;
  conv2dFilterGrad(x: Float32Array, dy: Float32Array, dw: Float32Array, geometry: number[]): void;
  conv2dInputGrad(dy: Float32Array, w: Float32Array, dx: Float32Array, geometry: number[]): void;
  batchNorm(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    y: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    groups: number,
    rows: number,
    channels: number,
    epsilon: number,
    relu: boolean,
  ): void;
  batchNormGrad(
    dy: Float32Array,
    x: Float32Array,
    y: Float32Array | null,
    mean: Float32Array,
    variance: Float32Array,
    gamma: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    groups: number,
    rows: number,
    channels: number,
    epsilon: number,
    relu: boolean,
  ): void;
  binary(
    op: number,
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    shape: number[],
    aStrides: number[],
    bStrides: number[],
  ): void;
  unary(op: number, x: Float32Array, out: Float32Array, alpha: number): void;
  addN(inputs: Float32Array[], out: Float32Array): void;
  reduce(op: number, x: Float32Array, out: Float32Array, outer: number, reduce: number, inner: number): void;
  pool(
    kind: 0 | 1,
    x: Float32Array,
    out: Float32Array,
    n: number,
    h: number,
    w: number,
    c: number,
    kh: number,
    kw: number,
  ): void;
  poolGrad(
    kind: 0 | 1,
    x: Float32Array | null,
    dy: Float32Array,
    dx: Float32Array,
    n: number,
    h: number,
    w: number,
    c: number,
    kh: number,
    kw: number,
  ): void;
  resize(
    x: Float32Array,
    out: Float32Array,
    n: number,
    h: number,
    w: number,
    c: number,
    outH: number,
    outW: number,
    rows: Int32Array,
    cols: Int32Array,
  ): void;
  /** dst[dstBegin + i] = src[srcBegin + i] for every index i of the box `size`. */
  copy(
    src: Float32Array,
    srcShape: number[],
    srcBegin: number[],
    dst: Float32Array,
    dstShape: number[],
    dstBegin: number[],
    size: number[],
  ): void;
  fill(dst: Float32Array, value: number): void;
  adam(
    p: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    epsilon: number,
    step: number,
  ): void;
  setThreads(n: number): void;
  /** Off: convolutions take the im2col + OpenBLAS path even in a oneDNN build (FEDJOINT_ONEDNN=0, tests). */
  useOneDnn(on: boolean): void;
  /** `onednn`: convolutions run through oneDNN (built with libdnnl-dev), else im2col + OpenBLAS. */
  info(): { blas: string; core: string; threads: number; onednn: boolean };
}

/** Operation codes shared with native/src/kernels.h (enum order). */
export const BINARY = {
  Add: 0,
  Sub: 1,
  Mul: 2,
  Div: 3,
  Maximum: 4,
  Minimum: 5,
  SquaredDifference: 6,
} as const;
export const UNARY = {
  Relu: 0,
  Step: 1,
  Sigmoid: 2,
  Exp: 3,
  Log: 4,
  Neg: 5,
  Square: 6,
  Sqrt: 7,
  Rsqrt: 8,
  Abs: 9,
  Tanh: 10,
  Reciprocal: 11,
} as const;
export const REDUCE = { Sum: 0, Mean: 1, Max: 2, Min: 3 } as const;

const here = path.dirname(fileURLToPath(import.meta.url));
/** Where scripts/build-native.mjs leaves the addon (from dist/… and src/… alike). */
export const ADDON_PATH = path.resolve(here, "../../../../native/build/Release/fedjoint_native.node");

export type AddonStatus = { addon: NativeAddon; reason?: undefined } | { addon?: undefined; reason: string };

let status: AddonStatus | undefined;

/**
 * OpenBLAS 0.3.21 (Debian 12) picks its kernels from the CPU model number and falls back to
 * "Prescott" (SSE3) on processors newer than it knows, e.g. recent Xeons under KVM: 4× slower
 * SGEMM. Unless the operator set OPENBLAS_CORETYPE, choose the kernel family from the CPU's
 * feature flags before the library loads.
 */
function chooseBlasCore(): void {
  if (process.env.OPENBLAS_CORETYPE || process.arch !== "x64" || process.platform !== "linux") return;
  let flags: Set<string>;
  try {
    const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
    const line = cpuinfo.split("\n").find((l) => l.startsWith("flags")) ?? "";
    flags = new Set(line.split(":")[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return;
  }
  const has = (...names: string[]) => names.every((n) => flags.has(n));
  if (has("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"))
    process.env.OPENBLAS_CORETYPE = "SkylakeX";
  else if (has("avx2", "fma")) process.env.OPENBLAS_CORETYPE = "Haswell";
}

/**
 * Loads the addon once. `FEDJOINT_NATIVE=0` disables it; a missing or unloadable build gives
 * the reason instead (the engine logs it as a warning and runs on wasm).
 */
export function loadNativeAddon(): AddonStatus {
  if (status) return status;
  if (process.env.FEDJOINT_NATIVE === "0") {
    status = { reason: "disabled by FEDJOINT_NATIVE=0" };
    return status;
  }
  if (!existsSync(ADDON_PATH)) {
    status = {
      reason: "not built (needs g++ and libopenblas-dev: `npm run setup`, see README Requirements)",
    };
    return status;
  }
  chooseBlasCore();
  process.env.OPENBLAS_NUM_THREADS ??= "1";
  // oneDNN runs on OpenMP: idle threads sleep instead of spinning, which collapses when several
  // training processes share the cores (a simulated federation). An operator's setting wins.
  process.env.OMP_WAIT_POLICY ??= "PASSIVE";
  try {
    status = { addon: createRequire(import.meta.url)(ADDON_PATH) as NativeAddon };
  } catch (err) {
    status = { reason: `could not be loaded: ${String(err)}` };
  }
  return status;
}
