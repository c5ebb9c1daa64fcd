import { FUSED } from "./native/index.js";
import { tf } from "./tf.js";

/**
 * Trainable 2D convolution on every backend. Where the active backend has both convolution
 * gradient kernels (native, tensorflow, cpu) it is tf.conv2d with tfjs's own gradient; elsewhere
 * (tfjs-backend-wasm has no Conv2DBackpropFilter kernel and a slow Conv2DBackpropInput) the
 * gradients are built from forward kernels only (Conv2D, MatMul, Slice, Concat, Pad, Transpose):
 *
 *   y[n,i,j,o] = Σ x_pad[n, i·s+kh, j·s+kw, c] · w[kh,kw,c,o]
 *   dx        = valid conv of the zero-dilated, (K−1)-padded dy with w rotated 180° and c↔o swapped
 *   dw        = valid conv of x_padᵀ (channels ↔ batch) with dyᵀ as the kernel, dilated by the stride
 *
 * Layout NHWC, filter [KH, KW, Cin, Cout] (tfjs convention).
 */

export type ConvPadding = "same" | "valid";

export interface Conv2dOptions {
  stride?: 1 | 2;
  padding?: ConvPadding;
}

interface Pads {
  top: number;
  left: number;
  bottom: number;
  right: number;
  outH: number;
  outW: number;
}

/** TensorFlow's padding arithmetic for 'same' and 'valid'. */
export function convPads(
  h: number,
  w: number,
  kh: number,
  kw: number,
  stride: number,
  padding: ConvPadding,
): Pads {
  if (padding === "valid") {
    const outH = Math.floor((h - kh) / stride) + 1;
    const outW = Math.floor((w - kw) / stride) + 1;
    return { top: 0, left: 0, bottom: 0, right: 0, outH, outW };
  }
  const outH = Math.ceil(h / stride);
  const outW = Math.ceil(w / stride);
  const padH = Math.max((outH - 1) * stride + kh - h, 0);
  const padW = Math.max((outW - 1) * stride + kw - w, 0);
  const top = Math.floor(padH / 2);
  const left = Math.floor(padW / 2);
  return { top, left, bottom: padH - top, right: padW - left, outH, outW };
}

