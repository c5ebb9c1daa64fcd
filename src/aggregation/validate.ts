/**
 * Validation of a received update before it can touch the aggregate: every name shared (never a
 * domain tensor), exactly the expected names and shapes, an allowed wire dtype, finite values,
 * L2 norm within the bound; its losses and metrics only the known names with finite values. The
 * first problem is returned as a reason; nothing is thrown.
 */

import type { ErrorCode } from "../errors.js";
import { isShared, type NamedTensor } from "../model/api.js";
import { type Method, methodSpec, type Phase } from "../study/methods.js";
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

/** A tensor's name, shape and wire dtype as a stream header declares it. */
export interface TensorSpec {
  name: string;
  shape: readonly number[];
  dtype?: string;
}

export type SpecVerdict = { ok: true } | { ok: false; code: ErrorCode; reason: string };

/**
 * Names, shapes and dtypes of a tensor set against the phase's schema: every name shared (never a
 * domain tensor), exactly the expected names and shapes, an allowed dtype. Checked on a stream's
 * header, before any payload byte is buffered, and again on the decoded tensors.
 */
export function checkTensorSpecs(
  specs: readonly TensorSpec[],
  schema: TensorSchema,
  allowedDtypes: readonly string[] = ["float32", "float16"],
): SpecVerdict {
  const bad = specs.find((t) => t.dtype !== undefined && !allowedDtypes.includes(t.dtype));
  if (bad !== undefined) {
    return {
      ok: false,
      code: "FJ_AGG_DTYPE",
      reason: `dtype ${bad.dtype}, expected ${allowedDtypes.join(" or ")}`,
    };
  }
  for (const t of specs) {
    if (!isShared(t.name)) {
      return {
        ok: false,
        code: "FJ_AGG_DOMAIN_TENSOR",
        reason: `tensor ${t.name} is not shared/…: domain-specific parameters never leave their site`,
      };
    }
  }
  const want = new Map(schema.tensors.map((t) => [t.name, t.shape]));
  const seen = new Set<string>();
  for (const t of specs) {
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
  const missing = schema.tensors.find((t) => !seen.has(t.name));
  if (missing) {
    return {
      ok: false,
      code: "FJ_AGG_MISSING_TENSOR",
      reason: `tensor ${missing.name} is missing (${seen.size}/${want.size} sent)`,
    };
  }
  return { ok: true };
}

export function validateUpdate(tensors: readonly NamedTensor[], options: ValidationOptions): Verdict {
  const allowed = options.allowedDtypes ?? ["float32", "float16"];
  const bad = (options.dtypes ?? []).find((d) => !allowed.includes(d));
  if (bad !== undefined) {
    return { ok: false, code: "FJ_AGG_DTYPE", reason: `dtype ${bad}, expected ${allowed.join(" or ")}` };
  }
  const specs = checkTensorSpecs(tensors, options.schema, allowed);
  if (!specs.ok) return specs;
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

/** The scalar names an update may carry, and a bound on their magnitude. */
export interface ScalarRules {
  /** Loss terms of the phase (total, ce and the method's terms). */
  loss: readonly string[];
  /** Metrics the site-client reports. */
  metrics: readonly string[];
  /** |value| bound (finite values only). */
  maxAbs: number;
}

/**
 * Loss and metric maps of an update: only the known names, each a finite number within the
 * bound — so that an update cannot bloat the ledger or carry NaN into the dashboard.
 */
export function checkScalars(
  loss: Readonly<Record<string, number>>,
  metrics: Readonly<Record<string, number>>,
  rules: ScalarRules,
): SpecVerdict {
  for (const [field, map, known] of [
    ["loss", loss, rules.loss],
    ["metrics", metrics, rules.metrics],
  ] as const) {
    const keys = Object.keys(map);
    if (keys.length > known.length) {
      return {
        ok: false,
        code: "FJ_AGG_SCALARS",
        reason: `${field} has ${keys.length} keys, expected at most ${known.length} (${known.join(", ")})`,
      };
    }
    for (const k of keys) {
      if (!known.includes(k)) {
        return {
          ok: false,
          code: "FJ_AGG_SCALARS",
          reason: `${field}.${k.slice(0, 64)} is not one of ${known.join(", ")}`,
        };
      }
      const v = map[k];
      if (typeof v !== "number" || !Number.isFinite(v) || Math.abs(v) > rules.maxAbs) {
        return {
          ok: false,
          code: "FJ_AGG_SCALARS",
          reason: `${field}.${k} is ${String(v)}, expected a finite number within ±${rules.maxAbs}`,
        };
      }
    }
  }
  return { ok: true };
}

/** Metrics a site-client reports with each update (src/site-client/client.ts). */
export const UPDATE_METRICS = ["compute_ms", "train_ms", "pull_ms", "val_dice_before"] as const;

/**
 * The scalars an update of `phase` may carry under `method`: total and ce, plus msc when the
 * phase has a contrastive term (L_MSC or L_SSC) and mjap when it has L_MJAP (MethodSpec).
 */
export function updateScalarRules(method: Method, phase: Phase): ScalarRules {
  const spec = methodSpec(method).phase[phase];
  const loss = ["total", "ce"];
  if (spec.contrastive !== undefined) loss.push("msc");
  if (spec.mjap) loss.push("mjap");
  return { loss, metrics: UPDATE_METRICS, maxAbs: 1e12 };
}
