/**
 * The project's one seeded PRNG (initial weights, fold permutations, phantoms, batch sampling and
 * augmentation, pair sampling, embedding anonymisation): an FNV-1a hash of the seed parts →
 * mulberry32. Deterministic across platforms; not cryptographic. A generator is a plain function
 * returning uniform floats in [0, 1); the helpers below draw everything else from it.
 */

/** A seeded generator: uniform floats in [0, 1). */
export type Random = () => number;

/** 32-bit seed from any parts (FNV-1a over their strings, NUL-separated). */
export function hashSeed(...parts: (string | number)[]): number {
  let h = 0x811c9dc5;
  const s = parts.map(String).join("\u0000");
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32 seeded with a 32-bit integer. */
export function mulberry32(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A generator seeded from several parts: `seeded("fedjoint-phantom", seed, joint, index)`. */
export function seeded(...parts: (string | number)[]): Random {
  return mulberry32(hashSeed(...parts));
}

/** Uniform integer in [0, n). */
export function randomInt(rand: Random, n: number): number {
  return Math.min(n - 1, Math.floor(rand() * n));
}

/** Uniform unsigned 32-bit integer (all 32 bits of one draw). */
export function randomUint32(rand: Random): number {
  return (rand() * 4294967296) >>> 0;
}

/** Uniform float in [lo, hi). */
export function uniform(rand: Random, lo: number, hi: number): number {
  return lo + (hi - lo) * rand();
}

/** Standard normal (Box–Muller; two uniform draws per value). */
export function normal(rand: Random): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** In-place Fisher–Yates shuffle of an array or typed array; returns it. */
export function shuffle<T extends { length: number; [i: number]: unknown }>(arr: T, rand: Random): T {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = randomInt(rand, i + 1);
    const tmp = arr[i];
    arr[i] = arr[j];
    arr[j] = tmp;
  }
  return arr;
}

/** A uniformly random permutation of 0..n−1 (`shuffle` of the identity). */
export function permutation(n: number, rand: Random): number[] {
  return shuffle(
    Array.from({ length: n }, (_, i) => i),
    rand,
  );
}
