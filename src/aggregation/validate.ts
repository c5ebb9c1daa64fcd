/**
 * Validation of a received update before it can touch the aggregate: every name shared (never a
 * domain tensor), exactly the expected names and shapes, an allowed wire dtype, finite values,
 * L2 norm within the bound. The first problem is returned as a reason; nothing is thrown.
 */

import type { ErrorCode } from "../errors.js";
import { isShared, type NamedTensor } from "../model/api.js";
import type { TensorSchema } from "./strategy.js";

export type Verdict = { ok: true; norm: number } | { ok: false; code: ErrorCode; reason: string };

export interface ValidationOptions {
  /** Expected schema of the phase, computed from the study config before any update arrives. */
  schema: TensorSchema;
  /** Bound on the L2 norm of the whole set. */
  maxNorm: number;
  /** Wire dtypes of the received tensors (from the header), checked against `allowedDtypes`. */
  dtypes?: readonly string[];
  allowedDtypes?: readonly string[];
}

export function validateUpdate(tensors: readonly NamedTensor[], options: ValidationOptions): Verdict {
  const allowed = options.allowedDtypes ?? ["float32", "float16"];
  const bad = (options.dtypes ?? []).find((d) => !allowed.includes(d));
  if (bad !== undefined) {
    return { ok: false, code: "FJ_AGG_DTYPE", reason: `dtype ${bad}, expected ${allowed.join(" or ")}` };
  }
  for (const t of tensors) {
    if (!isShared(t.name)) {
      return {
        ok: false,
        code: "FJ_AGG_DOMAIN_TENSOR",
        reason: `tensor ${t.name} is not shared/…: domain-specific parameters never leave their site`,
      };
    }
  }
  {
    const want = new Map(options.schema.tensors.map((t) => [t.name, t.shape]));
    const seen = new Set<string>();
    for (const t of tensors) {
      const shape = want.get(t.name);
      if (!shape) return { ok: false, code: "FJ_AGG_UNKNOWN_TENSOR", reason: `unexpected tensor ${t.name}` };
      if (seen.has(t.name))
        return { ok: false, code: "FJ_AGG_DUPLICATE_TENSOR", reason: `tensor ${t.name} twice` };
      seen.add(t.name);
      if (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i])) {
        return {
          ok: false,
          code: "FJ_AGG_SHAPE",
          reason: `tensor ${t.name} has shape [${t.shape.join(",")}], expected [${shape.join(",")}]`,
        };
      }
    }
    const missing = options.schema.tensors.find((t) => !seen.has(t.name));
    if (missing) {
      return {
        ok: false,
        code: "FJ_AGG_MISSING_TENSOR",
        reason: `tensor ${missing.name} is missing (${seen.size}/${want.size} sent)`,
      };
    }
  }
  let sq = 0;
  for (const t of tensors) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (!Number.isFinite(v)) {
        return { ok: false, code: "FJ_AGG_NONFINITE", reason: `tensor ${t.name} has ${v} at element ${i}` };
      }
      sq += v * v;
    }
  }
  const norm = Math.sqrt(sq);
  if (norm > options.maxNorm) {
    return {
      ok: false,
      code: "FJ_AGG_NORM",
      reason: `L2 norm ${norm.toPrecision(4)} exceeds the bound ${options.maxNorm}`,
    };
  }
  return { ok: true, norm };
}
