import { fjError } from "../errors.js";
import { hashSeed, mulberry32, permutation } from "../random.js";

/**
 * Leave-one-out across sites (DESIGN §3). With n_k exams at site k, there are F = min_k n_k folds
 * (or fewer if asked). π_k is a seeded permutation of 0..n_k−1, derived from (seed, site) only, so
 * a site can compute its own π_k locally from the seed and its own count, and adding a site does
 * not change the others. In fold i, site k tests exam π_k(i), validates on π_k((i+1) mod n_k) and
 * trains on all its other exams. Exam indices refer to the site's exams in its own sorted order;
 * they never leave the site.
 */

export interface SiteFold {
  test: number;
  validation: number;
  /** Increasing order. */
  train: number[];
}

export interface Fold {
  index: number;
  sites: Record<string, SiteFold>;
}

export interface FoldPlan {
  seed: string;
  nFolds: number;
  permutations: Record<string, number[]>;
  folds: Fold[];
}

export interface FoldPlanInput {
  sites: readonly { site: string; nExams: number }[];
  seed: string | number;
  /** Number of folds to run, 1..min n_k; default min n_k (full leave-one-out). */
  folds?: number;
}

export const MIN_EXAMS_PER_SITE = 3;

/** π_k for one site: a seeded permutation of its exam indices. */
export function sitePermutation(seed: string | number, site: string, nExams: number): number[] {
  return permutation(nExams, mulberry32(hashSeed("fedjoint-loo", String(seed), site)));
}

/** Site k's split in fold i. */
export function siteFold(perm: readonly number[], foldIndex: number): SiteFold {
  const n = perm.length;
  if (!Number.isInteger(foldIndex) || foldIndex < 0 || foldIndex >= n) {
    throw fjError("FJ_EVAL_FOLDS", `fold ${foldIndex} is out of range, expected an integer 0–${n - 1}`);
  }
  const test = perm[foldIndex];
  const validation = perm[(foldIndex + 1) % n];
  const train: number[] = [];
  for (let e = 0; e < n; e++) if (e !== test && e !== validation) train.push(e);
  return { test, validation, train };
}

export function planFolds(input: FoldPlanInput): FoldPlan {
  if (input.sites.length === 0) throw fjError("FJ_EVAL_FOLDS", "fold plan: no sites given");
  const seen = new Set<string>();
  for (const { site, nExams } of input.sites) {
    if (seen.has(site)) throw fjError("FJ_EVAL_FOLDS", `fold plan: site '${site}' is listed twice`);
    seen.add(site);
    if (!Number.isInteger(nExams) || nExams < MIN_EXAMS_PER_SITE) {
      throw fjError(
        "FJ_EVAL_FOLDS",
        `fold plan: site '${site}' has ${nExams} exams, expected at least ${MIN_EXAMS_PER_SITE} (test, validation, training)`,
      );
    }
  }
  const maxFolds = Math.min(...input.sites.map((s) => s.nExams));
  const nFolds = input.folds ?? maxFolds;
  if (!Number.isInteger(nFolds) || nFolds < 1 || nFolds > maxFolds) {
    throw fjError(
      "FJ_EVAL_FOLDS",
      `fold plan: folds is ${nFolds}, expected an integer in 1..${maxFolds} (min exams per site)`,
    );
  }
  const seed = String(input.seed);
  const permutations: Record<string, number[]> = {};
  for (const { site, nExams } of input.sites) permutations[site] = sitePermutation(seed, site, nExams);
  const folds: Fold[] = [];
  for (let i = 0; i < nFolds; i++) {
    const sites: Record<string, SiteFold> = {};
    for (const { site } of input.sites) sites[site] = siteFold(permutations[site], i);
    folds.push({ index: i, sites });
  }
  return { seed, nFolds, permutations, folds };
}
