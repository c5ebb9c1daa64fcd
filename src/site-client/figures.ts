/**
 * The site report's figures, drawn into RGB canvases (./png.ts): a test exam's slices with the
 * ground truth and the prediction overlaid, and the per-round validation Dice curve. Text is a
 * built-in 5×7 bitmap font (upper case, digits, a few signs), so nothing beyond node is needed.
 */
import type { Dims3 } from "../volume/grid.js";
import { canvas, type RgbImage } from "./png.js";

type Rgb = readonly [number, number, number];

/** Label colours (value 1, 2, …): distinct, none grey, so an overlaid pixel is never grey. */
export const LABEL_COLOURS: readonly Rgb[] = [
  [230, 25, 75],
  [60, 180, 75],
  [0, 130, 200],
  [255, 225, 25],
  [245, 130, 48],
  [145, 30, 180],
  [70, 240, 240],
  [240, 50, 230],
];

/** Names of LABEL_COLOURS, for legends. */
export const LABEL_COLOUR_NAMES = [
  "red",
  "green",
  "blue",
  "yellow",
  "orange",
  "purple",
  "cyan",
  "magenta",
] as const;

/** Opacity of a label over the image. */
export const OVERLAY_ALPHA = 0.5;

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const DARK: Rgb = [24, 24, 24];
const GRID: Rgb = [220, 220, 220];

/* --------------------------------------------------------------------------------------------- */
/* 5×7 font                                                                                      */
/* --------------------------------------------------------------------------------------------- */

const GLYPHS: Record<string, string> = {
  A: " ### |#   #|#   #|#####|#   #|#   #|#   #",
  B: "#### |#   #|#   #|#### |#   #|#   #|#### ",
  C: " ### |#   #|#    |#    |#    |#   #| ### ",
  D: "#### |#   #|#   #|#   #|#   #|#   #|#### ",
  E: "#####|#    |#    |#### |#    |#    |#####",
  F: "#####|#    |#    |#### |#    |#    |#    ",
  G: " ### |#   #|#    |# ###|#   #|#   #| ####",
  H: "#   #|#   #|#   #|#####|#   #|#   #|#   #",
  I: " ### |  #  |  #  |  #  |  #  |  #  | ### ",
  J: "  ###|   # |   # |   # |   # |#  # | ##  ",
  K: "#   #|#  # |# #  |##   |# #  |#  # |#   #",
  L: "#    |#    |#    |#    |#    |#    |#####",
  M: "#   #|## ##|# # #|# # #|#   #|#   #|#   #",
  N: "#   #|#   #|##  #|# # #|#  ##|#   #|#   #",
  O: " ### |#   #|#   #|#   #|#   #|#   #| ### ",
  P: "#### |#   #|#   #|#### |#    |#    |#    ",
  Q: " ### |#   #|#   #|#   #|# # #|#  # | ## #",
  R: "#### |#   #|#   #|#### |# #  |#  # |#   #",
  S: " ####|#    |#    | ### |    #|    #|#### ",
  T: "#####|  #  |  #  |  #  |  #  |  #  |  #  ",
  U: "#   #|#   #|#   #|#   #|#   #|#   #| ### ",
  V: "#   #|#   #|#   #|#   #|#   #| # # |  #  ",
  W: "#   #|#   #|#   #|# # #|# # #|# # #| # # ",
  X: "#   #|#   #| # # |  #  | # # |#   #|#   #",
  Y: "#   #|#   #| # # |  #  |  #  |  #  |  #  ",
  Z: "#####|    #|   # |  #  | #   |#    |#####",
  "0": " ### |#   #|#  ##|# # #|##  #|#   #| ### ",
  "1": "  #  | ##  |  #  |  #  |  #  |  #  | ### ",
  "2": " ### |#   #|    #|   # |  #  | #   |#####",
  "3": "#####|   # |  #  |   # |    #|#   #| ### ",
  "4": "   # |  ## | # # |#  # |#####|   # |   # ",
  "5": "#####|#    |#### |    #|    #|#   #| ### ",
  "6": "  ## | #   |#    |#### |#   #|#   #| ### ",
  "7": "#####|    #|   # |  #  | #   | #   | #   ",
  "8": " ### |#   #|#   #| ### |#   #|#   #| ### ",
  "9": " ### |#   #|#   #| ####|    #|   # | ##  ",
  ".": "     |     |     |     |     | ##  | ##  ",
  "-": "     |     |     |#####|     |     |     ",
  "=": "     |     |#####|     |#####|     |     ",
  ":": "     | ##  | ##  |     | ##  | ##  |     ",
  "/": "    #|   # |   # |  #  | #   | #   |#    ",
  "(": "   # |  #  | #   | #   | #   |  #  |   # ",
  ")": " #   |  #  |   # |   # |   # |  #  | #   ",
  "%": "##  #|##  #|   # |  #  | #   |#  ##|#  ##",
};

