/**
 * Attack 6 of issue 13 (site data): `data check` accepted an image symlinked outside the dataset
 * and an all-background label volume without a word. A file that resolves outside the dataset
 * folder is now a problem (FJ_DATA_PATH, exit 2) — and the site-client, which validates with the
 * same check, refuses to start on it — while a label map with no foreground is a warning
 * (FJ_DATA_LABEL_EMPTY) naming the file.
 */
import { spawnSync } from "node:child_process";
import { cp, mkdtemp, rename, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readNifti, writeNifti } from "../../../src/data/nifti.js";
import { synthesizeDataset } from "../../../src/data/phantoms.js";
import { binScript } from "../../../src/simulation/processes.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

function cli(script: string, execArgv: string[], args: string[]) {
  const r = spawnSync(process.execPath, [...execArgv, script, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, FEDJOINT_LOG_JSON: "1", FEDJOINT_LOG_LEVEL: "error" },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}
const dataCheck = (dir: string) =>
  cli(path.join(ROOT, "src/cli/fedjoint.ts"), ["--import", "tsx"], ["data", "check", dir, "--json"]);

describe("attack 6: data check", () => {
  let tmp: string;
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("refuses an image linked from outside the dataset and warns on a label map without foreground", async () => {
    tmp = await mkdtemp(path.join(tmpdir(), "fj-datacheck-"));
    const clean = path.join(tmp, "clean");
    await synthesizeDataset({ joint: "knee", subjects: 3, size: 24, seed: 3, out: clean });
    const ok = dataCheck(clean);
    expect(ok.code).toBe(0);

    // an image replaced by a symlink to a file outside the dataset folder
    const linked = path.join(tmp, "linked");
    await cp(clean, linked, { recursive: true });
    const image = path.join(linked, "imagesTr", "knee_001_0000.nii.gz");
    const outside = path.join(tmp, "elsewhere.nii.gz");
    await rename(image, outside);
    await symlink(outside, image);
    const bad = dataCheck(linked);
    expect(bad.code).toBe(2);
    const report = JSON.parse(bad.stdout) as {
      ok: boolean;
      problems: { code: string; file: string; message: string }[];
    };
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => [p.code, p.file])).toContainEqual(["FJ_DATA_PATH", image]);
    expect(report.problems.find((p) => p.code === "FJ_DATA_PATH")?.message).toBe(
      `resolves to ${outside}, outside the dataset folder ${linked}: expected a file inside it`,
    );
    expect(bad.stderr).toContain(`FJ_DATA_PATH: ${image}: resolves to ${outside}`);
    // the site-client validates the same way and stops before connecting
    const { script, execArgv } = binScript("site-client");
    const site = cli(script, execArgv, [
      ...["--joint", "knee", "--data", linked, "--coordinator", "127.0.0.1:1", "--insecure"],
      ...["--state", path.join(tmp, "site"), "--backend", "cpu"],
    ]);
    expect(site.code).toBe(2);
    expect(site.stderr.split("\n").pop()).toMatch(new RegExp(`^FJ_DATA_PATH: ${image}: resolves to `));

    // a label map holding only background
    const empty = path.join(tmp, "empty");
    await cp(clean, empty, { recursive: true });
    const label = path.join(empty, "labelsTr", "knee_002.nii.gz");
    const vol = await readNifti(label);
    await writeNifti(label, { ...vol, data: new Float32Array(vol.data.length) });
    const warned = dataCheck(empty);
    expect(warned.code).toBe(0);
    const w = JSON.parse(warned.stdout) as {
      ok: boolean;
      warnings: { code: string; file: string; message: string }[];
    };
    expect(w.ok).toBe(true);
    expect(w.warnings).toContainEqual({
      code: "FJ_DATA_LABEL_EMPTY",
      file: label,
      message: "holds only background (label 0): no bone is segmented in this case",
    });
    expect(warned.stderr).toContain(`warning FJ_DATA_LABEL_EMPTY: ${label}`);
  });
});
