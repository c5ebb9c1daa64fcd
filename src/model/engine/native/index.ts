import { tf } from "../tf.js";
import { loadNativeAddon } from "./addon.js";
import type { NativeBackend } from "./backend.js";
import { NATIVE_BACKEND, registerNativeBackend } from "./kernels.js";

export { FUSED, NATIVE_BACKEND } from "./kernels.js";

/**
 * The native engine: tensors in ordinary memory, native kernels (see ./backend.ts, ./kernels.ts).
 * `prepareNativeBackend` registers it when the addon loads; otherwise it says why not.
 */
export function prepareNativeBackend(
  threads: number,
): { ready: true; kernels: string } | { ready: false; reason: string } {
  const status = loadNativeAddon();
  if (!status.addon) return { ready: false, reason: status.reason };
  status.addon.setThreads(threads);
  if (process.env.FEDJOINT_ONEDNN === "0") status.addon.useOneDnn(false);
  registerNativeBackend(status.addon);
  const info = status.addon.info();
  const conv = info.onednn ? "oneDNN convolutions" : `im2col + OpenBLAS ${info.core} convolutions`;
  return { ready: true, kernels: `native kernels x${info.threads} threads, ${conv}` };
}

/** True when the active tfjs backend is the native one. */
export function nativeBackendActive(): boolean {
  return tf.getBackend() === NATIVE_BACKEND;
}

/**
 * One Adam step applied in place to a variable and its moment buffers by one native call.
 * Returns false (and changes nothing) unless the native backend is active and p, m and v are
 * float32 buffers nobody else references, so callers fall back to tfjs ops.
 */
export function nativeAdamStep(
  p: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  h: { lr: number; beta1: number; beta2: number; epsilon: number; step: number },
): boolean {
  const addon = loadNativeAddon().addon;
  if (!addon || !nativeBackendActive() || p.size !== g.size) return false;
  const backend = tf.backend() as unknown as NativeBackend;
  if (!backend.exclusive(p) || !backend.exclusive(m) || !backend.exclusive(v)) return false;
  const gv = backend.f32(g);
  if (!gv) return false;
  addon.adam(
    backend.f32(p)!,
    gv,
    backend.f32(m)!,
    backend.f32(v)!,
    h.lr,
    h.beta1,
    h.beta2,
    h.epsilon,
    h.step,
  );
  return true;
}
