import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import type { tf } from "../tf.js";

type DataId = object;
type Values = tf.backend_util.BackendValues;

/**
 * The `native` tfjs backend: tensors live in ordinary memory (Float32Arrays outside the
 * WebAssembly heap, so no 4 GB ceiling) and the kernels a training step spends its time in run
 * natively (./kernels.ts → native/src). It extends tfjs's `cpu` backend, whose JavaScript kernels
 * serve every op without a native kernel, on the same storage.
 *
 * Kernel outputs come from a buffer pool: a training step allocates the same sizes every step,
 * and reusing the arrays saves the page faults and zeroing of fresh allocations (about 1 ms per
 * 4 MB) and keeps the resident set at the step's peak instead of waiting for the garbage
 * collector. The pool only holds arrays it handed out itself ("owned"); it counts the tensors that
 * use each buffer (slices may be views of it) and takes a buffer back when the last one is
 * disposed. Reads (`dataSync`, `data`) return copies of owned buffers, so no caller can keep a
 * reference to an array that is reused later. Pooled plus live bytes never exceed the highest
 * live total seen: a request of a new size first drops pooled arrays of other sizes.
 */
export class NativeBackend extends MathBackendCPU {
  /** Owned buffers in use → number of tensor data entries that reference them. */
  private readonly users = new Map<ArrayBuffer, number>();
  /** Free owned arrays by length. */
  private readonly free = new Map<number, Float32Array[]>();
  private pooledBytes = 0;
  private liveBytes = 0;
  private highWater = 0;

  constructor() {
    super();
    // tfjs-backend-cpu prints a "use tfjs-node" banner on first use; this backend is the fast path.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** A Float32Array of `size` elements for a kernel output; its contents are undefined. */
  alloc(size: number): Float32Array {
    const list = this.free.get(size);
    const reused = list?.pop();
    let out: Float32Array;
    if (reused) {
      this.pooledBytes -= reused.byteLength;
      out = reused;
    } else {
      this.makeRoom(size * 4);
      out = new Float32Array(size);
    }
    this.users.set(out.buffer as ArrayBuffer, 0);
    return out;
  }

  /** Returns an array from `alloc` that never became a tensor (a kernel failed). */
  discard(values: Float32Array): void {
    if (this.users.get(values.buffer as ArrayBuffer) === 0) this.toPool(values.buffer as ArrayBuffer);
  }

  /** A float32 output tensor of `shape` filled by `fill` (native kernel call). */
  output(shape: number[], fill: (out: Float32Array) => void): tf.TensorInfo {
    const out = this.alloc(shape.reduce((a, b) => a * b, 1));
    try {
      fill(out);
    } catch (err) {
      this.discard(out);
      throw err;
    }
    return this.makeTensorInfo(shape, "float32", out);
  }

  /** Several float32 outputs filled by one native call. */
  outputs(shapes: number[][], fill: (outs: Float32Array[]) => void): tf.TensorInfo[] {
    const outs = shapes.map((shape) => this.alloc(shape.reduce((a, b) => a * b, 1)));
    try {
      fill(outs);
    } catch (err) {
      for (const o of outs) this.discard(o);
      throw err;
    }
    return outs.map((o, i) => this.makeTensorInfo(shapes[i], "float32", o));
  }

  /** The values of a float32 tensor as a Float32Array, or undefined (other dtype or storage). */
  f32(t: tf.TensorInfo): Float32Array | undefined {
    if (t.dtype !== "float32") return undefined;
    const v = this.data.get(t.dataId)?.values;
    return v instanceof Float32Array ? v : undefined;
  }

  /**
   * True when a tensor's storage may be updated in place: one data entry with one reference, in
   * an owned buffer nobody else views.
   */
  exclusive(t: tf.TensorInfo): boolean {
    const d = this.data.get(t.dataId);
    if (d?.refCount !== 1 || !(d.values instanceof Float32Array)) return false;
    const buffer = d.values.buffer as ArrayBuffer;
    return this.users.get(buffer) === 1 && d.values.byteLength === buffer.byteLength;
  }

  override write(values: Values, shape: number[], dtype: tf.DataType): DataId {
    const id = super.write(values, shape, dtype);
    this.retain(values);
    return id;
  }

  override move(dataId: DataId, values: Values, shape: number[], dtype: tf.DataType, refCount: number): void {
    super.move(dataId, values, shape, dtype, refCount);
    this.retain(values);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const entry = this.data.has(dataId) ? this.data.get(dataId) : undefined;
    const released = super.disposeData(dataId, force);
    if (entry && !this.data.has(dataId)) this.release(entry.values);
    return released;
  }

  override readSync(dataId: DataId): Values {
    const v = super.readSync(dataId);
    return v instanceof Float32Array && this.users.has(v.buffer as ArrayBuffer) ? v.slice() : v;
  }

  override memory() {
    return {
      unreliable: false,
      liveBytes: this.liveBytes,
      pooledBytes: this.pooledBytes,
      reasons: [],
    } as ReturnType<MathBackendCPU["memory"]>;
  }

  override dispose(): void {
    this.free.clear();
    this.pooledBytes = 0;
    super.dispose();
  }

  private retain(values: Values | undefined): void {
    if (!ArrayBuffer.isView(values)) return;
    const buffer = values.buffer as ArrayBuffer;
    const n = this.users.get(buffer);
    if (n === undefined) return;
    this.users.set(buffer, n + 1);
    if (n === 0) {
      this.liveBytes += buffer.byteLength;
      this.highWater = Math.max(this.highWater, this.liveBytes);
    }
  }

  private release(values: Values | undefined): void {
    if (!ArrayBuffer.isView(values)) return;
    const buffer = values.buffer as ArrayBuffer;
    const n = this.users.get(buffer);
    if (n === undefined) return;
    if (n > 1) {
      this.users.set(buffer, n - 1);
      return;
    }
    this.liveBytes -= buffer.byteLength;
    this.toPool(buffer);
  }

  private toPool(buffer: ArrayBuffer): void {
    this.users.delete(buffer);
    const array = new Float32Array(buffer);
    const list = this.free.get(array.length);
    if (list) list.push(array);
    else this.free.set(array.length, [array]);
    this.pooledBytes += buffer.byteLength;
  }

  /** Drops pooled arrays (to the garbage collector) until `bytes` more fit under the high water. */
  private makeRoom(bytes: number): void {
    if (this.liveBytes + this.pooledBytes + bytes <= this.highWater) return;
    for (const [size, list] of this.free) {
      while (list.length > 0 && this.liveBytes + this.pooledBytes + bytes > this.highWater) {
        this.pooledBytes -= list.pop()!.byteLength;
      }
      if (list.length === 0) this.free.delete(size);
      if (this.liveBytes + this.pooledBytes + bytes <= this.highWater) return;
    }
  }
}
