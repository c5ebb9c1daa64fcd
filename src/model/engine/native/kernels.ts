import { tf } from "../tf.js";
import { BINARY, type NativeAddon, REDUCE, UNARY } from "./addon.js";
import { NativeBackend } from "./backend.js";

/** The tfjs backend name of the native engine. */
export const NATIVE_BACKEND = "native";

/**
 * Kernels only the native backend has (the engine ops in ../conv.ts and ../batch-norm.ts use them
 * when the active backend registers them): a sum of convolutions into one output (its gradient
 * is the standard kernels' per term), and training batch norm over domain groups, optionally
 * fused with the following ReLU, with its gradient.
 */
export const FUSED = {
  conv: "FedjointConv2D",
  batchNorm: "FedjointBatchNormTrain",
  runningAverage: "FedjointRunningAverage",
  batchNormGrad: "FedjointBatchNormTrainGrad",
} as const;

type Args = { inputs: Record<string, tf.TensorInfo>; backend: NativeBackend; attrs: Record<string, unknown> };
/** A native kernel; undefined = "not this case", and the cpu backend's kernel runs instead. */
type Impl = (args: Args) => tf.TensorInfo | tf.TensorInfo[] | undefined;

type Shape4 = [number, number, number, number];
type Pad = "valid" | "same" | number | tf.backend_util.ExplicitPadding;
interface ConvAttrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat?: "NHWC" | "NCHW";
  dilations?: number | [number, number];
  dimRoundingMode?: "floor" | "round" | "ceil";
}

function register(name: string, impl: Impl): void {
  const fallback = tf.getKernel(name, "cpu");
  if (tf.getKernel(name, NATIVE_BACKEND)) tf.unregisterKernel(name, NATIVE_BACKEND);
  tf.registerKernel({
    kernelName: name,
    backendName: NATIVE_BACKEND,
    kernelFunc: (args) => {
      const out = impl(args as unknown as Args);
      if (out) return out;
      if (!fallback) throw new Error(`native backend: no kernel for ${name} with these inputs`);
      return fallback.kernelFunc(args);
    },
  });
}

function rowMajorStrides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** Element strides of an input for each output dimension (0 where it is broadcast). */
function broadcastStrides(inShape: number[], outShape: number[]): number[] {
  const own = rowMajorStrides(inShape);
  const lead = outShape.length - inShape.length;
  return outShape.map((_, d) => (d < lead || inShape[d - lead] === 1 ? 0 : own[d - lead]));
}

/** [n,h,w,c,kh,kw,o,outH,outW,stride,dilation,padTop,padLeft] for native/src conv kernels. */
function convGeometry(
  source: Shape4,
  filter: Shape4,
  a: ConvAttrs,
): { g: number[]; out: Shape4 } | undefined {
  if ((a.dataFormat ?? "NHWC") !== "NHWC") return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    source,
    filter,
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    false,
    "channelsLast",
  );
  if (info.strideHeight !== info.strideWidth || info.dilationHeight !== info.dilationWidth) return undefined;
  if (info.strideHeight > 1 && info.dilationHeight > 1) return undefined;
  const g = [
    source[0],
    source[1],
    source[2],
    source[3],
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
  return { g, out: [info.batchSize, info.outHeight, info.outWidth, info.outChannels] };
}

/** Pool geometry when the window tiles the input (filter = stride, no padding, no dilation). */
function tiledPool(
  shape: number[],
  a: {
    filterSize: number | number[];
    strides: number | number[];
    pad: Pad;
    dimRoundingMode?: "floor" | "round" | "ceil";
  },
): { kh: number; kw: number } | undefined {
  const info = tf.backend_util.computePool2DInfo(
    shape as Shape4,
    a.filterSize as [number, number],
    a.strides as [number, number],
    1,
    a.pad,
    a.dimRoundingMode,
  );
  const p = info.padInfo;
  if (p.top || p.left || p.bottom || p.right) return undefined;
  if (info.strideHeight !== info.filterHeight || info.strideWidth !== info.filterWidth) return undefined;
  if (info.outHeight !== Math.floor(shape[1] / info.filterHeight)) return undefined;
  if (info.outWidth !== Math.floor(shape[2] / info.filterWidth)) return undefined;
  return { kh: info.filterHeight, kw: info.filterWidth };
}

