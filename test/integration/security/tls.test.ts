/**
 * Attack 6 of issue 13 (transport): a site with a certificate from another CA saw "unreachable"
 * and retried for 600 s while the coordinator logged nothing; `--insecure --host 0.0.0.0` only
 * warned. Now a site whose certificate the coordinator refuses — or that does not trust the
 * coordinator's — stops at once with an authentication error (FJ_SITE_TLS, exit 5) without a
 * single retry although --retry-for is 600 s, the coordinator logs each refused handshake, and
 * --insecure refuses any address other machines can reach, on both sides, before writing anything.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generateCerts } from "../../../src/protocol/certs.js";
import { binScript, Proc } from "../../../src/simulation/processes.js";
import {
  type Env,
  freePort,
  makeEnv,
  startCoordinator,
  studyConfig,
  writeConfig,
} from "../federation/helpers.js";

function run(bin: "coordinator" | "site-client", args: string[]) {
  const { script, execArgv } = binScript(bin);
  const r = spawnSync(process.execPath, [...execArgv, script, ...args], {
    encoding: "utf8",
    env: { ...process.env, FEDJOINT_LOG_JSON: "1", FEDJOINT_LOG_LEVEL: "error" },
  });
  return { code: r.status, stderr: r.stderr.trim() };
}

describe("attack 6: TLS and --insecure", () => {
  let env: Env | undefined;
  let port = 0;
  const procs: Proc[] = [];
  afterAll(async () => {
    for (const p of procs) p.kill("SIGKILL");
    if (env) await rm(env.work, { recursive: true, force: true });
  });

  it("a site with a foreign certificate or a foreign CA exits at once with FJ_SITE_TLS; the coordinator logs it", async () => {
    env = await makeEnv();
    const config = await writeConfig(env, studyConfig());
    port = await freePort();
    const coordinator = startCoordinator(env, config, port);
    procs.push(coordinator);
    await coordinator.waitFor((l) => l.msg === "coordinator listening", "listening");
    const foreign = await generateCerts({ out: path.join(env.work, "foreign"), sites: ["knee"] });
    const site = (name: string, files: { cert: string; key: string; ca: string }) =>
      new Proc(
        name,
        "site-client",
        [
          ...["--joint", "knee", "--data", env!.data.knee, "--coordinator", `127.0.0.1:${port}`],
          ...["--state", path.join(env!.work, "sites", name), "--backend", "wasm", "--retry-for", "600"],
          ...["--cert", files.cert, "--key", files.key, "--ca", files.ca],
        ],
        { logFile: path.join(env!.work, "logs", `${name}.log`), env: { FEDJOINT_THREADS: "1" } },
      );
    const cases = [
      {
        name: "foreign-cert",
        files: { ...foreign.sites.knee, ca: env.certs.ca },
        site: /FJ_SITE_TLS: Join: coordinator 127\.0\.0\.1:\d+: the coordinator closed the connection right after the TLS handshake: it does not accept this site's certificate/,
        coordinator: /client certificate refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE/,
      },
      {
        name: "foreign-ca",
        files: { ...env.certs.sites.knee, ca: foreign.ca },
        site: /FJ_SITE_TLS: Join: coordinator 127\.0\.0\.1:\d+: .*(self-signed certificate|not trusted)/,
        coordinator: /the client closed the handshake/,
      },
    ];
    for (const c of cases) {
      const before = coordinator.logLines().filter((l) => l.msg === "TLS handshake refused").length;
      const t0 = performance.now();
      const p = site(c.name, c.files);
      procs.push(p);
      const exit = await p.exited;
      const seconds = (performance.now() - t0) / 1000;
      process.stderr.write(
        `wrong CA (${c.name}): site-client exited ${exit.code} after ${seconds.toFixed(1)} s\n`,
      );
      expect(exit.code).toBe(5);
      const lines = p.logLines();
      expect(lines.at(-1)?.msg).toMatch(c.site);
      // no retry at all: the first failed call was the last
      expect(lines.filter((l) => l.msg === "coordinator call failed, retrying")).toEqual([]);
      const refused = await coordinator.waitFor(
        (l) =>
          l.msg === "TLS handshake refused" &&
          coordinator.logLines().filter((x) => x.msg === "TLS handshake refused").length > before,
        "a refused handshake",
      );
      expect(String(refused.peer)).toMatch(/^127\.0\.0\.1:\d+$/);
      const logged = coordinator
        .logLines()
        .filter((l) => l.msg === "TLS handshake refused")
        .slice(before);
      expect(logged.some((l) => c.coordinator.test(String(l.reason)))).toBe(true);
    }
  });

  it("a site the study does not know stops at once on the coordinator's refusal, without retrying", async () => {
    const e = env!;
    const out = path.join(e.work, "hip-certs");
    await mkdir(out, { recursive: true });
    await copyFile(e.certs.ca, path.join(out, "ca.pem"));
    await copyFile(e.certs.caKey, path.join(out, "ca.key"));
    const hip = await generateCerts({ out, sites: ["hip"], reuseCa: true });
    const p = new Proc(
      "hip",
      "site-client",
      [
        ...["--joint", "knee", "--data", e.data.knee, "--coordinator", `127.0.0.1:${port}`],
        ...["--state", path.join(e.work, "sites", "hip"), "--backend", "wasm", "--retry-for", "600"],
        ...["--cert", hip.sites.hip.cert, "--key", hip.sites.hip.key, "--ca", e.certs.ca],
      ],
      { logFile: path.join(e.work, "logs", "hip.log"), env: { FEDJOINT_THREADS: "1" } },
    );
    procs.push(p);
    const exit = await p.exited;
    expect(exit.code).toBe(5);
    expect(p.logLines().at(-1)?.msg).toBe(
      "FJ_SITE_DENIED: Join: the coordinator refused this site: FJ_AUTH_UNKNOWN_SITE: CN=hip is not a site of study it (Join)",
    );
    expect(p.logLines().filter((l) => l.msg === "coordinator call failed, retrying")).toEqual([]);
  });

  it("--insecure refuses addresses other machines can reach, before writing any state", async () => {
    const e = env!;
    const config = await writeConfig(e, studyConfig(), "insecure.json");
    const state = path.join(e.work, "insecure-state");
    const coordinator = run("coordinator", [
      "--config",
      config,
      "--state",
      state,
      "--insecure",
      "--host",
      "0.0.0.0",
      "--port",
      "0",
    ]);
    expect(coordinator.code).toBe(2);
    expect(coordinator.stderr.split("\n")).toEqual([
      "FJ_TLS_INSECURE_REMOTE: --insecure with --host 0.0.0.0: plaintext without authentication is for 127.0.0.1, ::1 or localhost only",
    ]);
    expect(existsSync(path.join(state, "state.json"))).toBe(false);
    const site = run("site-client", [
      ...["--joint", "knee", "--data", e.data.knee, "--coordinator", "192.0.2.10:7443"],
      ...["--state", path.join(e.work, "insecure-site"), "--insecure", "--backend", "cpu"],
    ]);
    expect(site.code).toBe(2);
    expect(site.stderr.split("\n").pop()).toBe(
      "FJ_TLS_INSECURE_REMOTE: --insecure with --coordinator 192.0.2.10:7443: plaintext without authentication is for a coordinator on 127.0.0.1, ::1 or localhost only",
    );
  });
});
