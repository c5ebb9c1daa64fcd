import { tf } from "./tf.js";

/**
 * Float32 one-hot masks [...indices.shape, classes] of int32 class indices, computed the same way
 * on every backend: a row gather from the identity matrix. The obvious alternatives are wrong on
 * one backend each (tfjs 4.22): tfjs-backend-wasm's OneHot ignores `dtype` and writes int32 bits
 * into a float32 tensor, and tfjs-backend-webgpu casts int32 → float32 by relabelling the int32
 * buffer, which raw-copy kernels (Transpose, in the convolution filter gradient) then mis-read.
 */
export function oneHotFloat<R extends tf.Rank>(indices: tf.Tensor, classes: number): tf.Tensor<R> {
  return tf.tidy(() => tf.gather(tf.eye(classes), indices) as tf.Tensor<R>);
}
