/**
 * The native backend (src/model/engine/native): every native kernel against the same op on the
 * `cpu` backend (values and tf.grads, relative 1e-4), and its buffer pool's ownership rules.
 * Needs the native build (`npm ci` builds it when g++ and libopenblas-dev are present).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { useBackend } from "../../../src/model/engine/backend.js";
import { loadNativeAddon } from "../../../src/model/engine/native/addon.js";
import { tf } from "../../../src/model/engine/tf.js";

function seeded(shape: number[], seed: number, offset = 0): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5 + offset;
  }
  return out;
}

function maxRel(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 1e-6;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) || Number.isNaN(b[i])) {
      if (Number.isNaN(a[i]) !== Number.isNaN(b[i])) return Number.POSITIVE_INFINITY;
      continue;
    }
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

/**
 * Runs f on fresh input tensors (from the given shapes and seeds) on cpu and on native; compares
 * the outputs and, with `dy`, the gradients of every input.
 */
async function sameOnBoth(
  inputs: { shape: number[]; seed: number; offset?: number }[],
  f: (...t: tf.Tensor[]) => tf.Tensor,
  options: { grads?: boolean; tolerance?: number } = {},
): Promise<void> {
  const data = inputs.map((i) => seeded(i.shape, i.seed, i.offset));
  const run = () =>
    tf.tidy(() => {
      const ts = inputs.map((inp, k) => tf.tensor(data[k], inp.shape));
      const y = f(...ts);
      const out = [y.dataSync() as Float32Array];
      if (options.grads) {
        const dy = tf.tensor(seeded(y.shape, 77), y.shape);
        for (const g of tf.grads(f)(ts, dy)) out.push(g.dataSync() as Float32Array);
      }
      return out;
    });
  await tf.setBackend("cpu");
  const ref = run();
  await tf.setBackend("native");
  const got = run();
  await tf.setBackend("cpu");
  for (const [i, r] of ref.entries()) {
    expect(maxRel(got[i], r), `output ${i}`).toBeLessThan(options.tolerance ?? 1e-4);
  }
}

