/**
 * `fedjoint simulate --backend webgpu`: a real coordinator and one site-client process per site
 * (loopback mTLS), every site training on Dawn (here OpenGL ES over Mesa llvmpipe), two SEG
 * rounds after the AE round: the federation completes, every aggregate is finite and every site
 * process ran on the webgpu engine.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { SimulateSummary } from "../../../src/simulation/simulate.js";
import { WEBGPU_TEST_ADAPTER, webgpuEngine } from "./webgpu-engine.js";

const cli = path.resolve("dist/cli/fedjoint.js");
let work: string | undefined;

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("fedjoint simulate --backend webgpu (2 sites, 2 rounds)", () => {
  it("federates: coordinator + site processes on the webgpu engine, finite aggregates", async () => {
    // The prerequisite, with its one-line reason, before three processes are started.
    expect((await webgpuEngine()).backend).toBe("webgpu");
    expect(existsSync(cli), `${cli} is missing (npm run build)`).toBe(true);
    work = await mkdtemp(path.join(os.tmpdir(), "fj-webgpu-sim-"));
    const sites = ["knee", "ankle"];
    const r = spawnSync(
      process.execPath,
      [
        cli,
        "simulate",
        "--backend",
        "webgpu",
        "--sites",
        sites.join(","),
        "--rounds",
        "2",
        "--ae-rounds",
        "1",
        "--steps",
        "3",
        "--batch",
        "12",
        "--workdir",
        work,
        "--json",
      ],
      {
        encoding: "utf8",
        env: {
          ...process.env,
          FEDJOINT_WEBGPU_ADAPTER: WEBGPU_TEST_ADAPTER,
          FEDJOINT_LOG_JSON: "1",
        },
        timeout: 900_000,
      },
    );
    expect(r.status, `simulate failed: ${r.stderr.slice(-2000)}`).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split("\n").pop()!) as SimulateSummary;
    expect(summary.aggregations).toBe(3); // 1 AE + 2 SEG rounds
    expect(summary.rounds.map((x) => `${x.phase}${x.round}`)).toEqual(["ae0", "seg0", "seg1"]);
    for (const site of sites) {
      const s = summary.sites[site];
      expect(Number.isFinite(s.initialDice), site).toBe(true);
      expect(Number.isFinite(s.finalDice), site).toBe(true);
      expect(s.computeSeconds).toBeGreaterThan(0);
      // Θ went up and the aggregate came back down in the second SEG round.
      const seg1 = summary.rounds.find((x) => x.phase === "seg" && x.round === 1)!;
      expect(seg1.bytes[site].sent).toBeGreaterThan(0);
      expect(seg1.bytes[site].received).toBeGreaterThan(0);
      // The site process's own start-up line names the webgpu engine.
      const log = await readFile(path.join(work, "logs", `${site}.log`), "utf8");
      const ready = log
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { msg?: string; backend?: string; device?: string })
        .find((l) => l.msg === "engine ready");
      expect(ready?.backend, `${site}: ${ready?.device}`).toBe("webgpu");
      expect(ready?.device).toMatch(/^WebGPU \(Dawn /);
    }
  }, 900_000);
});
