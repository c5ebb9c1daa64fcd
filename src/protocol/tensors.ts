/**
 * Tensor-set (de)serialisation for the wire: a header (names, shapes, dtypes, total bytes, SHA-256
 * over the canonical spec list and the payload) and the payload cut into chunks of ≤ 1 MiB. This
 * is the only place that knows about bytes; everything else sees `NamedTensor`s.
 */
import { createHash } from "node:crypto";
import { endianness } from "node:os";
import { fjError } from "../errors.js";
import type { NamedTensor } from "../model/api.js";
import { fromHalf, toHalf } from "./float16.js";
import { type ChunkMsg, MAX_CHUNK_BYTES, type TensorSetHeaderMsg, type TensorSpecMsg } from "./proto.js";
import { wireTap } from "./wiretap.js";

export type WireDtype = "float32" | "float16";
export const WIRE_DTYPES: readonly WireDtype[] = ["float32", "float16"];

/** The wire is little-endian; on little-endian hosts float32 data is copied as bytes. */
const LITTLE_ENDIAN = endianness() === "LE";

/** Hard ceiling on one tensor set (elements), against absurd headers. */
export const MAX_SET_BYTES = 2 * 1024 * 1024 * 1024;

export interface EncodedTensorSet {
  header: TensorSetHeaderMsg;
  payload: Buffer;
}

function bytesPer(dtype: string): number {
  if (dtype === "float32") return 4;
  if (dtype === "float16") return 2;
  throw fjError("FJ_PROTOCOL_DTYPE", `tensor dtype '${dtype}', expected float32 or float16`);
}

function elements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function canonicalSpecs(specs: readonly TensorSpecMsg[]): string {
  return specs.map((s) => `${s.name}|${s.shape.join("x")}|${s.dtype}\n`).join("");
}

/** Hex SHA-256 of a set: canonical spec lines, then the payload. */
export function setDigest(specs: readonly TensorSpecMsg[], payload: Uint8Array): string {
  return createHash("sha256").update(canonicalSpecs(specs)).update(payload).digest("hex");
}

/** Serialises tensors in the given order (float32 or float16 little-endian). */
export function encodeTensorSet(
  tensors: readonly NamedTensor[],
  dtype: WireDtype = "float32",
): EncodedTensorSet {
  const size = bytesPer(dtype);
  const specs: TensorSpecMsg[] = [];
  let total = 0;
  for (const t of tensors) {
    const n = elements(t.shape);
    if (n !== t.data.length) {
      throw fjError(
        "FJ_PROTOCOL_SHAPE",
        `tensor ${t.name}: shape [${t.shape.join(",")}] has ${n} elements, data has ${t.data.length}`,
      );
    }
    specs.push({ name: t.name, shape: [...t.shape], dtype });
    total += n * size;
  }
  const payload = Buffer.allocUnsafe(total);
  let o = 0;
  for (const t of tensors) {
    if (dtype === "float32" && LITTLE_ENDIAN) {
      payload.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), o);
      o += t.data.byteLength;
    } else if (dtype === "float32") {
      for (let i = 0; i < t.data.length; i++, o += 4) payload.writeFloatLE(t.data[i], o);
    } else {
      for (let i = 0; i < t.data.length; i++, o += 2) payload.writeUInt16LE(toHalf(t.data[i]), o);
    }
  }
  return { header: { tensors: specs, bytes: total, sha256: setDigest(specs, payload) }, payload };
}

/** The payload as ordered chunks of at most `max` bytes (default 1 MiB). */
export function* chunksOf(payload: Buffer, max = MAX_CHUNK_BYTES): Generator<ChunkMsg> {
  if (max < 1 || max > MAX_CHUNK_BYTES)
    throw new RangeError(`chunk size ${max} outside 1..${MAX_CHUNK_BYTES}`);
  for (let o = 0; o < payload.length; o += max) {
    yield { offset: o, data: payload.subarray(o, Math.min(o + max, payload.length)) };
  }
}

/**
 * Reassembles a tensor set from its header and chunks, checking as it goes: dtype, chunk size
 * and order, total bytes, and SHA-256 at the end. Memory: one buffer of the declared size.
 */
export class TensorSetReceiver {
  readonly header: TensorSetHeaderMsg;
  private readonly buf: Buffer;
  private received = 0;

  constructor(header: TensorSetHeaderMsg | null | undefined, what: string) {
    if (!header) throw fjError("FJ_PROTOCOL_HEADER", `${what}: the stream has no tensor-set header`);
    let expected = 0;
    const seen = new Set<string>();
    for (const s of header.tensors) {
      if (typeof s.name !== "string" || s.name.length === 0)
        throw fjError("FJ_PROTOCOL_HEADER", `${what}: a tensor has an empty name`);
      if (seen.has(s.name)) throw fjError("FJ_PROTOCOL_HEADER", `${what}: tensor ${s.name} appears twice`);
      seen.add(s.name);
      if (!s.shape.every((d) => Number.isInteger(d) && d >= 0))
        throw fjError("FJ_PROTOCOL_SHAPE", `${what}: tensor ${s.name} has shape [${s.shape.join(",")}]`);
      expected += elements(s.shape) * bytesPer(s.dtype);
    }
    if (expected !== Number(header.bytes)) {
      throw fjError(
        "FJ_PROTOCOL_HEADER",
        `${what}: header declares ${header.bytes} bytes, the tensor specs add up to ${expected}`,
      );
    }
    if (expected > MAX_SET_BYTES) throw fjError("FJ_PROTOCOL_TOO_LARGE", `${what}: ${expected} bytes`);
    this.header = header;
    this.buf = Buffer.allocUnsafe(expected);
    this.what = what;
  }
  private readonly what: string;

