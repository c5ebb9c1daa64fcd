import { describe, expect, it } from "vitest";
import type { NamedTensor } from "../../../src/model/api.js";
import { fromHalf, toHalf } from "../../../src/protocol/float16.js";
import { MAX_CHUNK_BYTES } from "../../../src/protocol/proto.js";
import {
  chunksOf,
  encodeTensorSet,
  packTensorSet,
  TensorSetReceiver,
  unpackTensorSet,
} from "../../../src/protocol/tensors.js";

function tensor(name: string, shape: number[], f: (i: number) => number): NamedTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { name, shape, data: Float32Array.from({ length: n }, (_, i) => f(i)) };
}

/** Index of the first element where a and b differ (bit for bit, NaN included), -1 when none. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

function roundTrip(tensors: NamedTensor[], dtype: "float32" | "float16" = "float32"): NamedTensor[] {
  const enc = encodeTensorSet(tensors, dtype);
  const rx = new TensorSetReceiver(enc.header, "test");
  for (const c of chunksOf(enc.payload)) rx.add(c);
  return rx.finish();
}

describe("tensor sets on the wire", () => {
  it("round-trips float32 exactly, in order, with names and shapes", () => {
    const set = [
      tensor("shared/a/kernel", [3, 3, 1, 4], (i) => Math.sin(i) * 1e-3),
      tensor("shared/b", [7], (i) => -i / 3),
    ];
    const back = roundTrip(set);
    expect(back.map((t) => t.name)).toEqual(["shared/a/kernel", "shared/b"]);
    expect(back[0].shape).toEqual([3, 3, 1, 4]);
    expect(Array.from(back[0].data)).toEqual(Array.from(set[0].data));
    expect(Array.from(back[1].data)).toEqual(Array.from(set[1].data));
  });

  it("cuts payloads into chunks of at most 1 MiB and reassembles them", () => {
    const big = tensor("shared/big", [700_000], (i) => i % 97);
    const enc = encodeTensorSet([big]);
    const chunks = [...chunksOf(enc.payload)];
    expect(chunks.length).toBe(Math.ceil(2_800_000 / MAX_CHUNK_BYTES));
    expect(Math.max(...chunks.map((c) => c.data.length))).toBeLessThanOrEqual(MAX_CHUNK_BYTES);
    const back = roundTrip([big])[0].data;
    expect(back).toHaveLength(700_000);
    expect(firstDifference(back, big.data)).toBe(-1);
  });

  it("float16 halves the bytes and stays within half precision", () => {
    const set = [tensor("shared/w", [1000], (i) => Math.cos(i) * 0.1)];
    expect(encodeTensorSet(set, "float16").payload.length).toBe(2000);
    const back = roundTrip(set, "float16")[0].data;
    for (let i = 0; i < 1000; i++) expect(Math.abs(back[i] - set[0].data[i])).toBeLessThan(1e-4);
    expect(fromHalf(toHalf(65504))).toBe(65504);
    expect(fromHalf(toHalf(1e6))).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(fromHalf(toHalf(Number.NaN)))).toBe(true);
    expect(fromHalf(toHalf(2 ** -24))).toBe(2 ** -24);
    expect(fromHalf(toHalf(-0.5))).toBe(-0.5);
  });

  it("detects a corrupted payload with the SHA-256", () => {
    const enc = encodeTensorSet([tensor("shared/x", [10], (i) => i)]);
    enc.payload[5] ^= 1;
    const rx = new TensorSetReceiver(enc.header, "PushUpdate");
    rx.add({ offset: 0, data: enc.payload });
    expect(() => rx.finish()).toThrowError(
      expect.objectContaining({ code: "FJ_PROTOCOL_CHECKSUM", message: expect.stringMatching(/SHA-256/) }),
    );
  });

  it("rejects out-of-order chunks, oversized chunks, incomplete streams and inconsistent headers", () => {
    const enc = encodeTensorSet([tensor("shared/x", [10], (i) => i)]);
    const rx = new TensorSetReceiver(enc.header, "t");
    expect(() => rx.add({ offset: 8, data: enc.payload.subarray(8) })).toThrowError(/offset 8, expected 0/);
    const rx2 = new TensorSetReceiver(enc.header, "t");
    rx2.add({ offset: 0, data: enc.payload.subarray(0, 8) });
    expect(() => rx2.finish()).toThrowError(/received 8 of 40 bytes/);
    expect(() => new TensorSetReceiver({ ...enc.header, bytes: 44 }, "t")).toThrowError(/declares 44 bytes/);
    expect(
      () =>
        new TensorSetReceiver(
          { ...enc.header, tensors: [{ name: "shared/x", shape: [10], dtype: "int8" }] },
          "t",
        ),
    ).toThrowError(/dtype 'int8'/);
    const huge = Buffer.alloc(MAX_CHUNK_BYTES + 1);
    const big = new TensorSetReceiver(
      {
        tensors: [{ name: "shared/y", shape: [(MAX_CHUNK_BYTES + 4) / 4], dtype: "float32" }],
        bytes: MAX_CHUNK_BYTES + 4,
        sha256: "",
      },
      "t",
    );
    expect(() => big.add({ offset: 0, data: huge })).toThrowError(/exceeds 1 MiB/);
  });

  it("packs to and from a self-contained file buffer", () => {
    const set = [tensor("shared/a", [2, 3], (i) => i * 0.5)];
    const back = unpackTensorSet(packTensorSet(set), "model.bin");
    expect(Array.from(back[0].data)).toEqual([0, 0.5, 1, 1.5, 2, 2.5]);
    const buf = packTensorSet(set);
    buf[buf.length - 1] ^= 0xff;
    expect(() => unpackTensorSet(buf, "model.bin")).toThrowError(/model.bin: SHA-256/);
  });
});