/** Inserts (stride−1) zeros between rows and columns of dy: [N,H,W,C] → [N,(H−1)s+1,(W−1)s+1,C]. */
function dilate(dy: tf.Tensor4D, stride: number): tf.Tensor4D {
  if (stride === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const spread = tf.pad(dy.reshape([n, h, 1, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, stride - 1],
    [0, 0],
    [0, stride - 1],
    [0, 0],
  ]);
  const full = spread.reshape([n, h * stride, w * stride, c]);
  return tf.slice(full, [0, 0, 0, 0], [n, (h - 1) * stride + 1, (w - 1) * stride + 1, c]) as tf.Tensor4D;
}

function inputGradient(
  dy: tf.Tensor4D,
  w: tf.Tensor4D,
  xShape: number[],
  stride: number,
  p: Pads,
): tf.Tensor4D {
  const [kh, kw] = w.shape;
  // Rotate 180° and swap in/out channels: wT[a,b,o,c] = w[KH−1−a, KW−1−b, c, o].
  const wRot = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
  const [n, h, wd, c] = xShape;
  if (stride === 1 && kh % 2 === 1 && kw % 2 === 1 && p.top === (kh - 1) / 2 && p.left === (kw - 1) / 2) {
    // Symmetric 'same' (odd kernels, stride 1): the full correlation cropped back is a 'same' conv.
    return tf.conv2d(dy, wRot, 1, "same");
  }
  const dyd = dilate(dy, stride);
  const full = tf.conv2d(
    tf.pad(dyd, [
      [0, 0],
      [kh - 1, kh - 1],
      [kw - 1, kw - 1],
      [0, 0],
    ]),
    wRot,
    1,
    "valid",
  ); // gradient w.r.t. x_pad rows/cols 0 .. (outH−1)s+KH−1
  const usedH = full.shape[1];
  const usedW = full.shape[2];
  const padH = h + p.top + p.bottom;
  const padW = wd + p.left + p.right;
  const grown = tf.pad(full, [
    [0, 0],
    [0, padH - usedH],
    [0, padW - usedW],
    [0, 0],
  ]);
  return tf.slice(grown, [0, p.top, p.left, 0], [n, h, wd, c]);
}

function filterGradient(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  kh: number,
  kw: number,
  stride: number,
  p: Pads,
): tf.Tensor4D {
  const [n, , , c] = x.shape;
  const [, outH, outW, o] = dy.shape;
  if (kh === 1 && kw === 1 && stride === 1) {
    const m = n * outH * outW;
    // xᵀ explicitly: a transposeA matMul is an order of magnitude slower on wasm.
    return tf.matMul(tf.transpose(x.reshape([m, c])), dy.reshape([m, o])).reshape([1, 1, c, o]);
  }
  // dw[a,b,c,o] = Σ_{n,i,j} x_pad[n, i·s+a, j·s+b, c] · dy[n,i,j,o] is itself a valid convolution:
  // input x_padᵀ [C, Hp, Wp, N] (channels ↔ batch), kernel dyᵀ [outH, outW, N, O] dilated by the
  // stride. One forward Conv2D, the backend's fastest kernel, with a tiny [C, KH, KW, O] output.
  const xt = tf.pad(tf.transpose(x, [3, 1, 2, 0]), [
    [0, 0],
    [p.top, p.bottom],
    [p.left, p.right],
    [0, 0],
  ]) as tf.Tensor4D;
  const kernel = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
  const full = tf.conv2d(xt, kernel, 1, "valid", "NHWC", stride); // [C, ≥KH, ≥KW, O]
  const cropped =
    full.shape[1] === kh && full.shape[2] === kw ? full : tf.slice(full, [0, 0, 0, 0], [c, kh, kw, o]);
  return tf.transpose(cropped, [1, 2, 0, 3]) as tf.Tensor4D;
}

/** Whether the active backend registers a kernel. */
function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/** conv2d with gradients on every backend (see file comment). Same values as tf.conv2d. */
export function conv2d(x: tf.Tensor4D, w: tf.Tensor4D, options: Conv2dOptions = {}): tf.Tensor4D {
  const stride = options.stride ?? 1;
  const padding = options.padding ?? "same";
  if (hasKernel("Conv2DBackpropInput") && hasKernel("Conv2DBackpropFilter")) {
    return tf.conv2d(x, w, stride, padding);
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, wi, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
    save([xi, wi]);
    const value = tf.conv2d(xi, wi, stride, padding);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
      const [, h, wd] = xs.shape;
      const [kh, kw] = ws.shape;
      const p = convPads(h, wd, kh, kw, stride, padding);
      const dy4 = dy as tf.Tensor4D;
      return [inputGradient(dy4, ws, xs.shape, stride, p), filterGradient(xs, dy4, kh, kw, stride, p)];
    };
    return { value, gradFunc };
  });
  return op(x, w) as tf.Tensor4D;
}

/**
 * Σ_i conv2d(x_i, w_i) (same spatial shape and stride, any input channels): the convolution of a
 * channel concatenation, or two convolutions feeding one sum. On the native backend one kernel
 * accumulates every term into one output (no per-term tensors); elsewhere the sum of conv2d.
 */
export function conv2dSum(terms: [tf.Tensor4D, tf.Tensor4D][], options: Conv2dOptions = {}): tf.Tensor4D {
  if (terms.length === 1) return conv2d(terms[0][0], terms[0][1], options);
  if (!hasKernel(FUSED.conv)) return tf.addN(terms.map(([x, w]) => conv2d(x, w, options))) as tf.Tensor4D;
  const attrs = { strides: options.stride ?? 1, pad: options.padding ?? "same", dataFormat: "NHWC" };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const tensors = args as tf.Tensor4D[];
    save(tensors);
    const inputs = Object.fromEntries(
      terms.flatMap((_, i) => [
        [`x${i}`, tensors[2 * i]],
        [`w${i}`, tensors[2 * i + 1]],
      ]),
    );
    const value = tf.engine().runKernel(FUSED.conv, inputs, {
      ...attrs,
      parts: terms.length,
    } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] =>
      terms.flatMap((_, i) => {
        const [xs, ws] = [saved[2 * i], saved[2 * i + 1]];
        return [
          tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: ws }, {
            ...attrs,
            inputShape: xs.shape,
          } as unknown as tf.NamedAttrMap) as tf.Tensor,
          tf.engine().runKernel("Conv2DBackpropFilter", { x: xs, dy }, {
            ...attrs,
            filterShape: ws.shape,
          } as unknown as tf.NamedAttrMap) as tf.Tensor,
        ];
      });
    return { value, gradFunc };
  });
  return op(...terms.flat()) as tf.Tensor4D;
}
