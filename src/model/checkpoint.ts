import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../atomic-write.js";
import { fjError } from "../errors.js";
import { JOINTS, type Joint } from "../joints.js";
import { type NamedTensor, scopeOf } from "./api.js";

/**
 * Checkpoint format (version 1): a directory with two files.
 *
 * - `tensors.bin` — the tensors' values one after another, float32 little-endian, in manifest order.
 * - `manifest.json` —
 *   `{ "format": "fedjoint-checkpoint", "version": 1, "scope": "all" | "shared" | "domain:<joint>",
 *      "createdAt": ISO-8601, "meta": {…free-form: method, base, depth, phase…},
 *      "tensors": [{ "name", "shape": [..], "dtype": "float32", "offset": bytes, "length": bytes }],
 *      "bytes": total, "sha256": hex of tensors.bin }`
 *
 * Names are partition names (`shared/…`, `domain/<joint>/…`). Both files are written to temporary
 * names and renamed, tensors first, manifest last: a reader either finds the previous complete
 * checkpoint or the new one, and a manifest whose checksum does not match its data is rejected.
 */
export const CHECKPOINT_FORMAT = "fedjoint-checkpoint";
export const CHECKPOINT_VERSION = 1;

/** Which part of the partition a checkpoint holds. */
export type CheckpointScope = "all" | "shared" | { domain: Joint };

const manifestSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  version: z.literal(CHECKPOINT_VERSION),
  scope: z.string(),
  createdAt: z.string(),
  meta: z.record(z.string(), z.unknown()),
  tensors: z.array(
    z.object({
      name: z.string(),
      shape: z.array(z.number().int().nonnegative()),
      dtype: z.literal("float32"),
      offset: z.number().int().nonnegative(),
      length: z.number().int().nonnegative(),
    }),
  ),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type CheckpointManifest = z.infer<typeof manifestSchema>;

export function scopeLabel(scope: CheckpointScope): string {
  return typeof scope === "string" ? scope : `domain:${scope.domain}`;
}

export function parseScope(value: string, field = "scope"): CheckpointScope {
  if (value === "all" || value === "shared") return value;
  const m = /^domain:(.+)$/.exec(value);
  if (m && (JOINTS as readonly string[]).includes(m[1])) return { domain: m[1] as Joint };
  throw fjError("FJ_MODEL_SCOPE", `${field} is '${value}', expected all|shared|domain:<ankle|knee|shoulder>`);
}

/** Whether variable `name` belongs to `scope`. */
export function inScope(name: string, scope: CheckpointScope): boolean {
  if (scope === "all") return true;
  const s = scopeOf(name);
  if (scope === "shared") return s === "shared";
  return s !== "shared" && s.domain === scope.domain;
}

/** Writes `tensors` as a checkpoint directory `dir` (created if needed), atomically. */
export async function writeCheckpoint(
  dir: string,
  tensors: readonly NamedTensor[],
  scope: CheckpointScope,
  meta: Record<string, unknown> = {},
): Promise<CheckpointManifest> {
  await mkdir(dir, { recursive: true });
  const entries: CheckpointManifest["tensors"] = [];
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw fjError("FJ_MODEL_CHECKPOINT", `tensor ${t.name} appears twice`);
    seen.add(t.name);
    if (!inScope(t.name, scope)) {
      throw fjError(
        "FJ_MODEL_CHECKPOINT",
        `tensor ${t.name} is outside the checkpoint scope ${scopeLabel(scope)}`,
      );
    }
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) {
      throw fjError(
        "FJ_MODEL_SHAPE",
        `tensor ${t.name} has ${t.data.length} values, shape [${t.shape}] needs ${size}`,
      );
    }
    entries.push({ name: t.name, shape: [...t.shape], dtype: "float32", offset, length: size * 4 });
    offset += size * 4;
  }
  const bin = Buffer.alloc(offset);
  tensors.forEach((t, i) => {
    const view = new DataView(bin.buffer, bin.byteOffset + entries[i].offset, entries[i].length);
    for (let k = 0; k < t.data.length; k++) view.setFloat32(k * 4, t.data[k], true);
  });
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    scope: scopeLabel(scope),
    createdAt: new Date().toISOString(),
    meta,
    tensors: entries,
    bytes: offset,
    sha256: createHash("sha256").update(bin).digest("hex"),
  };
  await writeFileAtomic(path.join(dir, "tensors.bin"), bin);
  await writeFileAtomic(path.join(dir, "manifest.json"), `${JSON.stringify(manifest, null, 1)}\n`);
  return manifest;
}

