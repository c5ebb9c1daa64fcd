/**
 * `fedjoint model summary` and `fedjoint train` input errors, through the real CLI entry.
 */
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
let tmp: string;

function fedjoint(args: string[]) {
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", path.join(ROOT, "src/cli/fedjoint.ts"), ...args],
    {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, FEDJOINT_LOG_JSON: "1", FEDJOINT_BACKEND: "wasm" },
      timeout: 120_000,
    },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("fedjoint model / train CLI", () => {
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), "fj-model-cli-"));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it("model summary --json: paper parameter counts and 9 scales, one JSON line", () => {
    const r = fedjoint([
      "model",
      "summary",
      "--arch",
      "att-unet",
      "--base",
      "32",
      "--depth",
      "5",
      "--joints",
      "ankle,knee,shoulder",
      "--json",
    ]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]);
    expect(Math.abs(s.sharedParams - 8_713_744) / 8_713_744).toBeLessThan(0.02);
    const domain = Object.values(s.domainParams as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(domain / (domain + s.sharedParams)).toBeLessThanOrEqual(0.03);
    expect(s.scales).toEqual([32, 64, 128, 256, 512, 256, 128, 64, 32]);
    expect(Object.keys(s.domainParams)).toEqual(["ankle", "knee", "shoulder"]);
  });

  it("bad flags and bad data fail with one line and a non-zero exit", async () => {
    const bad = fedjoint(["model", "summary", "--joints", "ankle,elbow"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split("\n").at(-1)).toMatch(/^FJ_CLI_ARG: --joints is 'ankle,elbow', expected/);
    const method = fedjoint(["train", "--data", tmp, "--method", "dsl+foo", "--out", path.join(tmp, "run")]);
    expect(method.code).toBe(2);
    expect(method.stderr).toMatch(
      /FJ_CLI_ARG: --method is 'dsl\+foo', expected one of individual\|shared\|dsl/,
    );
    const ds = path.join(tmp, "nojoint");
    await mkdir(path.join(ds, "imagesTr"), { recursive: true });
    await mkdir(path.join(ds, "labelsTr"), { recursive: true });
    await writeFile(
      path.join(ds, "dataset.json"),
      JSON.stringify({
        channel_names: { "0": "MR" },
        labels: { background: 0, femur: 1 },
        numTraining: 0,
        file_ending: ".nii.gz",
      }),
    );
    const nojoint = fedjoint(["train", "--data", ds, "--size", "64", "--out", path.join(tmp, "run")]);
    expect(nojoint.code).toBe(2);
    expect(nojoint.stderr.trim().split("\n").at(-1)).toMatch(
      /dataset.json has no "joint" field; name the joints with --joints/,
    );
  });
});
