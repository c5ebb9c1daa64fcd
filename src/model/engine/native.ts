import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { tf } from "./tf.js";

/**
 * Optional native convolution kernels for the wasm backend (native/conv.cc: im2col + OpenBLAS
 * SGEMM, multi-threaded), built at install time when a C++ toolchain and libopenblas-dev are
 * present. They replace wasm's single-threaded Conv2D, slow Conv2DBackpropInput and MaxPoolGrad,
 * and add the Conv2DBackpropFilter kernel wasm lacks, reading and writing tensors in place on the WebAssembly heap (no copies).
 * Without the addon everything runs on wasm's own kernels with identical results.
 */

interface NativeConv {
  conv2d(heap: ArrayBuffer, xOff: number, wOff: number, outOff: number, geometry: number[]): void;
  conv2dFilterGrad(heap: ArrayBuffer, xOff: number, dyOff: number, dwOff: number, geometry: number[]): void;
  conv2dInputGrad(heap: ArrayBuffer, dyOff: number, wOff: number, dxOff: number, geometry: number[]): void;
  maxPool2x2Grad(heap: ArrayBuffer, xOff: number, dyOff: number, dxOff: number, shape: number[]): void;
  adamStep(
    heap: ArrayBuffer,
    pOff: number,
    gOff: number,
    mOff: number,
    vOff: number,
    size: number,
    lr: number,
    beta1: number,
    beta2: number,
    epsilon: number,
    step: number,
  ): void;
  setThreads(n: number): void;
  config(): string;
}

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const ADDON = path.resolve(here, "../../../native/build/Release/fedjoint_conv.node");

let addon: NativeConv | undefined;
let active = false;

/** Loads the addon if it was built; returns undefined (and stays on wasm kernels) otherwise. */
export function loadNativeConv(): NativeConv | undefined {
  if (addon) return addon;
  if (process.env.FEDJOINT_NATIVE === "0" || !existsSync(ADDON)) return undefined;
  try {
    addon = require(ADDON) as NativeConv;
  } catch {
    addon = undefined;
  }
  return addon;
}

function offset(backend: BackendWasm, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId)!.memoryOffset;
}

function heapOf(backend: BackendWasm): ArrayBuffer {
  return (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer as ArrayBuffer;
}

type ConvAttrs = {
  strides: number | [number, number];
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dilations?: number | [number, number];
  dimRoundingMode?: "floor" | "round" | "ceil";
};

type Shape4 = [number, number, number, number];

/** TensorFlow's convolution geometry for an input and a filter shape under a kernel's attributes. */
function convInfo(xShape: Shape4, filterShape: Shape4, a: ConvAttrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(a.dataFormat),
  );
}

/** [n,h,w,c, kh,kw,o, outH,outW, stride,dilation, padTop,padLeft] or undefined if unsupported. */
function geometry(info: tf.backend_util.Conv2DInfo): number[] | undefined {
  if (info.dataFormat !== "channelsLast") return undefined;
  if (info.strideHeight !== info.strideWidth || info.dilationHeight !== info.dilationWidth) return undefined;
  if (info.strideHeight > 1 && info.dilationHeight > 1) return undefined;
  return [
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.filterHeight,
    info.filterWidth,
    info.outChannels,
    info.outHeight,
    info.outWidth,
    info.strideHeight,
    info.dilationHeight,
    info.padInfo.top,
    info.padInfo.left,
  ];
}

/**
 * Registers the native kernels on the wasm backend (idempotent). Returns a description for the
 * engine log, or undefined when the addon is not available.
 */