/** Reduced axes as one contiguous block → [outer, reduce, inner], or undefined. */
function reduceBlock(
  shape: number[],
  axis: number | number[],
): { outer: number; reduce: number; inner: number } | undefined {
  const axes = tf.util.parseAxisParam(axis, shape).sort((x, y) => x - y);
  if (axes.length === 0) return undefined;
  for (let i = 1; i < axes.length; i++) if (axes[i] !== axes[i - 1] + 1) return undefined;
  const lo = axes[0];
  const hi = axes[axes.length - 1];
  const prod = (from: number, to: number) => shape.slice(from, to).reduce((p, d) => p * d, 1);
  const block = { outer: prod(0, lo), reduce: prod(lo, hi + 1), inner: prod(hi + 1, shape.length) };
  return block.outer * block.reduce * block.inner > 0 ? block : undefined;
}

/** Registers the native backend and its kernels (idempotent). */
export function registerNativeBackend(addon: NativeAddon): void {
  if (tf.findBackendFactory(NATIVE_BACKEND)) return;
  tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend(), 1);
  for (const k of tf.getKernelsForBackend("cpu")) tf.registerKernel({ ...k, backendName: NATIVE_BACKEND });

  for (const [name, op] of [
    ["Add", BINARY.Add],
    ["Sub", BINARY.Sub],
    ["Multiply", BINARY.Mul],
    ["RealDiv", BINARY.Div],
    ["Maximum", BINARY.Maximum],
    ["Minimum", BINARY.Minimum],
    ["SquaredDifference", BINARY.SquaredDifference],
  ] as const) {
    register(name, ({ inputs, backend }) => {
      const { a, b } = inputs;
      const av = backend.f32(a);
      const bv = backend.f32(b);
      if (!av || !bv) return undefined;
      const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const dims = shape.length === 0 ? [1] : shape;
      const as = shape.length === 0 ? [0] : broadcastStrides(a.shape, shape);
      const bs = shape.length === 0 ? [0] : broadcastStrides(b.shape, shape);
      return backend.output(shape, (out) => addon.binary(op, av, bv, out, dims, as, bs));
    });
  }

  for (const [name, op] of Object.entries(UNARY)) {
    register(name, ({ inputs, backend, attrs }) => {
      const x = inputs.x;
      const xv = backend.f32(x);
      if (!xv) return undefined;
      const alpha = name === "Step" ? Number(attrs.alpha ?? 0) : 0;
      return backend.output([...x.shape], (out) => addon.unary(op, xv, out, alpha));
    });
  }

  register("AddN", ({ inputs, backend }) => {
    const list = inputs as unknown as tf.TensorInfo[];
    const values = list.map((t) => backend.f32(t));
    if (values.some((v) => !v)) return undefined;
    return backend.output([...list[0].shape], (out) => addon.addN(values as Float32Array[], out));
  });

  for (const [name, op, axisAttr] of [
    ["Sum", REDUCE.Sum, "axis"],
    ["Mean", REDUCE.Mean, "axis"],
    ["Max", REDUCE.Max, "reductionIndices"],
    ["Min", REDUCE.Min, "axis"],
  ] as const) {
    register(name, ({ inputs, backend, attrs }) => {
      const x = inputs.x;
      const xv = backend.f32(x);
      const block = xv && reduceBlock(x.shape, attrs[axisAttr] as number | number[]);
      if (!xv || !block) return undefined;
      const axes = tf.util.parseAxisParam(attrs[axisAttr] as number | number[], x.shape);
      const shape = attrs.keepDims
        ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
        : x.shape.filter((_, i) => !axes.includes(i));
      return backend.output(shape, (out) =>
        addon.reduce(op, xv, out, block.outer, block.reduce, block.inner),
      );
    });
  }

  for (const [name, kind] of [
    ["MaxPool", 0],
    ["AvgPool", 1],
  ] as const) {
    register(name, ({ inputs, backend, attrs }) => {
      const x = inputs.x;
      const xv = backend.f32(x);
      const tile = xv && x.shape.length === 4 && tiledPool(x.shape, attrs as never);
      if (!xv || !tile) return undefined;
      const [n, h, w, c] = x.shape;
      const shape = [n, Math.floor(h / tile.kh), Math.floor(w / tile.kw), c];
      return backend.output(shape, (out) => addon.pool(kind, xv, out, n, h, w, c, tile.kh, tile.kw));
    });
  }
  for (const [name, kind] of [
    ["MaxPoolGrad", 0],
    ["AvgPoolGrad", 1],
  ] as const) {
    register(name, ({ inputs, backend, attrs }) => {
      const { dy, input } = inputs;
      const dyv = backend.f32(dy);
      const xv = backend.f32(input);
      const tile = dyv && xv && input.shape.length === 4 && tiledPool(input.shape, attrs as never);
      if (!dyv || !xv || !tile) return undefined;
      const [n, h, w, c] = input.shape;
      return backend.output([n, h, w, c], (out) =>
        addon.poolGrad(kind, kind === 0 ? xv : null, dyv, out, n, h, w, c, tile.kh, tile.kw),
      );
    });
  }

  register("ResizeNearestNeighbor", ({ inputs, backend, attrs }) => {
    const images = inputs.images;
    const xv = backend.f32(images);
    if (!xv || images.shape.length !== 4) return undefined;
    const { alignCorners, halfPixelCenters, size } = attrs as {
      alignCorners: boolean;
      halfPixelCenters: boolean;
      size: [number, number];
    };
    const [n, h, w, c] = images.shape;
    // tfjs-backend-cpu's source-index arithmetic, as index tables.
    const table = (oldSize: number, newSize: number) => {
      const ratio =
        (alignCorners && newSize > 1 ? oldSize - 1 : oldSize) /
        (alignCorners && newSize > 1 ? newSize - 1 : newSize);
      return Int32Array.from({ length: newSize }, (_, i) => {
        const frac = halfPixelCenters ? ratio * (i + 0.5) : ratio * i;
        const nearest = Math.min(oldSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
        return halfPixelCenters ? Math.max(0, nearest) : nearest;
      });
    };
    const rows = table(h, size[0]);
    const cols = table(w, size[1]);
    return backend.output([n, size[0], size[1], c], (out) =>
      addon.resize(xv, out, n, h, w, c, size[0], size[1], rows, cols),
    );
  });

  // Strided copies: non-contiguous slices (contiguous ones stay zero-copy views), padding, concat.
  register("Slice", ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xv = backend.f32(x);
    if (!xv || x.shape.length === 0 || x.shape.length > 8) return undefined;
    const [begin, size] = tf.slice_util.parseSliceParams(
      x as tf.Tensor,
      attrs.begin as number[],
      attrs.size as number[],
    );
    if (tf.slice_util.isSliceContinous(x.shape, begin, size) || size.some((d) => d === 0)) return undefined;
    const zeros = size.map(() => 0);
    return backend.output(size, (out) => addon.copy(xv, [...x.shape], begin, out, size, zeros, size));
  });
  register("PadV2", ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xv = backend.f32(x);
    const paddings = attrs.paddings as [number, number][];
    if (!xv || x.shape.length === 0 || x.shape.length > 8 || x.shape.some((d) => d === 0)) return undefined;
    const shape = x.shape.map((d, i) => paddings[i][0] + d + paddings[i][1]);
    return backend.output(shape, (out) => {
      addon.fill(out, Number(attrs.constantValue ?? 0));
      addon.copy(
        xv,
        [...x.shape],
        x.shape.map(() => 0),
        out,
        shape,
        paddings.map((p) => p[0]),
        [...x.shape],
      );
    });
  });
  register("Concat", ({ inputs, backend, attrs }) => {
    const list = (inputs as unknown as tf.TensorInfo[]).filter((t) => tf.util.sizeFromShape(t.shape) > 0);
    const values = list.map((t) => backend.f32(t));
    if (list.length < 2 || values.some((v) => !v) || list[0].shape.length > 8) return undefined;
    const axis = tf.util.parseAxisParam(attrs.axis as number, list[0].shape)[0];
    const shape = tf.backend_util.computeOutShape(
      list.map((t) => t.shape),
      axis,
    );
    return backend.output(shape, (out) => {
      let offset = 0;
      list.forEach((t, i) => {
        const at = shape.map((_, d) => (d === axis ? offset : 0));
        addon.copy(
          values[i]!,
          [...t.shape],
          t.shape.map(() => 0),
          out,
          shape,
          at,
          [...t.shape],
        );
        offset += t.shape[axis];
      });
    });
  });

  // Convolutions: the standard kernels and the multi-input sum.
  const convForward = (pairs: [tf.TensorInfo, tf.TensorInfo][], backend: NativeBackend, a: ConvAttrs) => {
    const xs = pairs.map(([x]) => backend.f32(x));
    const ws = pairs.map(([, w]) => backend.f32(w));
    if (xs.some((v) => !v) || ws.some((v) => !v)) return undefined;
    const [x0, w0] = pairs[0];
    const geo = convGeometry(x0.shape as Shape4, w0.shape as Shape4, a);
    if (!geo) return undefined;
    return backend.output(geo.out, (out) =>
      addon.conv2d(xs as Float32Array[], ws as Float32Array[], out, geo.g),
    );
  };
  const convInput = (
    dy: tf.TensorInfo,
    filter: tf.TensorInfo,
    source: Shape4,
    backend: NativeBackend,
    a: ConvAttrs,
  ) => {
    const dyv = backend.f32(dy);
    const wv = backend.f32(filter);
    const geo = dyv && wv && convGeometry(source, filter.shape as Shape4, a);
    if (!dyv || !wv || !geo) return undefined;
    return backend.output([...source], (out) => addon.conv2dInputGrad(dyv, wv, out, geo.g));
  };
  const convFilter = (
    x: tf.TensorInfo,
    dy: tf.TensorInfo,
    filterShape: Shape4,
    backend: NativeBackend,
    a: ConvAttrs,
  ) => {
    const xv = backend.f32(x);
    const dyv = backend.f32(dy);
    const geo = xv && dyv && convGeometry(x.shape as Shape4, filterShape, a);
    if (!xv || !dyv || !geo) return undefined;
    return backend.output([...filterShape], (out) => addon.conv2dFilterGrad(xv, dyv, out, geo.g));
  };

  register("Conv2D", ({ inputs, backend, attrs }) =>
    convForward([[inputs.x, inputs.filter]], backend, attrs as unknown as ConvAttrs),
  );
  register("Conv2DBackpropInput", ({ inputs, backend, attrs }) =>
    convInput(inputs.dy, inputs.filter, attrs.inputShape as Shape4, backend, attrs as unknown as ConvAttrs),
  );
  register("Conv2DBackpropFilter", ({ inputs, backend, attrs }) =>
    convFilter(inputs.x, inputs.dy, attrs.filterShape as Shape4, backend, attrs as unknown as ConvAttrs),
  );
  const fusedOnly = (name: string, impl: Impl) =>
    register(name, (args) => {
      const out = impl(args);
      if (!out) throw new Error(`native backend: ${name} cannot run on these inputs`);
      return out;
    });
  fusedOnly(FUSED.conv, ({ inputs, backend, attrs }) => {
    const parts = Number(attrs.parts);
    const pairs = Array.from(
      { length: parts },
      (_, i) => [inputs[`x${i}`], inputs[`w${i}`]] as [tf.TensorInfo, tf.TensorInfo],
    );
    return convForward(pairs, backend, attrs as unknown as ConvAttrs);
  });
  // (1 − m)·running + m·s·batch[row] for batch-norm running statistics: a few hundred floats, in JS.
  fusedOnly(FUSED.runningAverage, ({ inputs, backend, attrs }) => {
    const rv = backend.f32(inputs.running);
    const bv = backend.f32(inputs.batch);
    if (!rv || !bv) return undefined;
    const c = rv.length;
    const base = Number(attrs.row) * c;
    const a = Number(attrs.a);
    const b = Number(attrs.b);
    return backend.output([c], (out) => {
      for (let i = 0; i < c; i++) out[i] = a * rv[i] + b * bv[base + i];
    });
  });

  // Batch norm over domain groups: x [G, A, B, C], γ and β [G, 1, 1, C].
  fusedOnly(FUSED.batchNorm, ({ inputs, backend, attrs }) => {
    const { x, gamma, beta } = inputs;
    const [xv, gv, bv] = [x, gamma, beta].map((t) => backend.f32(t));
    if (!xv || !gv || !bv) return undefined;
    const [groups, a, b, c] = x.shape;
    const stats = [groups, 1, 1, c];
    return backend.outputs([[...x.shape], stats, stats], ([y, mean, variance]) =>
      addon.batchNorm(
        xv,
        gv,
        bv,
        y,
        mean,
        variance,
        groups,
        a * b,
        c,
        Number(attrs.epsilon),
        Boolean(attrs.relu),
      ),
    );
  });
  fusedOnly(FUSED.batchNormGrad, ({ inputs, backend, attrs }) => {
    const { dy, x, y, mean, variance, gamma } = inputs;
    const relu = Boolean(attrs.relu);
    const [dyv, xv, mv, vv, gv] = [dy, x, mean, variance, gamma].map((t) => backend.f32(t));
    const yv = relu ? backend.f32(y) : null;
    if (!dyv || !xv || !mv || !vv || !gv || yv === undefined) return undefined;
    const [groups, a, b, c] = x.shape;
    const stats = [groups, 1, 1, c];
    return backend.outputs([[...x.shape], stats, stats], ([dx, dgamma, dbeta]) =>
      addon.batchNormGrad(
        dyv,
        xv,
        yv,
        mv,
        vv,
        gv,
        dx,
        dgamma,
        dbeta,
        groups,
        a * b,
        c,
        Number(attrs.epsilon),
        relu,
      ),
    );
  });
}
