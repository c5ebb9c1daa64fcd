/**
 * The site report's figures (src/site-client/figures.ts, png.ts): PNGs that an independent decoder
 * (and PIL) opens, overlays whose coloured pixels are exactly the labelled voxels of each panel,
 * and a Dice curve with one coloured line per fold.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  diceCurveFigure,
  LABEL_COLOURS,
  overlayFigure,
  overlaySlices,
} from "../../../src/site-client/figures.js";
import { canvas, crc32, encodePng } from "../../../src/site-client/png.js";
import { decodePng } from "./png-decode.js";

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), "fj-figures-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const isGrey = (rgb: Uint8Array, i: number) =>
  rgb[i * 3] === rgb[i * 3 + 1] && rgb[i * 3 + 1] === rgb[i * 3 + 2];

describe("PNG writer", () => {
  it("CRC-32 of the PNG spec's test string, and a round trip through an independent decoder", () => {
    expect(crc32(Buffer.from("123456789"))).toBe(0xcbf43926);
    const img = canvas(7, 3, [10, 20, 30]);
    img.rgb.set([255, 0, 128], (1 * 7 + 5) * 3);
    const d = decodePng(encodePng(img));
    expect([d.width, d.height]).toEqual([7, 3]);
    expect(Buffer.from(d.rgb).equals(Buffer.from(img.rgb))).toBe(true);
  });

  it("PIL opens and verifies it", async () => {
    const file = path.join(tmp, "small.png");
    await writeFile(file, encodePng(canvas(9, 4, [1, 2, 3])));
    const r = spawnSync(
      "/usr/bin/python3",
      [
        "-c",
        "import sys; from PIL import Image; im=Image.open(sys.argv[1]); im.verify(); print(im.size, im.mode)",
        file,
      ],
      { encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("(9, 4) RGB");
  });
});

describe("overlay figure", () => {
  const dims = [12, 10, 6] as const;
  const n = 12 * 10 * 6;
  const image = Float32Array.from({ length: n }, (_, i) => (i * 37) % 101);
  const truth = new Uint8Array(n);
  const pred = new Uint8Array(n);
  for (let z = 1; z < 5; z++)
    for (let y = 2; y < 8; y++)
      for (let x = 3; x < 9; x++) {
        const i = x + 12 * (y + 10 * z);
        truth[i] = x < 6 ? 1 : 2;
        if (y > 3) pred[i] = x < 7 ? 1 : 3;
      }

  it("picks the slice with most bone and the quartiles of the bone's extent", () => {
    expect(overlaySlices(truth, pred, dims)).toEqual([1, 2, 3]);
    expect(overlaySlices(new Uint8Array(n), new Uint8Array(n), dims)).toEqual([3]);
  });

  it("draws each panel's labelled voxels, and only those, in colour", () => {
    const { image: img, layout } = overlayFigure(image, truth, pred, dims, { title: "fold 0 test exam x" });
    const png = decodePng(encodePng(img));
    expect([png.width, png.height]).toEqual([img.width, img.height]);
    expect(layout.scale).toBe(16);
    expect(layout.panel).toEqual([12 * 16, 10 * 16]);
    let coloured = 0;
    const wrong: string[] = [];
    for (const row of layout.rows) {
      for (const [col, labels] of [
        [layout.columns.image, undefined],
        [layout.columns.truth, truth],
        [layout.columns.prediction, pred],
      ] as const) {
        for (let y = 0; y < layout.panel[1]; y++) {
          for (let x = 0; x < layout.panel[0]; x++) {
            const v = Math.floor(x / layout.scale) + 12 * (Math.floor(y / layout.scale) + 10 * row.slice);
            const p = (row.y + y) * png.width + col + x;
            const label = labels ? labels[v] : 0;
            if (isGrey(png.rgb, p) !== (label === 0)) wrong.push(`slice ${row.slice} col ${col} (${x},${y})`);
            if (label === 0) continue;
            coloured++;
            // the label's colour blended half and half over the image panel's grey level
            const grey = png.rgb[((row.y + y) * png.width + layout.columns.image + x) * 3];
            const c = LABEL_COLOURS[label - 1];
            for (let k = 0; k < 3; k++)
              if (Math.abs(png.rgb[p * 3 + k] - (grey + c[k]) / 2) > 1) wrong.push(`colour at ${p}`);
          }
        }
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(coloured).toBeGreaterThan(1000);
  });
});

describe("validation Dice curve", () => {
  it("one coloured line per fold on a white chart", () => {
    const img = diceCurveFigure(
      [
        {
          fold: 0,
          points: [
            [0, 0.1],
            [1, 0.4],
            [2, 0.6],
          ],
        },
        {
          fold: 1,
          points: [
            [0, 0.2],
            [1, 0.3],
            [2, 0.7],
          ],
        },
      ],
      "validation dice per round",
    );
    const png = decodePng(encodePng(img));
    expect([png.width, png.height]).toEqual([560, 320]);
    for (const k of [0, 1]) {
      const c = LABEL_COLOURS[k];
      let hits = 0;
      for (let i = 0; i < png.width * png.height; i++)
        if (png.rgb[i * 3] === c[0] && png.rgb[i * 3 + 1] === c[1] && png.rgb[i * 3 + 2] === c[2]) hits++;
      expect(hits, `fold ${k}`).toBeGreaterThan(200);
    }
  });
});