/** Width in pixels of `text` at `scale` (6 px per character: 5 + 1 space). */
export function textWidth(text: string, scale = 1): number {
  return text.length * 6 * scale;
}

/** Draws `text` (upper-cased) with its top-left corner at (x, y). */
export function drawText(img: RgbImage, text: string, x: number, y: number, colour: Rgb, scale = 1): void {
  let cx = x;
  for (const ch of text.toUpperCase()) {
    const g = GLYPHS[ch];
    if (g !== undefined) {
      g.split("|").forEach((row, gy) => {
        for (let gx = 0; gx < 5; gx++) {
          if (row[gx] !== "#") continue;
          fillRect(img, cx + gx * scale, y + gy * scale, scale, scale, colour);
        }
      });
    }
    cx += 6 * scale;
  }
}

function setPixel(img: RgbImage, x: number, y: number, c: Rgb): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  img.rgb.set(c, (y * img.width + x) * 3);
}

function fillRect(img: RgbImage, x: number, y: number, w: number, h: number, c: Rgb): void {
  for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) setPixel(img, xx, yy, c);
}

/** A line of thickness `width` (square brush) from (x0, y0) to (x1, y1). */
function drawLine(img: RgbImage, x0: number, y0: number, x1: number, y1: number, c: Rgb, width = 1): void {
  const steps = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
  const off = Math.floor((width - 1) / 2);
  for (let i = 0; i <= steps; i++) {
    const x = Math.round(x0 + ((x1 - x0) * i) / steps);
    const y = Math.round(y0 + ((y1 - y0) * i) / steps);
    fillRect(img, x - off, y - off, width, width, c);
  }
}

/* --------------------------------------------------------------------------------------------- */
/* Overlays of a test exam                                                                       */
/* --------------------------------------------------------------------------------------------- */

/** Where each part of an overlay figure is (pixels), so that a reader can find a slice's panels. */
export interface OverlayLayout {
  /** Each voxel is drawn as scale × scale pixels. */
  scale: number;
  /** Panel size in pixels: [cols·scale, rows·scale] (cols = x, rows = y for slices along z). */
  panel: [number, number];
  /** Left edge of the image, ground-truth and prediction columns. */
  columns: { image: number; truth: number; prediction: number };
  /** Per row: the slice index along the slicing axis and the top edge of its panels. */
  rows: { slice: number; y: number }[];
}

/** Up to `count` slices (along z) to show: the one with the most bone, and the quartiles of the bone's extent. */
export function overlaySlices(
  truth: ArrayLike<number>,
  pred: ArrayLike<number>,
  dims: Dims3,
  count = 3,
): number[] {
  const [X, Y, Z] = dims;
  const area = new Float64Array(Z);
  for (let z = 0; z < Z; z++) {
    let a = 0;
    for (let i = z * X * Y; i < (z + 1) * X * Y; i++) if (truth[i] !== 0 || pred[i] !== 0) a++;
    area[z] = a;
  }
  const withBone = [...area.keys()].filter((z) => area[z] > 0);
  if (withBone.length === 0) return [Math.floor(Z / 2)];
  const lo = withBone[0];
  const hi = withBone[withBone.length - 1];
  let best = lo;
  for (const z of withBone) if (area[z] > area[best]) best = z;
  const picks = [best, Math.round(lo + (hi - lo) / 4), Math.round(lo + (3 * (hi - lo)) / 4)];
  return [...new Set(picks)].slice(0, count).sort((a, b) => a - b);
}

/** Grey levels: the 1st–99th percentile of the exam's intensities mapped to 0–255. */
function greyWindow(image: ArrayLike<number>): { lo: number; hi: number } {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < image.length; i++) {
    const v = image[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!(max > min)) return { lo: min, hi: min + 1 };
  const bins = 1024;
  const hist = new Float64Array(bins);
  const w = (max - min) / bins;
  for (let i = 0; i < image.length; i++) hist[Math.min(bins - 1, Math.floor((image[i] - min) / w))]++;
  const quantile = (q: number) => {
    let acc = 0;
    for (let b = 0; b < bins; b++) {
      acc += hist[b];
      if (acc >= q * image.length) return min + b * w;
    }
    return max;
  };
  const lo = quantile(0.01);
  const hi = Math.max(quantile(0.99) + w, lo + w);
  return { lo, hi };
}

/**
 * One PNG-ready figure of an exam: a row per chosen slice (along z), three panels each — the
 * image, the image with the ground truth, the image with the prediction (labels coloured by
 * LABEL_COLOURS at OVERLAY_ALPHA). Voxel order: x to the right, y downwards.
 */
