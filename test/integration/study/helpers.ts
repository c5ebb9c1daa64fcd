/**
 * What the tests comparing a federation with pooled training share: the `fedjoint` CLI run from
 * the sources in a child process (one native thread: the same reduction order in every run), and
 * the largest element-wise difference between two tensor sets matched by name.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import type { NamedTensor } from "../../../src/model/api.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** Runs `fedjoint …args` (JSON logs); throws with the end of stderr on a non-zero exit. */
export function fedjoint(args: string[], timeoutMs = 900_000): string {
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", path.join(ROOT, "src/cli/fedjoint.ts"), ...args],
    {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, FEDJOINT_LOG_JSON: "1", FEDJOINT_THREADS: "1" },
      timeout: timeoutMs,
    },
  );
  if (r.status !== 0)
    throw new Error(`fedjoint ${args.join(" ")} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** max |a − b| over every element of every tensor of `a`; each must exist in `b` with its shape. */
export function maxAbsDiff(a: readonly NamedTensor[], b: readonly NamedTensor[]): number {
  const byName = new Map(b.map((t) => [t.name, t]));
  let max = 0;
  for (const t of a) {
    const u = byName.get(t.name);
    if (!u) throw new Error(`${t.name} missing`);
    expect(u.shape, t.name).toEqual(t.shape);
    for (let i = 0; i < t.data.length; i++) max = Math.max(max, Math.abs(t.data[i] - u.data[i]));
  }
  return max;
}