  add(chunk: ChunkMsg | null | undefined): void {
    if (!chunk) throw fjError("FJ_PROTOCOL_CHUNK", `${this.what}: empty stream message`);
    const data = chunk.data;
    if (data.length > MAX_CHUNK_BYTES)
      throw fjError("FJ_PROTOCOL_CHUNK", `${this.what}: chunk of ${data.length} bytes exceeds 1 MiB`);
    if (Number(chunk.offset) !== this.received) {
      throw fjError(
        "FJ_PROTOCOL_CHUNK",
        `${this.what}: chunk at offset ${chunk.offset}, expected ${this.received} (chunks must arrive in order)`,
      );
    }
    if (this.received + data.length > this.buf.length)
      throw fjError("FJ_PROTOCOL_CHUNK", `${this.what}: more bytes than the header declares`);
    data.copy(this.buf, this.received);
    this.received += data.length;
  }

  get bytes(): number {
    return this.received;
  }

  /** Verifies completeness and SHA-256 and returns float32 tensors in header order. */
  finish(): NamedTensor[] {
    if (this.received !== this.buf.length) {
      throw fjError(
        "FJ_PROTOCOL_INCOMPLETE",
        `${this.what}: received ${this.received} of ${this.buf.length} bytes`,
      );
    }
    const digest = setDigest(this.header.tensors, this.buf);
    if (digest !== this.header.sha256) {
      throw fjError(
        "FJ_PROTOCOL_CHECKSUM",
        `${this.what}: SHA-256 ${digest.slice(0, 12)}… does not match the header's ${String(this.header.sha256).slice(0, 12)}…`,
      );
    }
    return decodePayload(this.header, this.buf);
  }
}

/** Decodes a verified payload into float32 tensors. */
export function decodePayload(header: TensorSetHeaderMsg, payload: Buffer): NamedTensor[] {
  const out: NamedTensor[] = [];
  let o = 0;
  for (const s of header.tensors) {
    const n = elements(s.shape);
    const data = new Float32Array(n);
    if (s.dtype === "float32" && LITTLE_ENDIAN) {
      new Uint8Array(data.buffer).set(payload.subarray(o, o + 4 * n));
      o += 4 * n;
    } else if (s.dtype === "float32") {
      for (let i = 0; i < n; i++, o += 4) data[i] = payload.readFloatLE(o);
    } else {
      for (let i = 0; i < n; i++, o += 2) data[i] = fromHalf(payload.readUInt16LE(o));
    }
    out.push({ name: s.name, shape: [...s.shape], data });
  }
  return out;
}

/** Serialises to one self-contained buffer (header JSON length-prefixed + payload), for files. */
export function packTensorSet(tensors: readonly NamedTensor[], dtype: WireDtype = "float32"): Buffer {
  const { header, payload } = encodeTensorSet(tensors, dtype);
  const h = Buffer.from(JSON.stringify(header), "utf8");
  const len = Buffer.alloc(4);
  len.writeUInt32LE(h.length, 0);
  return Buffer.concat([len, h, payload]);
}

/** Inverse of packTensorSet; verifies the SHA-256. `file` names the source in errors. */
export function unpackTensorSet(buf: Buffer, file: string): NamedTensor[] {
  if (buf.length < 4) throw fjError("FJ_PROTOCOL_FILE", `${file}: truncated tensor file`);
  const n = buf.readUInt32LE(0);
  let header: TensorSetHeaderMsg;
  try {
    header = JSON.parse(buf.subarray(4, 4 + n).toString("utf8")) as TensorSetHeaderMsg;
  } catch (err) {
    throw fjError("FJ_PROTOCOL_FILE", `${file}: unreadable tensor header`, { cause: err });
  }
  const rx = new TensorSetReceiver(header, file);
  const payload = buf.subarray(4 + n);
  for (let o = 0; o < payload.length; o += MAX_CHUNK_BYTES) {
    rx.add({ offset: o, data: payload.subarray(o, Math.min(o + MAX_CHUNK_BYTES, payload.length)) });
  }
  return rx.finish();
}

/** Records a header crossing the wire (only when FEDJOINT_WIRE_TAP is set; see wiretap.ts). */
export function tapHeader(direction: "sent" | "received", rpc: string, header: unknown): void {
  wireTap(direction, rpc, header);
}
