/**
 * The project's seeded PRNG (initial weights, fold permutations, pair sampling): FNV-1a hash of a string
 * seed → mulberry32. Deterministic across platforms; not cryptographic.
 */
export function hashSeed(...parts: (string | number)[]): number {
  let h = 0x811c9dc5;
  const s = parts.map(String).join("\u0000");
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Returns a function producing uniform floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform integer in [0, n). */
export function randomInt(rand: () => number, n: number): number {
  return Math.min(n - 1, Math.floor(rand() * n));
}

/** Fisher–Yates permutation of 0..n-1. */
export function permutation(n: number, rand: () => number): number[] {
  return shuffle(
    Array.from({ length: n }, (_, i) => i),
    rand,
  );
}

/** Fisher–Yates shuffle of `items` in place (returned for chaining), with uniforms from `rand`. */
export function shuffle<A extends { length: number; [i: number]: unknown }>(items: A, rand: () => number): A {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(rand, i + 1);
    const t = items[i];
    items[i] = items[j];
    items[j] = t;
  }
  return items;
}
