import "@tensorflow/tfjs-backend-wasm";
import { describe, expect, it } from "vitest";
import { oneHotFloat } from "../../../src/model/engine/one-hot.js";
import { tf } from "../../../src/model/engine/tf.js";

describe("oneHotFloat", () => {
  for (const backend of ["cpu", "wasm"] as const) {
    it(`${backend}: float32 masks of int32 class indices, exact 0/1 values`, async () => {
      await tf.setBackend(backend);
      const labels = tf.tensor2d([0, 2, 1, 2, 0, 1], [2, 3], "int32");
      const mask = oneHotFloat(labels, 3);
      expect(mask.dtype).toBe("float32");
      expect(mask.shape).toEqual([2, 3, 3]);
      expect(Array.from(await mask.data())).toEqual([1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0]);
      // Equal to the int32 one-hot cast to float32 (the cpu/wasm reference).
      const ref = tf.cast(tf.oneHot(labels, 3), "float32");
      expect(Array.from(await mask.data())).toEqual(Array.from(await ref.data()));
      tf.dispose([labels, mask, ref]);
    });
  }
});
