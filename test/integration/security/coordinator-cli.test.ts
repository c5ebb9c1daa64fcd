/**
 * Attack 6 of issue 13 (the coordinator's own edges): a dashboard that fails to start, a missing
 * --ca, absurd study-config sizes, a damaged state directory and SIGTERM. Each ends with one line
 * `FJ_…: …` (never a stack trace) and a non-zero exit, before anything is written; SIGTERM stops
 * the coordinator cleanly (exit 143) whether it waits for sites or runs a round, and a state
 * directory damaged afterwards — a model file missing or altered, state.json missing a field —
 * is refused naming the file.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, rm, unlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { binScript } from "../../../src/simulation/processes.js";
import type { StudyConfigInput } from "../../../src/study/config.js";
import {
  type Env,
  freePort,
  makeEnv,
  type Proc,
  rawClient,
  SITES,
  startCoordinator,
  studyConfig,
  writeConfig,
} from "../federation/helpers.js";
import { unary } from "./helpers.js";

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const { script, execArgv } = binScript("coordinator");
  const r = spawnSync(process.execPath, [...execArgv, script, ...args], {
    encoding: "utf8",
    env: { ...process.env, FEDJOINT_LOG_JSON: "1", FEDJOINT_LOG_LEVEL: "error", ...env },
  });
  return { code: r.status, lines: r.stderr.trim().split("\n") };
}

describe("attack 6: the coordinator's edges", () => {
  let e: Env;
  const procs: Proc[] = [];
  afterAll(async () => {
    for (const p of procs) p.kill("SIGKILL");
    if (e) await rm(e.work, { recursive: true, force: true });
  });
  const tls = () => [
    "--cert",
    e.certs.coordinator.cert,
    "--key",
    e.certs.coordinator.key,
    "--ca",
    e.certs.ca,
  ];

  it("refuses a dashboard that cannot start, a missing --ca and absurd sizes before writing any state", async () => {
    e = await makeEnv();
    const config = await writeConfig(e, studyConfig());
    const state = path.join(e.work, "refused");
    const noState = () => expect(existsSync(path.join(state, "state.json"))).toBe(false);
    // no token off loopback
    const open = run(
      ["--config", config, "--state", state, "--port", "0", "--dashboard", "0.0.0.0:0", ...tls()],
      {
        FEDJOINT_DASHBOARD_TOKEN: "",
      },
    );
    expect(open.code).toBe(2);
    expect(open.lines).toEqual([
      "FJ_DASHBOARD_TOKEN_REQUIRED: dashboard on 0.0.0.0:0 is not loopback: give a token (FEDJOINT_DASHBOARD_TOKEN) or TLS with a client CA",
    ]);
    noState();
    // the dashboard's port is taken
    const taken = createServer();
    const port = await new Promise<number>((resolve) =>
      taken.listen(0, "127.0.0.1", () => resolve((taken.address() as { port: number }).port)),
    );
    const busy = run([
      "--config",
      config,
      "--state",
      state,
      "--port",
      "0",
      "--dashboard",
      `127.0.0.1:${port}`,
      ...tls(),
    ]);
    taken.close();
    expect(busy.code).toBe(4);
    expect(busy.lines).toHaveLength(1);
    expect(busy.lines[0]).toMatch(
      new RegExp(`^FJ_DASHBOARD_LISTEN: cannot listen on 127\\.0\\.0\\.1:${port}: `),
    );
    noState();
    // mTLS without --ca
    const noCa = run([
      "--config",
      config,
      "--state",
      state,
      "--cert",
      e.certs.coordinator.cert,
      "--key",
      e.certs.coordinator.key,
    ]);
    expect(noCa.code).toBe(2);
    expect(noCa.lines).toEqual(["FJ_TLS_MISSING: --ca is required (or --insecure for a local demo)"]);
    noState();
    // study-config sizes beyond their bounds
    const sizes: [Partial<StudyConfigInput>, RegExp][] = [
      [{ model: { size: 1e9 } }, /model\.size: Too big: expected number to be <=1024/],
      [{ model: { base: 1e5 } }, /model\.base: Too big: expected number to be <=256/],
      [
        { model: { base: 256, depth: 5 } },
        /model\.base: base 256 × 2\^\(depth−1\) = 4096 bottleneck filters, expected at most 2048/,
      ],
      [{ embeddings: { count: 1e8 } }, /embeddings\.count: Too big: expected number to be <=4096/],
    ];
    for (const [over, message] of sizes) {
      const file = await writeConfig(e, studyConfig(over), "absurd.json");
      const r = run(["--config", file, "--state", state, ...tls()]);
      expect(r.code).toBe(2);
      expect(r.lines).toHaveLength(1);
      expect(r.lines[0]).toMatch(/^FJ_STUDY_CONFIG: /);
      expect(r.lines[0]).toMatch(message);
      noState();
    }
  });

  it("stops on SIGTERM at every stage, and refuses a damaged state directory naming the file", async () => {
    const config = await writeConfig(e, studyConfig({ rounds: 2 }));
    const stateDir = path.join(e.work, "coordinator");
    const port = await freePort();
    const stopAt = async (stage: (c: Proc) => Promise<void>, status: string) => {
      const c = startCoordinator(e, config, port);
      procs.push(c);
      await c.waitFor((l) => l.msg === "coordinator listening", "listening");
      await stage(c);
      c.kill("SIGTERM");
      const exit = await c.exited;
      expect(exit.code).toBe(143);
      expect(c.logLines().find((l) => l.msg === "stopping coordinator")).toMatchObject({
        signal: "SIGTERM",
        status,
      });
    };
    // waiting for the sites
    await stopAt(async () => undefined, "joining");
    // running a round: every site joined, Θ_0 written
    await stopAt(async (c) => {
      for (const s of SITES) {
        const client = await rawClient(port, { ...e.certs.sites[s.name], ca: e.certs.ca });
        await unary(client, "Join", {
          site: s.name,
          joint: s.joint,
          labels: [],
          exams: 4,
          backend: "x",
          version: "x",
        });
        client.close();
      }
      await c.waitFor((l) => l.msg === "round opened", "round 0");
    }, "running");
    // a clean restart resumes; stopped again while it runs
    await stopAt(async (c) => {
      await c.waitFor((l) => l.msg === "resumed study from state directory", "resume");
    }, "running");

    const stateFile = path.join(stateDir, "state.json");
    const saved = JSON.parse(await readFile(stateFile, "utf8")) as {
      models: Record<string, { file: string }>;
    };
    const model = path.join(stateDir, saved.models["0/seg"].file);
    const bytes = await readFile(model);
    const resume = () => run(["--config", config, "--state", stateDir, "--port", String(port), ...tls()]);
    // a model file altered
    const altered = Buffer.from(bytes);
    altered[altered.length - 1] ^= 0xff;
    await writeFile(model, altered);
    let r = resume();
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(
      new RegExp(
        `^FJ_COORD_STATE: ${model}: SHA-256 [0-9a-f]{12}… differs from the [0-9a-f]{12}… state\\.json recorded`,
      ),
    );
    // a model file missing
    await unlink(model);
    r = resume();
    expect(r.lines).toEqual([`FJ_COORD_STATE: ${model}: cannot read (ENOENT), state.json refers to it`]);
    await writeFile(model, bytes);
    // state.json without its ledger, or with a file name leaving the directory
    const text = await readFile(stateFile, "utf8");
    const { ledger: _ledger, ...noLedger } = JSON.parse(text) as Record<string, unknown>;
    await writeFile(stateFile, JSON.stringify(noLedger));
    r = resume();
    expect(r.lines).toEqual([
      `FJ_COORD_STATE: ${stateFile}: ledger: Invalid input: expected array, received undefined`,
    ]);
    const escaping = JSON.parse(text) as { models: Record<string, { file: string }> };
    escaping.models["0/seg"].file = "../../etc/passwd.bin";
    await writeFile(stateFile, JSON.stringify(escaping));
    r = resume();
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(
      new RegExp(
        `^FJ_COORD_STATE: ${stateFile}: models\\.0/seg\\.file: expected a \\.bin file name inside the state directory`,
      ),
    );
    // repaired, it resumes
    await writeFile(stateFile, text);
    await stopAt(async (c) => {
      await c.waitFor((l) => l.msg === "resumed study from state directory", "resume");
    }, "running");
  });
});