describe("native backend", () => {
  beforeAll(async () => {
    const status = loadNativeAddon();
    expect(
      status.reason,
      "native kernels missing: install g++ libopenblas-dev, then npm run setup",
    ).toBeUndefined();
    await useBackend("native");
    await tf.setBackend("cpu");
  });

  const broadcasts: [number[], number[]][] = [
    [
      [2, 3, 4, 5],
      [2, 3, 4, 5],
    ],
    [[2, 3, 4, 5], [5]],
    [
      [2, 3, 4, 5],
      [2, 1, 1, 5],
    ],
    [
      [2, 3, 4, 5],
      [2, 3, 4, 1],
    ],
    [
      [3, 1],
      [1, 4],
    ],
    [[], [2, 3]],
    [[4, 5], []],
    [
      [1, 3, 1, 2],
      [2, 1, 4, 1],
    ],
  ];
  const binary: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ["add", tf.add],
    ["sub", tf.sub],
    ["mul", tf.mul],
    ["div", tf.div],
    ["maximum", tf.maximum],
    ["minimum", tf.minimum],
    ["squaredDifference", tf.squaredDifference],
  ];
  // tfjs's own gradients of maximum, minimum and squaredDifference do not reduce broadcast
  // dimensions (on any backend), so those are differentiated on equal shapes only.
  const reducesBroadcast = new Set(["add", "sub", "mul", "div"]);
  for (const [name, op] of binary) {
    it(`${name}: every broadcast pattern, values and gradients`, async () => {
      for (const [sa, sb] of broadcasts) {
        const grads = reducesBroadcast.has(name) || sa.join() === sb.join();
        // b ≥ 0.5 in magnitude keeps div well conditioned
        await sameOnBoth(
          [
            { shape: sa, seed: 1 },
            { shape: sb, seed: 2, offset: 1 },
          ],
          op,
          { grads },
        );
      }
    });
  }

  const unary: [string, (x: tf.Tensor) => tf.Tensor, number][] = [
    ["relu", tf.relu, 0],
    ["step", (x) => tf.step(x, 0.3), 0],
    ["sigmoid", tf.sigmoid, 0],
    ["exp", tf.exp, 0],
    ["log", tf.log, 1],
    ["neg", tf.neg, 0],
    ["square", tf.square, 0],
    ["sqrt", tf.sqrt, 1],
    ["rsqrt", tf.rsqrt, 1],
    ["abs", tf.abs, 0],
    ["tanh", tf.tanh, 0],
    ["reciprocal", tf.reciprocal, 1],
  ];
  for (const [name, op, offset] of unary) {
    it(`${name}: values and gradients`, async () => {
      await sameOnBoth([{ shape: [3, 7, 5], seed: 3, offset }], op, { grads: name !== "step" });
    });
  }

  it("sum, mean, max, min over contiguous and scattered axes, with and without keepDims", async () => {
    const ops = [tf.sum, tf.mean, tf.max, tf.min] as ((
      x: tf.Tensor,
      axis: number[],
      keep: boolean,
    ) => tf.Tensor)[];
    for (const op of ops) {
      for (const axis of [[0], [3], [1, 2], [0, 1, 2], [-1], [0, 1, 2, 3], [0, 2]]) {
        for (const keep of [false, true]) {
          await sameOnBoth([{ shape: [3, 4, 5, 6], seed: 4 }], (x) => op(x, axis, keep), { grads: true });
        }
      }
      await sameOnBoth([{ shape: [2, 50000], seed: 5 }], (x) => op(x, [1], false)); // long rows
    }
  });

  it("addN, max/avg pooling (tiled and overlapping windows) and their gradients", async () => {
    await sameOnBoth(
      [
        { shape: [2, 5, 3], seed: 6 },
        { shape: [2, 5, 3], seed: 7 },
        { shape: [2, 5, 3], seed: 8 },
      ],
      (a, b, c) => tf.addN([a, b, c]),
      { grads: true },
    );
    const x4 = (x: tf.Tensor) => x as tf.Tensor4D;
    for (const [k, s, pad] of [
      [2, 2, "valid"],
      [3, 3, "valid"],
      [2, 2, "same"],
      [3, 1, "same"],
    ] as const) {
      await sameOnBoth([{ shape: [2, 6, 9, 3], seed: 9 }], (x) => tf.maxPool(x4(x), k, s, pad), {
        grads: true,
      });
      await sameOnBoth([{ shape: [2, 6, 9, 3], seed: 10 }], (x) => tf.avgPool(x4(x), k, s, pad), {
        grads: true,
      });
    }
    // a full-window mean per image (batch-norm statistics on wasm, embeddings)
    await sameOnBoth(
      [{ shape: [2, 12, 10, 4], seed: 11 }],
      (x) => tf.avgPool(x4(x), [12, 10], [12, 10], "valid"),
      {
        grads: true,
      },
    );
  });

  it("nearest-neighbour resize (×2 and uneven, every corner convention)", async () => {
    for (const size of [
      [6, 10],
      [5, 7],
    ] as [number, number][]) {
      for (const [align, half] of [
        [false, false],
        [true, false],
        [false, true],
      ]) {
        await sameOnBoth([{ shape: [2, 3, 5, 2], seed: 12 }], (x) =>
          tf.image.resizeNearestNeighbor(x as tf.Tensor4D, size, align, half),
        );
      }
    }
  });

  it("slices (strided and contiguous), padding, concatenation along each axis, stack", async () => {
    await sameOnBoth([{ shape: [3, 3, 8, 6], seed: 13 }], (x) => tf.slice(x, [0, 1, 2, 1], [3, 2, 5, 4]), {
      grads: true,
    });
    await sameOnBoth([{ shape: [4, 6], seed: 14 }], (x) => tf.slice(x, [1, 0], [2, 6]), { grads: true });
    await sameOnBoth(
      [{ shape: [2, 3, 4], seed: 15 }],
      (x) =>
        tf.pad(
          x,
          [
            [1, 0],
            [2, 1],
            [0, 3],
          ],
          0.5,
        ),
      { grads: true },
    );
    for (const axis of [0, 1, 2]) {
      await sameOnBoth(
        [
          { shape: [2, 3, 4], seed: 16 },
          { shape: [2, 3, 4], seed: 17 },
        ],
        (a, b) => tf.concat([a, b], axis),
        { grads: true },
      );
    }
    await sameOnBoth(
      [
        { shape: [3, 4], seed: 18 },
        { shape: [3, 4], seed: 19 },
      ],
      (a, b) => tf.stack([a, b]),
      { grads: true },
    );
  });

  it("reads are copies: changing what dataSync returned changes nothing", async () => {
    await tf.setBackend("native");
    tf.tidy(() => {
      const t = tf.add(tf.ones([4, 4]), tf.ones([4, 4]));
      const v = t.dataSync();
      v[0] = 99;
      expect(t.dataSync()[0]).toBe(2);
    });
    await tf.setBackend("cpu");
  });

  it("a view of a disposed tensor keeps its values while its buffer would be reused", async () => {
    await tf.setBackend("native");
    const x = tf.add(tf.zeros([4, 6]), tf.range(0, 24).reshape([4, 6]));
    const view = tf.slice(x, [2, 0], [2, 6]); // contiguous: shares x's buffer
    x.dispose();
    const other = tf.add(tf.zeros([4, 6]), tf.fill([4, 6], -1)); // same size as x
    expect(Array.from(view.dataSync())).toEqual(Array.from({ length: 12 }, (_, i) => 12 + i));
    tf.dispose([view, other]);
    await tf.setBackend("cpu");
  });

  it("disposed outputs return to the pool and the next output of their size reuses them", async () => {
    await tf.setBackend("native");
    const pooled = () => (tf.memory() as unknown as { pooledBytes: number }).pooledBytes;
    const a = tf.add(tf.zeros([1000]), 1);
    const before = pooled();
    a.dispose();
    expect(pooled()).toBe(before + 4000);
    const b = tf.add(tf.zeros([1000]), 2);
    expect(pooled()).toBeLessThan(before + 4000);
    expect(b.dataSync()[999]).toBe(2);
    b.dispose();
    await tf.setBackend("cpu");
  });

  it("FEDJOINT_NATIVE=0: engine selection falls back to wasm with a warning naming the reason", async () => {
    const { spawnSync } = await import("node:child_process");
    const path = await import("node:path");
    const root = path.resolve(import.meta.dirname, "../../..");
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", path.join(root, "src/cli/fedjoint.ts"), "bench", "train-step", "--json"]
        .concat(["--base", "4", "--depth", "2", "--size", "8", "--batch", "2", "--domains", "1"])
        .concat(["--steps", "1", "--warmup", "1", "--backend", "auto"]),
      { cwd: root, encoding: "utf8", env: { ...process.env, FEDJOINT_NATIVE: "0", FEDJOINT_LOG_JSON: "1" } },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim()).backend).toBe("wasm");
    const warning = r.stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { level: number; reason?: string })
      .find((l) => l.level === 40);
    expect(warning?.reason).toMatch(/FEDJOINT_NATIVE=0/);
  });
});
