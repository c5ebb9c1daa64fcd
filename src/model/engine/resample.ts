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

/** 2×2 max-pooling with stride 2. */
export function maxPool2x(x: tf.Tensor4D): tf.Tensor4D {
  return tf.maxPool(x, 2, 2, "valid");
}