export function overlayFigure(
  image: ArrayLike<number>,
  truth: ArrayLike<number>,
  pred: ArrayLike<number>,
  dims: Dims3,
  options: { title: string; slices?: number[] },
): { image: RgbImage; layout: OverlayLayout } {
  const [X, Y, Z] = dims;
  const slices = options.slices ?? overlaySlices(truth, pred, dims);
  const scale = Math.max(1, Math.floor(192 / Math.max(X, Y)));
  const pw = X * scale;
  const ph = Y * scale;
  const m = 8;
  const strip = 14;
  const colX = [m, 2 * m + pw, 3 * m + 2 * pw];
  const top = m + strip + strip;
  const rowH = strip + ph + m;
  const width = Math.max(4 * m + 3 * pw, m * 2 + textWidth(options.title));
  const height = top + slices.length * rowH;
  const img = canvas(width, height, DARK);
  drawText(img, options.title, m, m, WHITE);
  for (const [k, h] of ["image", "ground truth", "prediction"].entries())
    drawText(img, h, colX[k], m + strip, WHITE);
  const { lo, hi } = greyWindow(image);
  const grey = (v: number) => Math.max(0, Math.min(255, Math.round(((v - lo) / (hi - lo)) * 255)));
  const rows: OverlayLayout["rows"] = [];
  slices.forEach((z, k) => {
    const y0 = top + k * rowH;
    drawText(img, `z=${z} of ${Z}`, m, y0, WHITE);
    const py = y0 + strip;
    rows.push({ slice: z, y: py });
    for (let y = 0; y < Y; y++) {
      for (let x = 0; x < X; x++) {
        const i = x + X * (y + Y * z);
        const g = grey(image[i]);
        const base: Rgb = [g, g, g];
        const over = (label: number): Rgb => {
          if (label === 0) return base;
          const c = LABEL_COLOURS[(label - 1) % LABEL_COLOURS.length];
          const a = OVERLAY_ALPHA;
          return [
            Math.round((1 - a) * g + a * c[0]),
            Math.round((1 - a) * g + a * c[1]),
            Math.round((1 - a) * g + a * c[2]),
          ];
        };
        const colours = [base, over(truth[i]), over(pred[i])];
        for (const [col, c] of colours.entries())
          fillRect(img, colX[col] + x * scale, py + y * scale, scale, scale, c);
      }
    }
  });
  return {
    image: img,
    layout: {
      scale,
      panel: [pw, ph],
      columns: { image: colX[0], truth: colX[1], prediction: colX[2] },
      rows,
    },
  };
}

/* --------------------------------------------------------------------------------------------- */
/* Validation Dice per round                                                                     */
/* --------------------------------------------------------------------------------------------- */

/** One fold's curve: (round, Dice) points in round order. */
export interface DiceSeries {
  fold: number;
  points: [number, number][];
}

/** A line chart of validation Dice (0–1) against the round, one coloured line per fold. */
export function diceCurveFigure(series: readonly DiceSeries[], title: string): RgbImage {
  const W = 560;
  const H = 320;
  const img = canvas(W, H, WHITE);
  const left = 44;
  const right = 110;
  const topY = 30;
  const bottom = 36;
  const pw = W - left - right;
  const ph = H - topY - bottom;
  const maxRound = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[0])));
  const px = (r: number) => left + Math.round((r / maxRound) * pw);
  const py = (d: number) => topY + Math.round((1 - Math.max(0, Math.min(1, d))) * ph);
  drawText(img, title, left, 10, BLACK);
  for (let k = 0; k <= 4; k++) {
    const d = k / 4;
    drawLine(img, left, py(d), left + pw, py(d), GRID);
    if (k % 2 === 0) {
      const label = d.toFixed(1);
      drawText(img, label, left - 6 - textWidth(label), py(d) - 3, BLACK);
    }
  }
  const step = Math.max(1, Math.ceil(maxRound / 10));
  for (let r = 0; r <= maxRound; r += step) {
    drawLine(img, px(r), topY + ph, px(r), topY + ph + 4, BLACK);
    const label = String(r);
    drawText(img, label, px(r) - textWidth(label) / 2, topY + ph + 8, BLACK);
  }
  drawText(img, "round", left + pw / 2 - textWidth("round") / 2, H - 12, BLACK);
  drawLine(img, left, topY, left, topY + ph, BLACK);
  drawLine(img, left, topY + ph, left + pw, topY + ph, BLACK);
  series.forEach((s, k) => {
    const c = LABEL_COLOURS[k % LABEL_COLOURS.length];
    for (let i = 1; i < s.points.length; i++) {
      const [r0, d0] = s.points[i - 1];
      const [r1, d1] = s.points[i];
      drawLine(img, px(r0), py(d0), px(r1), py(d1), c, 2);
    }
    for (const [r, d] of s.points) fillRect(img, px(r) - 2, py(d) - 2, 5, 5, c);
    const ly = topY + 4 + k * 14;
    fillRect(img, left + pw + 14, ly, 10, 7, c);
    drawText(img, `fold ${s.fold}`, left + pw + 30, ly, BLACK);
  });
  return img;
}