export function activateNativeConv(threads: number): string | undefined {
  const native = loadNativeConv();
  if (!native) return undefined;
  native.setThreads(threads);
  if (active) return `native OpenBLAS convolutions x${threads}`;
  const wasmConv = tf.getKernel("Conv2D", "wasm");
  if (!wasmConv) return undefined;
  tf.unregisterKernel("Conv2D", "wasm");
  tf.registerKernel({
    kernelName: "Conv2D",
    backendName: "wasm",
    setupFunc: wasmConv.setupFunc,
    disposeFunc: wasmConv.disposeFunc,
    kernelFunc: (args) => {
      const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
      const a = args.attrs as unknown as ConvAttrs;
      const backend = args.backend as BackendWasm;
      const info = convInfo(x.shape as Shape4, filter.shape as Shape4, a);
      const g = geometry(info);
      if (!g || x.dtype !== "float32") return wasmConv.kernelFunc(args);
      const out = backend.makeOutput([...info.outShape], "float32");
      native.conv2d(heapOf(backend), offset(backend, x), offset(backend, filter), offset(backend, out), g);
      return out;
    },
  });
  tf.registerKernel({
    kernelName: "Conv2DBackpropFilter",
    backendName: "wasm",
    kernelFunc: (args) => {
      const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const a = args.attrs as unknown as ConvAttrs & { filterShape: Shape4 };
      const backend = args.backend as BackendWasm;
      const info = convInfo(x.shape as Shape4, a.filterShape, a);
      const g = geometry(info);
      if (!g) throw new Error("native Conv2DBackpropFilter: unsupported geometry");
      const out = backend.makeOutput([...a.filterShape], "float32");
      native.conv2dFilterGrad(
        heapOf(backend),
        offset(backend, x),
        offset(backend, dy),
        offset(backend, out),
        g,
      );
      return out;
    },
  });
  tf.registerKernel({
    kernelName: "Conv2DBackpropInput",
    backendName: "wasm",
    kernelFunc: (args) => {
      const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
      const a = args.attrs as unknown as ConvAttrs & { inputShape: Shape4 };
      const backend = args.backend as BackendWasm;
      const info = convInfo(a.inputShape, filter.shape as Shape4, a);
      const g = geometry(info);
      if (!g) throw new Error("native Conv2DBackpropInput: unsupported geometry");
      const out = backend.makeOutput([...a.inputShape], "float32");
      native.conv2dInputGrad(
        heapOf(backend),
        offset(backend, dy),
        offset(backend, filter),
        offset(backend, out),
        g,
      );
      return out;
    },
  });
  const wasmMaxPoolGrad = tf.getKernel("MaxPoolGrad", "wasm");
  if (wasmMaxPoolGrad) {
    tf.unregisterKernel("MaxPoolGrad", "wasm");
    tf.registerKernel({
      ...wasmMaxPoolGrad,
      kernelFunc: (args) => {
        const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
        const a = args.attrs as { filterSize: number | number[]; strides: number | number[]; pad: unknown };
        const [n, h, w, c] = input.shape;
        const two = (v: number | number[]) => (Array.isArray(v) ? v.every((e) => e === 2) : v === 2);
        if (
          !two(a.filterSize) ||
          !two(a.strides) ||
          a.pad !== "valid" ||
          h % 2 ||
          w % 2 ||
          input.dtype !== "float32"
        ) {
          return wasmMaxPoolGrad.kernelFunc(args);
        }
        const backend = args.backend as BackendWasm;
        const out = backend.makeOutput([n, h, w, c], "float32");
        native.maxPool2x2Grad(
          heapOf(backend),
          offset(backend, input),
          offset(backend, dy),
          offset(backend, out),
          [n, h, w, c],
        );
        return out;
      },
    });
  }
  active = true;
  return `native OpenBLAS convolutions x${threads}`;
}

/** True when the wasm backend is active and its convolution gradient kernels are the native ones. */
export function nativeConvGradsAvailable(): boolean {
  return active && tf.getBackend() === "wasm";
}

/**
 * One Adam step applied in place on the wasm heap to a variable and its moment buffers. Returns
 * false (and changes nothing) unless the native kernels are active on wasm and every buffer is
 * an unshared float32 tensor, so callers fall back to tfjs ops.
 */
export function nativeAdamStep(
  p: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  h: { lr: number; beta1: number; beta2: number; epsilon: number; step: number },
): boolean {
  if (!active || !addon || tf.getBackend() !== "wasm") return false;
  const backend = tf.backend() as unknown as BackendWasm;
  const data = [p, g, m, v].map((t) => backend.dataIdMap.get(t.dataId));
  if (data.some((d) => d?.dtype !== "float32") || p.size !== g.size) return false;
  // p, m and v are written: nobody else may hold their buffers.
  if (data[0]!.refCount !== 1 || data[2]!.refCount !== 1 || data[3]!.refCount !== 1) return false;
  addon.adamStep(
    heapOf(backend),
    data[0]!.memoryOffset,
    data[1]!.memoryOffset,
    data[2]!.memoryOffset,
    data[3]!.memoryOffset,
    p.size,
    h.lr,
    h.beta1,
    h.beta2,
    h.epsilon,
    h.step,
  );
  return true;
}
