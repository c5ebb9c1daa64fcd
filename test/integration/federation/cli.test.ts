/**
 * The federation CLIs at their edges: bad input gives one line `CODE: message` naming the file
 * or field, and a non-zero exit, before anything connects; `fedjoint certs --json` writes a PKI.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generateCerts } from "../../../src/protocol/certs.js";
import { binScript } from "../../../src/simulation/processes.js";

function run(bin: "coordinator" | "site-client" | "fedjoint", args: string[]) {
  const { script, execArgv } =
    bin === "fedjoint"
      ? { script: path.resolve("src/cli/fedjoint.ts"), execArgv: ["--import", "tsx"] }
      : binScript(bin);
  const r = spawnSync(process.execPath, [...execArgv, script, ...args], {
    encoding: "utf8",
    env: { ...process.env, FEDJOINT_LOG_JSON: "1", FEDJOINT_LOG_LEVEL: "error" },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

describe("federation CLIs", () => {
  let dir: string;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("report bad input in one line with a code and a non-zero exit", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "fj-cli-"));
    const certs = await generateCerts({ out: path.join(dir, "certs"), sites: ["knee"] });
    // a study config with a field out of range
    const cfg = path.join(dir, "study.yaml");
    await writeFile(
      cfg,
      "study: s\nmethod: dsl\nsites:\n  - { name: knee, joint: knee }\nrounds: 2\nlocalSteps: 1\nminSites: 2\n",
    );
    const bad = run("coordinator", [
      "--config",
      cfg,
      "--state",
      path.join(dir, "state"),
      "--cert",
      certs.coordinator.cert,
      "--key",
      certs.coordinator.key,
      "--ca",
      certs.ca,
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.split("\n").pop()).toBe(
      `FJ_STUDY_CONFIG: ${cfg}: minSites: 2 exceeds the 1 configured sites`,
    );
    // mTLS is the default: no certificate, no coordinator
    await writeFile(
      cfg,
      "study: s\nmethod: dsl\nsites:\n  - { name: knee, joint: knee }\nrounds: 2\nlocalSteps: 1\nminSites: 1\n",
    );
    const noTls = run("coordinator", ["--config", cfg, "--state", path.join(dir, "state")]);
    expect(noTls.code).toBe(2);
    expect(noTls.stderr.split("\n").pop()).toMatch(
      /^FJ_TLS_MISSING: --ca is required \(or --insecure for a local demo\)$/,
    );
    // a site whose dataset is malformed stops before connecting, naming the file
    const data = path.join(dir, "data");
    await mkdir(data, { recursive: true });
    await writeFile(
      path.join(data, "dataset.json"),
      JSON.stringify({
        channel_names: { "0": "T1" },
        labels: { background: 0, femur: 1 },
        numTraining: 3,
        file_ending: ".nii.gz",
      }),
    );
    const site = run("site-client", [
      "--joint",
      "knee",
      "--data",
      data,
      "--coordinator",
      "127.0.0.1:1",
      "--state",
      path.join(dir, "site"),
      "--cert",
      certs.sites.knee.cert,
      "--key",
      certs.sites.knee.key,
      "--ca",
      certs.ca,
      "--backend",
      "cpu",
    ]);
    expect(site.code).toBe(2);
    const line = site.stderr.split("\n").pop()!;
    expect(line).toMatch(/^FJ_DATA_[A-Z_]+: /);
    expect(line).toContain(data);
    const badJoint = run("site-client", [
      "--joint",
      "hip",
      "--data",
      data,
      "--coordinator",
      "127.0.0.1:1",
      "--state",
      path.join(dir, "site"),
      "--insecure",
    ]);
    expect(badJoint.code).toBe(2);
    expect(badJoint.stderr.split("\n").pop()).toBe(
      "FJ_CLI_ARG: --joint is 'hip', expected one of ankle, knee, shoulder",
    );
  });

  it("fedjoint certs writes a CA, a coordinator and one certificate per site", () => {
    const out = path.join(dir, "pki");
    const r = run("fedjoint", [
      "certs",
      "--out",
      out,
      "--sites",
      "ankle,knee",
      "--hosts",
      "coord.example",
      "--json",
    ]);
    expect(r.code).toBe(0);
    const files = JSON.parse(r.stdout) as {
      ca: string;
      sites: Record<string, { cert: string; key: string }>;
    };
    expect(Object.keys(files.sites)).toEqual(["ankle", "knee"]);
    for (const f of [files.ca, files.sites.ankle.cert, files.sites.knee.key])
      expect(existsSync(f)).toBe(true);
  });
});
