import { beforeAll, describe, expect, it } from "vitest";
import { ReadBehind } from "../../../src/model/engine/readback.js";
import { tf } from "../../../src/model/engine/tf.js";

describe("ReadBehind (asynchronous device reads, one behind)", () => {
  beforeAll(async () => {
    await tf.setBackend("cpu");
  });

  it("consumes in push order, one read behind, and disposes every pushed tensor", async () => {
    const before = tf.memory().numTensors;
    const seen: [number, number][] = [];
    const reads = new ReadBehind<number>((values, i) => {
      seen.push([i, values[0]]);
    });
    for (let i = 0; i < 4; i++) {
      await reads.push(tf.scalar(10 * i), i);
      // When push resolves, the read pushed before it has been consumed.
      expect(seen.length).toBeGreaterThanOrEqual(i);
    }
    await reads.drain();
    expect(seen).toEqual([
      [0, 0],
      [1, 10],
      [2, 20],
      [3, 30],
    ]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("surfaces a consume error at the next push or at drain, and still disposes what was in flight", async () => {
    const before = tf.memory().numTensors;
    const reads = new ReadBehind<number>((_, i) => {
      if (i === 1) throw new Error(`step ${i} failed`);
    });
    await reads.push(tf.scalar(0), 0);
    await reads.push(tf.scalar(1), 1);
    await expect(reads.push(tf.scalar(2), 2)).rejects.toThrow("step 1 failed");
    await expect(reads.drain()).rejects.toThrow("step 1 failed");
    await reads.drain();
    expect(tf.memory().numTensors).toBe(before);
  });
});