/** Reads and verifies a checkpoint directory (format, version, sizes, SHA-256, finite values). */
export async function readCheckpoint(
  dir: string,
): Promise<{ manifest: CheckpointManifest; tensors: NamedTensor[] }> {
  const manifestFile = path.join(dir, "manifest.json");
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(manifestFile, "utf8"));
  } catch (err) {
    throw fjError(
      "FJ_MODEL_CHECKPOINT",
      `${manifestFile}: cannot read a JSON manifest (${(err as Error).message})`,
      {
        cause: err,
      },
    );
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw fjError(
      "FJ_MODEL_CHECKPOINT",
      `${manifestFile}: ${issue.path.join(".") || "(root)"}: ${issue.message}`,
    );
  }
  const manifest = parsed.data;
  const binFile = path.join(dir, "tensors.bin");
  let bin: Buffer;
  try {
    bin = await readFile(binFile);
  } catch (err) {
    throw fjError("FJ_MODEL_CHECKPOINT", `${binFile}: missing (${(err as Error).message})`, {
      cause: err,
    });
  }
  if (bin.length !== manifest.bytes) {
    throw fjError(
      "FJ_MODEL_CHECKPOINT",
      `${binFile}: ${bin.length} bytes, the manifest declares ${manifest.bytes}`,
    );
  }
  const sha = createHash("sha256").update(bin).digest("hex");
  if (sha !== manifest.sha256) {
    throw fjError(
      "FJ_MODEL_CHECKSUM",
      `${binFile}: SHA-256 ${sha.slice(0, 12)}… does not match the manifest's ${manifest.sha256.slice(0, 12)}…`,
    );
  }
  const tensors = manifest.tensors.map((e) => {
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (e.length !== size * 4 || e.offset + e.length > bin.length) {
      throw fjError(
        "FJ_MODEL_CHECKPOINT",
        `${manifestFile}: tensor ${e.name} [${e.shape}] has an inconsistent offset/length`,
      );
    }
    const view = new DataView(bin.buffer, bin.byteOffset + e.offset, e.length);
    const data = new Float32Array(size);
    for (let k = 0; k < size; k++) data[k] = view.getFloat32(k * 4, true);
    return { name: e.name, shape: e.shape, data };
  });
  return { manifest, tensors };
}

/**
 * Checks a checkpoint's tensors against what a model expects for `scope`: every tensor must be a
 * variable of the model with the same shape, and every model variable of that scope must be
 * present. Throws a ModelError naming the first mismatch.
 */
export function checkAgainst(
  source: string,
  tensors: readonly NamedTensor[],
  expected: ReadonlyMap<string, readonly number[]>,
  scope: CheckpointScope,
): void {
  const have = new Set<string>();
  for (const t of tensors) {
    const shape = expected.get(t.name);
    if (!shape)
      throw fjError(
        "FJ_MODEL_CHECKPOINT_MISMATCH",
        `${source}: tensor ${t.name} is not a variable of this model`,
      );
    if (shape.join() !== t.shape.join()) {
      throw fjError(
        "FJ_MODEL_CHECKPOINT_MISMATCH",
        `${source}: tensor ${t.name} has shape [${t.shape}], this model expects [${shape}] (different base/depth/labels?)`,
      );
    }
    have.add(t.name);
  }
  for (const name of expected.keys()) {
    if (inScope(name, scope) && !have.has(name)) {
      throw fjError(
        "FJ_MODEL_CHECKPOINT_MISMATCH",
        `${source}: lacks ${name}, which this model needs for scope ${scopeLabel(scope)}`,
      );
    }
  }
}
