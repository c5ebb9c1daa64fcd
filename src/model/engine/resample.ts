import { tf } from "./tf.js";

/**
 * Nearest-neighbour ×2 upsampling, NHWC. Forward with the backend's resize kernel; gradient =
 * 4 · avgPool2×2(dy) (each input pixel feeds a 2×2 block), a fast forward kernel everywhere.
 */
export function upsample2x(x: tf.Tensor4D): tf.Tensor4D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xIn = args[0] as tf.Tensor4D;
    const [, h, w] = xIn.shape;
    const value = tf.image.resizeNearestNeighbor(xIn, [2 * h, 2 * w], false, false);
    const gradFunc = (dy: tf.Tensor) => tf.mul(tf.avgPool(dy as tf.Tensor4D, 2, 2, "valid"), 4);
    return { value, gradFunc };
  });
  return op(x) as tf.Tensor4D;
}

/**
 * 2×2 max-pooling with stride 2; dy flows to the first maximum of each window (TensorFlow's rule).
 * tfjs-backend-wasm 4.22's MaxPoolGrad drops the gradient of windows whose values are all
 * negative, so on wasm the gradient is built from forward kernels instead.
 */
export function maxPool2x(x: tf.Tensor4D): tf.Tensor4D {
  if (tf.getBackend() !== "wasm") return tf.maxPool(x, 2, 2, "valid");
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
    const value = tf.maxPool(xi, 2, 2, "valid");
    save([xi, value]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, m] = saved as [tf.Tensor4D, tf.Tensor4D];
      const [n, h, w, c] = xs.shape;
      const [, oh, ow] = m.shape;
      const r = tf.slice(xs, [0, 0, 0, 0], [n, 2 * oh, 2 * ow, c]).reshape([n, oh, 2, ow, 2, c]);
      const phase = (a: number, b: number) =>
        tf.slice(r, [0, 0, a, 0, b, 0], [n, oh, 1, ow, 1, c]).reshape([n, oh, ow, c]);
      let taken: tf.Tensor = tf.zerosLike(m);
      const g = [phase(0, 0), phase(0, 1), phase(1, 0), phase(1, 1)].map((p) => {
        const first = tf.mul(tf.cast(tf.equal(p, m), "float32"), tf.sub(1, taken));
        taken = tf.add(taken, first);
        return tf.mul(dy, first);
      });
      const rows = [tf.stack([g[0], g[1]], 3), tf.stack([g[2], g[3]], 3)];
      const dx = tf.stack(rows, 2).reshape([n, 2 * oh, 2 * ow, c]);
      return [
        tf.pad(dx, [
          [0, 0],
          [0, h - 2 * oh],
          [0, w - 2 * ow],
          [0, 0],
        ]),
      ];
    };
    return { value, gradFunc };
  });
  return op(x) as tf.Tensor4D;
}
